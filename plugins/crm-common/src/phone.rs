//! Phone numbers as CRMs store them, matched against the E.164 numbers the
//! host holds.
//!
//! A CRM keeps whatever a person typed: `(415) 555-0100`, `415.555.0100 x12`,
//! `+1 415 555 0100`, `0044 20 7946 0018`, `020 7946 0018`. The host's
//! identities are E.164 (`+14155550100`). Both sides are brought to E.164
//! digits, reading a number without `+` as dialled in the operator's
//! `default_region` (ISO 3166-1 alpha-2, `US` unless set): its international
//! prefix (`00`, `011`…) becomes `+`, its trunk prefix (`0`, or `1` in the
//! North American plan) is dropped before the country code is added.
//!
//! A stored number can be read more than one way (`442079460018` in a US
//! CRM is a British number written without `+`), so [`candidates`] lists
//! every plausible reading and [`matches`] accepts any of them; [`normalize`]
//! picks the likeliest one, for the identities a profile reports.
//!
//! Why not the `phonenumber` crate: it compiles for `wasm32-wasip2`, but it
//! adds about 2 MiB to the component and spends about 90 ms (natively; more
//! in WebAssembly) loading its metadata on first use, and every plugin call
//! runs on a fresh instance, so every lookup would pay it. Matching needs
//! only country calling codes, trunk and international prefixes and length
//! checks, which this module does in microseconds. The host still normalizes
//! every identity a plugin returns with the full library.

use switchboard_sdk::PluginError;

/// The shortest and longest E.164 numbers, country code included.
const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 15;

/// How numbers are dialled in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// ISO 3166-1 alpha-2 code, upper-case.
    pub code: &'static str,
    /// Country calling code, without `+`.
    pub calling_code: &'static str,
    /// Trunk prefix dialled before national numbers (`0`; `1` in the North
    /// American plan; empty where there is none, or where the `0` is part of
    /// the number, as in Italy).
    pub trunk: &'static str,
    /// International call prefixes (`00`; `011` in North America).
    pub international: &'static [&'static str],
}

/// A region's calling code, trunk prefix and international prefixes.
type Dialling = (&'static str, &'static str, &'static [&'static str]);

const NANP: Dialling = ("1", "1", &["011"]);

