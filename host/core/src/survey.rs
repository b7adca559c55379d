//! Survey kinds, their scales, and reading a customer's typed answer.
//!
//! CSAT is 1–5 ("how satisfied"), CES 2.0 is 1–7 agreement with "the company made it
//! easy to handle my issue", NPS is 0–10. A typed answer is a score at the start of
//! the message — digits, an English number word, stars or a keycap emoji — optionally
//! followed by free text, which is kept as the comment. Anything else, and a score off
//! the scale, is not an answer: the caller treats it as an ordinary message.

use std::fmt;
use std::str::FromStr;

/// What a survey measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurveyKind {
    /// Customer satisfaction, 1–5.
    Csat,
    /// Customer effort (CES 2.0), 1–7.
    Ces,
    /// Net promoter score, 0–10.
    Nps,
}

impl SurveyKind {
    /// Every kind, in the order a queue asks them.
    pub const ALL: [SurveyKind; 3] = [SurveyKind::Csat, SurveyKind::Ces, SurveyKind::Nps];

    /// The name stored and shown: `csat`, `ces`, `nps`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Csat => "csat",
            SurveyKind::Ces => "ces",
            SurveyKind::Nps => "nps",
        }
    }

    /// The lowest and highest score.
    pub fn scale(self) -> (i64, i64) {
        match self {
            SurveyKind::Csat => (1, 5),
            SurveyKind::Ces => (1, 7),
            SurveyKind::Nps => (0, 10),
        }
    }

    /// Whether `score` is on the scale.
    pub fn accepts(self, score: i64) -> bool {
        let (low, high) = self.scale();
        (low..=high).contains(&score)
    }

    /// The question as a text message asks it.
    pub fn question(self) -> &'static str {
        match self {
            SurveyKind::Csat => {
                "How satisfied are you with the help you got? Reply with a number from 1 (very unsatisfied) to 5 (very satisfied); you can add a comment after it."
            }
            SurveyKind::Ces => {
                "\"The company made it easy to handle my issue.\" Reply with a number from 1 (strongly disagree) to 7 (strongly agree); you can add a comment after it."
            }
            SurveyKind::Nps => {
                "How likely are you to recommend us to a friend or colleague? Reply with a number from 0 (not at all likely) to 10 (extremely likely); you can add a comment after it."
            }
        }
    }

    /// The question as a page, a card or a prompt shows it (without the instructions).
    pub fn prompt(self) -> &'static str {
        match self {
            SurveyKind::Csat => "How satisfied are you with the help you got?",
            SurveyKind::Ces => {
                "How much do you agree: \"the company made it easy to handle my issue\"?"
            }
            SurveyKind::Nps => "How likely are you to recommend us to a friend or colleague?",
        }
    }
}

impl SurveyKind {
    /// The score a caller's key gives (the post-call IVR reads one key per
    /// question): CSAT `1`–`5`, CES `1`–`7`, NPS `0`–`9`, and `*` for NPS 10 (ten
    /// needs two keys otherwise, and a caller stopping after `1` would be misread).
    /// `None` for anything else (no key, a key off the scale, `#`).
    pub fn from_key(self, key: &str) -> Option<i64> {
        let score = match key {
            "*" if self == SurveyKind::Nps => 10,
            k if k.len() == 1 && k.as_bytes()[0].is_ascii_digit() => {
                i64::from(k.as_bytes()[0] - b'0')
            }
            _ => return None,
        };
        self.accepts(score).then_some(score)
    }

    /// The words at each end of the scale.
    pub fn ends(self) -> (&'static str, &'static str) {
        match self {
            SurveyKind::Csat => ("Very unsatisfied", "Very satisfied"),
            SurveyKind::Ces => ("Strongly disagree", "Strongly agree"),
            SurveyKind::Nps => ("Not at all likely", "Extremely likely"),
        }
    }
}

impl fmt::Display for SurveyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SurveyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csat" => Ok(SurveyKind::Csat),
            "ces" => Ok(SurveyKind::Ces),
            "nps" => Ok(SurveyKind::Nps),
            other => Err(format!("unknown survey {other:?}; one of csat, ces, nps")),
        }
    }
}

/// A typed answer read from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedAnswer {
    /// The score, on the survey's scale.
    pub score: i64,
    /// What the customer wrote after it, if anything.
    pub comment: Option<String>,
}

const WORDS: [&str; 11] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

/// Reads `text` as an answer to a `kind` survey: `"5"`, `"4 - quick and kind"`,
/// `"five"`, `"7/7"`, `"⭐⭐⭐⭐"`, `"5️⃣ thanks"`. `None` when it is not one (the
/// caller keeps it as a message).
pub fn parse_answer(kind: SurveyKind, text: &str) -> Option<TypedAnswer> {
    let text = text.trim();
    let (score, rest) = leading_score(text)?;
    if !kind.accepts(score) {
        return None;
    }
    let rest = strip_out_of(rest);
    let comment = rest
        .trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, '-' | '–' | '—' | ':' | ',' | '.' | ';' | '!' | ')')
        })
        .trim();
    Some(TypedAnswer {
        score,
        comment: (!comment.is_empty()).then(|| comment.to_string()),
    })
}