/// The regions this module knows, by ISO code.
const REGIONS: &[(&str, Dialling)] = &[
    // North American Numbering Plan.
    ("US", NANP),
    ("CA", NANP),
    ("PR", NANP),
    ("VI", NANP),
    ("GU", NANP),
    ("AS", NANP),
    ("MP", NANP),
    ("BS", NANP),
    ("BB", NANP),
    ("BM", NANP),
    ("DO", NANP),
    ("JM", NANP),
    ("TT", NANP),
    ("KY", NANP),
    ("AG", NANP),
    ("AI", NANP),
    ("DM", NANP),
    ("GD", NANP),
    ("KN", NANP),
    ("LC", NANP),
    ("MS", NANP),
    ("SX", NANP),
    ("TC", NANP),
    ("VC", NANP),
    ("VG", NANP),
    // Europe.
    ("GB", ("44", "0", &["00"])),
    ("IE", ("353", "0", &["00"])),
    ("DE", ("49", "0", &["00"])),
    ("FR", ("33", "0", &["00"])),
    ("ES", ("34", "", &["00"])),
    ("IT", ("39", "", &["00"])),
    ("PT", ("351", "", &["00"])),
    ("NL", ("31", "0", &["00"])),
    ("BE", ("32", "0", &["00"])),
    ("LU", ("352", "", &["00"])),
    ("CH", ("41", "0", &["00"])),
    ("AT", ("43", "0", &["00"])),
    ("DK", ("45", "", &["00"])),
    ("NO", ("47", "", &["00"])),
    ("SE", ("46", "0", &["00"])),
    ("FI", ("358", "0", &["00", "990", "999"])),
    ("IS", ("354", "", &["00"])),
    ("PL", ("48", "", &["00"])),
    ("CZ", ("420", "", &["00"])),
    ("SK", ("421", "0", &["00"])),
    ("HU", ("36", "06", &["00"])),
    ("RO", ("40", "0", &["00"])),
    ("BG", ("359", "0", &["00"])),
    ("GR", ("30", "", &["00"])),
    ("HR", ("385", "0", &["00"])),
    ("SI", ("386", "0", &["00"])),
    ("RS", ("381", "0", &["00"])),
    ("EE", ("372", "", &["00"])),
    ("LV", ("371", "", &["00"])),
    ("LT", ("370", "0", &["00"])),
    ("UA", ("380", "0", &["00"])),
    ("RU", ("7", "8", &["810"])),
    ("KZ", ("7", "8", &["810"])),
    ("TR", ("90", "0", &["00"])),
    ("CY", ("357", "", &["00"])),
    ("MT", ("356", "", &["00"])),
    // Middle East and Africa.
    ("IL", ("972", "0", &["00", "012", "013", "014"])),
    ("AE", ("971", "0", &["00"])),
    ("SA", ("966", "0", &["00"])),
    ("QA", ("974", "", &["00"])),
    ("EG", ("20", "0", &["00"])),
    ("MA", ("212", "0", &["00"])),
    ("ZA", ("27", "0", &["00"])),
    ("NG", ("234", "0", &["009"])),
    ("KE", ("254", "0", &["000"])),
    // Asia and Oceania.
    ("IN", ("91", "0", &["00"])),
    ("PK", ("92", "0", &["00"])),
    ("BD", ("880", "0", &["00"])),
    ("CN", ("86", "0", &["00"])),
    ("HK", ("852", "", &["001", "00"])),
    ("TW", ("886", "0", &["002", "00"])),
    ("JP", ("81", "0", &["010"])),
    ("KR", ("82", "0", &["001", "002", "00700"])),
    ("SG", ("65", "", &["001", "008", "000"])),
    ("MY", ("60", "0", &["00"])),
    ("TH", ("66", "0", &["001"])),
    ("ID", ("62", "0", &["001", "007"])),
    ("PH", ("63", "0", &["00"])),
    ("VN", ("84", "0", &["00"])),
    ("AU", ("61", "0", &["0011"])),
    ("NZ", ("64", "0", &["00"])),
    // Latin America.
    ("MX", ("52", "", &["00"])),
    ("BR", ("55", "0", &["00"])),
    ("AR", ("54", "0", &["00"])),
    ("CL", ("56", "", &["00"])),
    ("CO", ("57", "", &["00", "009", "007", "005"])),
    ("PE", ("51", "0", &["00"])),
];

/// Two-digit country calling codes; `1` and `7` are the one-digit ones and
/// every other code has three digits (the codes are prefix-free).
const TWO_DIGIT_CODES: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

impl Region {
    /// The region for an ISO 3166-1 alpha-2 code, any case.
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] naming the code when this module does not
    /// know it (numbers written with `+` or an international prefix still
    /// match; this is about numbers without one).
    pub fn parse(code: &str) -> Result<Region, PluginError> {
        let wanted = code.trim();
        REGIONS
            .iter()
            .find(|(iso, _)| iso.eq_ignore_ascii_case(wanted))
            .map(|(iso, (calling_code, trunk, international))| Region {
                code: iso,
                calling_code,
                trunk,
                international,
            })
            .ok_or_else(|| {
                PluginError::Config(format!(
                    "config `default_region`: unknown region {wanted:?} (expected an ISO 3166-1 \
                     alpha-2 code such as \"US\" or \"GB\")"
                ))
            })
    }

    /// `US`.
    pub fn us() -> Region {
        Region::parse("US").expect("US is in the table")
    }
}

/// The part of a stored value that is the number: an extension (`x12`,
/// `ext. 12`, `#12`, `;ext=12`) and anything after a letter is cut off.
fn number_part(raw: &str) -> &str {
    let mut seen_digit = false;
    for (at, c) in raw.char_indices() {
        if digit_value(c).is_some() {
            seen_digit = true;
        } else if seen_digit && (c.is_alphabetic() || matches!(c, '#' | ';' | ',')) {
            return &raw[..at];
        }
    }
    raw
}

/// A digit's value; full-width digits (`０`–`９`, typed by East Asian
/// input methods) count.
fn digit_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// The digits of `raw` as ASCII, in order.
pub fn digits(raw: &str) -> String {
    raw.chars()
        .filter_map(digit_value)
        .filter_map(|d| char::from_digit(d, 10))
        .collect()
}

/// Splits the digits of an E.164 number (with or without `+`) into its
/// country calling code and national significant number.
pub fn split(e164: &str) -> Option<(&str, &str)> {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() < 2 {
        return None;
    }
    let len = match &digits[..1] {
        "1" | "7" => 1,
        _ if TWO_DIGIT_CODES.contains(&&digits[..2]) => 2,
        _ => 3,
    };
    (digits.len() > len).then(|| digits.split_at(len))
}

/// The national significant number of an E.164 number (`4155550100` for
/// `+14155550100`): what CRMs' "digits without country code" fields hold.
pub fn national_number(e164: &str) -> Option<&str> {
    split(e164).map(|(_, national)| national)
}

/// Whether `+{digits}` is a plausible E.164 number.
fn plausible(digits: &str) -> bool {
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
        return false;
    }
    match split(digits) {
        // North America: a ten-digit number whose area code starts 2–9.
        Some(("1", national)) => national.len() == 10 && !national.starts_with(['0', '1']),
        // National numbers never start with 0, but Italy's fixed lines do.
        Some((code, national)) => {
            national.len() >= 4 && (!national.starts_with('0') || code == "39")
        }
        None => false,
    }
}

/// Every plausible E.164 reading of a stored value, likeliest first.
pub fn candidates(raw: &str, region: &Region) -> Vec<String> {
    let number = number_part(raw).trim();
    let all = digits(number);
    if all.is_empty() {
        return Vec::new();
    }
    let mut readings: Vec<String> = Vec::new();
    if number
        .trim_start_matches(['(', ' '])
        .starts_with(['+', '＋'])
    {
        // `+44 (0)20 …`: the British habit of showing the trunk prefix.
        if number.contains("(0)") {
            readings.push(digits(&number.replacen("(0)", "", 1)));
        }
        readings.push(all);
    } else {
        for prefix in region.international {
            if let Some(rest) = all.strip_prefix(prefix) {
                readings.push(rest.to_owned());
            }
        }
        let written_with_code = all.starts_with(region.calling_code)
            && all.len() >= region.calling_code.len() + 8
            && region.calling_code != region.trunk;
        if written_with_code {
            readings.push(all.clone());
        }
        if let Some(national) = all
            .strip_prefix(region.trunk)
            .filter(|_| !region.trunk.is_empty())
        {
            readings.push(format!("{}{national}", region.calling_code));
        }
        if region.trunk.is_empty() || !all.starts_with(region.trunk) {
            readings.push(format!("{}{all}", region.calling_code));
        }
        if !written_with_code {
            readings.push(all);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for digits in readings {
        let e164 = format!("+{digits}");
        if plausible(&digits) && !out.contains(&e164) {
            out.push(e164);
        }
    }
    out
}

/// The likeliest E.164 form of a stored value, if it reads as a number.
pub fn normalize(raw: &str, region: &Region) -> Option<String> {
    candidates(raw, region).into_iter().next()
}

/// Whether a stored value is the number `e164` (`+14155550100`).
///
/// True when any reading of the stored value is `e164`, or when the stored
/// digits are `0` and its national number (a foreign customer's number kept
/// in the national form of a country with a `0` trunk prefix).
pub fn matches(stored: &str, e164: &str, region: &Region) -> bool {
    let Some(target) = e164
        .strip_prefix('+')
        .filter(|d| plausible(d))
        .map(|d| format!("+{d}"))
    else {
        return false;
    };
    if candidates(stored, region).contains(&target) {
        return true;
    }
    let stored = digits(number_part(stored));
    national_number(&target)
        .is_some_and(|national| national.len() >= 7 && stored.strip_prefix('0') == Some(national))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> Region {
        Region::parse(code).unwrap()
    }

    #[test]
    fn north_american_formats_all_match() {
        let us = region("us");
        for stored in [
            "(415) 555-0100",
            "415-555-0100",
            "415.555.0100",
            "4155550100",
            "1 (415) 555-0100",
            "1-415-555-0100",
            "14155550100",
            "+1 415 555 0100",
            "+1 (415) 555-0100",
            "011 1 415 555 0100",
            "(415) 555-0100 x123",
            "415-555-0100 ext. 9",
            "415 555 0100#2",
            "＋１ ４１５ ５５５ ０１００",
        ] {
            assert_eq!(
                normalize(stored, &us).as_deref(),
                Some("+14155550100"),
                "{stored}"
            );
            assert!(matches(stored, "+14155550100", &us), "{stored}");
        }
        assert!(!matches("(415) 555-0101", "+14155550100", &us));
        assert!(!matches("555-0100", "+14155550100", &us));
        assert!(!matches("", "+14155550100", &us));
        assert!(!matches("n/a", "+14155550100", &us));
    }

    #[test]
    fn foreign_numbers_in_a_us_crm() {
        let us = region("US");
        assert_eq!(
            normalize("+44 20 7946 0018", &us).as_deref(),
            Some("+442079460018")
        );
        assert_eq!(
            normalize("011 44 20 7946 0018", &us).as_deref(),
            Some("+442079460018")
        );
        // Written with the country code but without `+`.
        assert_eq!(
            normalize("44 20 7946 0018", &us).as_deref(),
            Some("+442079460018")
        );
        assert!(matches("44 20 7946 0018", "+442079460018", &us));
        // Kept in British national form.
        assert!(matches("020 7946 0018", "+442079460018", &us));
        assert!(!matches("020 7946 0019", "+442079460018", &us));
    }

    #[test]
    fn national_forms_with_trunk_prefixes() {
        let gb = region("GB");
        for stored in [
            "020 7946 0018",
            "(020) 7946 0018",
            "+44 (0)20 7946 0018",
            "0044 20 7946 0018",
            "44 20 7946 0018",
            "+442079460018",
        ] {
            assert!(matches(stored, "+442079460018", &gb), "{stored}");
        }
        assert_eq!(
            normalize("07700 900123", &gb).as_deref(),
            Some("+447700900123")
        );
        let de = region("DE");
        assert_eq!(
            normalize("030 1234567", &de).as_deref(),
            Some("+49301234567")
        );
        // Italy keeps the leading 0 of fixed lines.
        let it = region("IT");
        assert_eq!(
            normalize("06 6982 1234", &it).as_deref(),
            Some("+390669821234")
        );
        let ru = region("RU");
        assert_eq!(
            normalize("8 (495) 123-45-67", &ru).as_deref(),
            Some("+74951234567")
        );
        let au = region("AU");
        assert_eq!(
            normalize("0011 1 415 555 0100", &au).as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            normalize("(02) 9374 4000", &au).as_deref(),
            Some("+61293744000")
        );
    }

    #[test]
    fn a_trunk_prefix_shown_after_the_country_code_is_dropped() {
        let us = region("US");
        assert_eq!(
            normalize("+44 (0)20 7946 0018", &us).as_deref(),
            Some("+442079460018")
        );
        assert!(matches("+44 (0)20 7946 0018", "+442079460018", &us));
        // Italy's fixed lines keep their 0 after the country code.
        assert_eq!(
            normalize("+39 06 6982 1234", &us).as_deref(),
            Some("+390669821234")
        );
    }

    #[test]
    fn country_codes_split() {
        assert_eq!(split("+14155550100"), Some(("1", "4155550100")));
        assert_eq!(split("+74951234567"), Some(("7", "4951234567")));
        assert_eq!(split("+442079460018"), Some(("44", "2079460018")));
        assert_eq!(split("+353861234567"), Some(("353", "861234567")));
        assert_eq!(split("+971501234567"), Some(("971", "501234567")));
        assert_eq!(split("+2125"), Some(("212", "5")));
        assert_eq!(split("+1"), None);
        assert_eq!(split("+44x"), None);
        assert_eq!(national_number("+14155550100"), Some("4155550100"));
    }

    #[test]
    fn implausible_numbers_are_refused() {
        let us = region("US");
        assert_eq!(normalize("123", &us), None);
        assert_eq!(normalize("+1 055 555 0100", &us), None);
        assert_eq!(normalize("+1234567890123456", &us), None);
        assert!(!matches("(415) 555-0100", "not a number", &us));
        assert!(!matches("(415) 555-0100", "+1415", &us));
    }

    #[test]
    fn unknown_regions_are_a_config_error() {
        assert!(matches!(Region::parse("XX"), Err(PluginError::Config(m)) if m.contains("\"XX\"")));
        assert_eq!(Region::parse(" gb ").unwrap().calling_code, "44");
        assert_eq!(Region::us().trunk, "1");
    }
}