/// The score a message starts with and what follows it.
fn leading_score(text: &str) -> Option<(i64, &str)> {
    // Stars: one point each.
    let stars = text
        .chars()
        .take_while(|c| matches!(c, '⭐' | '★' | '🌟'))
        .count();
    if stars > 0 {
        let used: usize = text.chars().take(stars).map(char::len_utf8).sum();
        return Some((stars as i64, &text[used..]));
    }
    // Digits, possibly a keycap emoji (digit, VS16, U+20E3) or 🔟.
    if let Some(rest) = text.strip_prefix('🔟') {
        return Some((10, rest));
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        if digits > 2 {
            return None;
        }
        let score: i64 = text[..digits].parse().ok()?;
        let mut rest = &text[digits..];
        rest = rest.strip_prefix('\u{FE0F}').unwrap_or(rest);
        rest = rest.strip_prefix('\u{20E3}').unwrap_or(rest);
        return ends_word(rest).then_some((score, rest));
    }
    // A number word.
    let lower = text.to_lowercase();
    for (value, word) in WORDS.iter().enumerate().rev() {
        if lower.starts_with(word) {
            let rest = &text[word.len()..];
            if ends_word(rest) {
                return Some((value as i64, rest));
            }
        }
    }
    None
}

/// Whether a number ended where `rest` starts: at the end, a space or punctuation —
/// not a letter or another number (`5pm`, `1st`, `4.5`).
fn ends_word(rest: &str) -> bool {
    let mut chars = rest.chars();
    match chars.next() {
        None => true,
        Some(c) if c.is_alphanumeric() => false,
        Some('.' | ',') => !chars.next().is_some_and(|c| c.is_ascii_digit()),
        Some(_) => true,
    }
}

/// `5/5`, `4 out of 5`, `4 of 5`: the scale the customer repeated is not a comment.
fn strip_out_of(rest: &str) -> &str {
    let trimmed = rest.trim_start();
    for prefix in ["/", "out of", "of"] {
        if let Some(after) = trimmed.strip_prefix(prefix) {
            let after = after.trim_start();
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 && ends_word(&after[digits..]) {
                return &after[digits..];
            }
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_is_a_score_on_the_scale_or_nothing() {
        use super::SurveyKind::*;
        assert_eq!(Csat.from_key("4"), Some(4));
        assert_eq!(Csat.from_key("6"), None, "off the 1-5 scale");
        assert_eq!(Csat.from_key("0"), None);
        assert_eq!(Ces.from_key("7"), Some(7));
        assert_eq!(Ces.from_key("8"), None);
        assert_eq!(Nps.from_key("0"), Some(0));
        assert_eq!(Nps.from_key("*"), Some(10));
        assert_eq!(Csat.from_key("*"), None, "star is ten on NPS only");
        for bad in ["", "#", "A", "44", "x"] {
            assert_eq!(Nps.from_key(bad), None, "{bad:?}");
        }
    }

    use super::*;

    fn answer(score: i64, comment: Option<&str>) -> Option<TypedAnswer> {
        Some(TypedAnswer {
            score,
            comment: comment.map(str::to_string),
        })
    }

    #[test]
    fn digits_with_and_without_a_comment() {
        let csat = SurveyKind::Csat;
        assert_eq!(parse_answer(csat, "5"), answer(5, None));
        assert_eq!(parse_answer(csat, "  4 "), answer(4, None));
        assert_eq!(parse_answer(csat, "4 - quick"), answer(4, Some("quick")));
        assert_eq!(parse_answer(csat, "4-quick"), answer(4, Some("quick")));
        assert_eq!(
            parse_answer(csat, "3. Took two calls"),
            answer(3, Some("Took two calls"))
        );
        assert_eq!(parse_answer(csat, "5!"), answer(5, None));
        assert_eq!(parse_answer(csat, "5/5"), answer(5, None));
        assert_eq!(
            parse_answer(csat, "4 out of 5 great"),
            answer(4, Some("great"))
        );
        assert_eq!(parse_answer(SurveyKind::Nps, "10"), answer(10, None));
        assert_eq!(
            parse_answer(SurveyKind::Nps, "0 never"),
            answer(0, Some("never"))
        );
    }

    #[test]
    fn words_stars_and_keycaps() {
        let csat = SurveyKind::Csat;
        assert_eq!(parse_answer(csat, "five"), answer(5, None));
        assert_eq!(parse_answer(csat, "Four - quick"), answer(4, Some("quick")));
        assert_eq!(parse_answer(csat, "⭐⭐⭐⭐"), answer(4, None));
        assert_eq!(parse_answer(csat, "★★ slow"), answer(2, Some("slow")));
        assert_eq!(parse_answer(csat, "5️⃣ thanks"), answer(5, Some("thanks")));
        assert_eq!(parse_answer(SurveyKind::Nps, "🔟"), answer(10, None));
        assert_eq!(parse_answer(SurveyKind::Ces, "seven"), answer(7, None));
    }

    #[test]
    fn off_the_scale_or_not_a_number_is_not_an_answer() {
        let csat = SurveyKind::Csat;
        for text in [
            "",
            "0",
            "6",
            "11",
            "⭐⭐⭐⭐⭐⭐",
            "thanks!",
            "5pm works",
            "1st of May",
            "4.5",
            "123",
            "someone",
            "tend to agree",
            "My order never came",
        ] {
            assert_eq!(parse_answer(csat, text), None, "{text:?}");
        }
        assert_eq!(parse_answer(SurveyKind::Ces, "8"), None);
        assert_eq!(parse_answer(SurveyKind::Ces, "0"), None);
        assert_eq!(parse_answer(SurveyKind::Nps, "eleven"), None);
    }

    #[test]
    fn kinds_round_trip_and_refuse_unknown_names() {
        for kind in SurveyKind::ALL {
            assert_eq!(kind.as_str().parse::<SurveyKind>(), Ok(kind));
        }
        assert!(
            "nss"
                .parse::<SurveyKind>()
                .unwrap_err()
                .contains("csat, ces, nps")
        );
    }
}
