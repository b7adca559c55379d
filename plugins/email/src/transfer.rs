//! Content-Transfer-Encodings undone piece by piece: a part fetched in
//! chunks is decoded as it arrives, whatever byte a chunk ends on, and the
//! result is the same as decoding the part whole.
//!
//! Decoding is lenient, like mail readers: in base64 every byte outside the
//! alphabet (line breaks, padding, stray characters) is skipped and a last
//! lone character dropped; in quoted-printable a broken escape (`=ZZ`) is kept
//! as it was written. Nothing here fails, so a damaged file still arrives.
//! State between chunks is a few bytes (base64) or one line's trailing
//! spaces at most [`MAX_PENDING_SPACES`] (quoted-printable).

/// Trailing spaces held back in quoted-printable to see whether a line
/// break follows (then they are dropped); a longer run is written out.
pub const MAX_PENDING_SPACES: usize = 4096;

/// An incremental decoder for one transfer encoding.
#[derive(Debug, Clone)]
pub enum Decoder {
    Base64(Base64),
    QuotedPrintable(QuotedPrintable),
    /// `7bit`, `8bit`, `binary` and unknown encodings: the bytes as they are.
    Identity,
}

impl Decoder {
    /// The decoder for a `Content-Transfer-Encoding` value (any case).
    pub fn for_encoding(encoding: &str) -> Decoder {
        match encoding.trim().to_ascii_lowercase().as_str() {
            "base64" => Decoder::Base64(Base64::default()),
            "quoted-printable" => Decoder::QuotedPrintable(QuotedPrintable::default()),
            _ => Decoder::Identity,
        }
    }

    /// Decodes the next piece of the part onto `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Decoder::Base64(d) => d.feed(input, out),
            Decoder::QuotedPrintable(d) => d.feed(input, out),
            Decoder::Identity => out.extend_from_slice(input),
        }
    }

    /// Writes what was held back at the end of the part.
    pub fn finish(self, out: &mut Vec<u8>) {
        match self {
            Decoder::Base64(d) => d.finish(out),
            Decoder::QuotedPrintable(d) => d.finish(out),
            Decoder::Identity => {}
        }
    }
}

/// Decodes a whole part (see the module doc).
pub fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut decoder = Decoder::for_encoding(encoding);
    decoder.feed(bytes, &mut out);
    decoder.finish(&mut out);
    out
}

/// Base64: up to three characters of a quad wait for the next chunk.
#[derive(Debug, Clone, Default)]
pub struct Base64 {
    quad: [u8; 4],
    len: usize,
}

fn base64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

impl Base64 {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 4 * 3 + 3);
        for &b in input {
            let Some(value) = base64_value(b) else {
                continue;
            };
            self.quad[self.len] = value;
            self.len += 1;
            if self.len == 4 {
                let [a, b, c, d] = self.quad;
                out.extend_from_slice(&[(a << 2) | (b >> 4), (b << 4) | (c >> 2), (c << 6) | d]);
                self.len = 0;
            }
        }
    }

    /// Two or three characters left make one or two bytes (the unused
    /// bits are ignored); one alone carries no whole byte.
    pub fn finish(self, out: &mut Vec<u8>) {
        let [a, b, c, _] = self.quad;
        match self.len {
            2 => out.push((a << 2) | (b >> 4)),
            3 => out.extend_from_slice(&[(a << 2) | (b >> 4), (b << 4) | (c >> 2)]),
            _ => {}
        }
    }
}

/// Where quoted-printable decoding stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Qp {
    #[default]
    Text,
    /// A CR: a line break if LF follows.
    Cr,
    /// `=`: an escape or a soft line break.
    Eq,
    /// `=` and one hex digit.
    EqHex(u8),
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` escapes, soft line breaks (`=`
/// at the end of a line, spaces allowed after it), and the spaces that end
/// a line dropped. Line breaks keep their form (CRLF or LF).
#[derive(Debug, Clone, Default)]
pub struct QuotedPrintable {
    state: Qp,
    /// Spaces and tabs not yet written: dropped if a line break follows.
    /// After `=` they are the spaces of a possible soft line break.
    spaces: Vec<u8>,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl QuotedPrintable {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &b in input {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            Qp::Text => match b {
                b'=' => {
                    out.append(&mut self.spaces);
                    self.state = Qp::Eq;
                }
                b' ' | b'\t' => self.hold_space(b, out),
                b'\r' => self.state = Qp::Cr,
                b'\n' => {
                    self.spaces.clear();
                    out.push(b'\n');
                }
                _ => {
                    out.append(&mut self.spaces);
                    out.push(b);
                }
            },
            Qp::Cr => {
                self.state = Qp::Text;
                if b == b'\n' {
                    self.spaces.clear();
                    out.extend_from_slice(b"\r\n");
                } else {
                    // A CR alone is text.
                    out.append(&mut self.spaces);
                    out.push(b'\r');
                    self.byte(b, out);
                }
            }
            Qp::Eq => match b {
                _ if self.spaces.is_empty() && hex_value(b).is_some() => {
                    self.state = Qp::EqHex(b);
                }
                b' ' | b'\t' if self.spaces.len() < MAX_PENDING_SPACES => self.spaces.push(b),
                // A soft line break: the line goes on.
                b'\n' => {
                    self.spaces.clear();
                    self.state = Qp::Text;
                }
                b'\r' => {}
                _ => {
                    // Not an escape: kept as written.
                    out.push(b'=');
                    out.append(&mut self.spaces);
                    self.state = Qp::Text;
                    self.byte(b, out);
                }
            },
            Qp::EqHex(first) => {
                self.state = Qp::Text;
                match (hex_value(first), hex_value(b)) {
                    (Some(high), Some(low)) => out.push((high << 4) | low),
                    _ => {
                        out.extend_from_slice(&[b'=', first]);
                        self.byte(b, out);
                    }
                }
            }
        }
    }

    fn hold_space(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.spaces.len() >= MAX_PENDING_SPACES {
            out.append(&mut self.spaces);
        }
        self.spaces.push(b);
    }

    /// What was held back is written as it came: the part ends without a
    /// line break, so its last spaces and a trailing `=` are text.
    pub fn finish(self, out: &mut Vec<u8>) {
        match self.state {
            Qp::Text => out.extend_from_slice(&self.spaces),
            Qp::Cr => {
                out.extend_from_slice(&self.spaces);
                out.push(b'\r');
            }
            Qp::Eq => {
                out.push(b'=');
                out.extend_from_slice(&self.spaces);
            }
            Qp::EqHex(first) => out.extend_from_slice(&[b'=', first]),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// `input` decoded in two pieces split at every offset, and in pieces
    /// of every size from 1 to 7, equals it decoded whole.
    fn same_in_every_split(encoding: &str, input: &[u8]) -> Vec<u8> {
        let whole = decode(encoding, input);
        for at in 0..=input.len() {
            let mut decoder = Decoder::for_encoding(encoding);
            let mut out = Vec::new();
            decoder.feed(&input[..at], &mut out);
            decoder.feed(&input[at..], &mut out);
            decoder.finish(&mut out);
            assert_eq!(out, whole, "{encoding} split at {at} of {input:?}");
        }
        for size in 1..=7 {
            let mut decoder = Decoder::for_encoding(encoding);
            let mut out = Vec::new();
            for piece in input.chunks(size) {
                decoder.feed(piece, &mut out);
            }
            decoder.finish(&mut out);
            assert_eq!(out, whole, "{encoding} in pieces of {size}");
        }
        whole
    }

    /// Bytes 0..=255 and some text, 700 bytes.
    fn sample() -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..=255).collect();
        bytes.extend_from_slice("Grüße aus Köln — 東京 ".repeat(12).as_bytes());
        bytes.truncate(700);
        bytes
    }

    #[test]
    fn base64_in_76_character_lines_at_every_boundary() {
        let data = sample();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut wrapped = Vec::new();
        for line in encoded.as_bytes().chunks(76) {
            wrapped.extend_from_slice(line);
            wrapped.extend_from_slice(b"\r\n");
        }
        assert_eq!(same_in_every_split("base64", &wrapped), data);
        assert_eq!(same_in_every_split("BASE64", encoded.as_bytes()), data);
    }

    #[test]
    fn base64_of_every_length_with_and_without_padding() {
        let data = sample();
        for len in 0..40 {
            let padded = base64::engine::general_purpose::STANDARD.encode(&data[..len]);
            assert_eq!(decode("base64", padded.as_bytes()), data[..len], "{padded}");
            let bare = padded.trim_end_matches('=');
            assert_eq!(
                same_in_every_split("base64", bare.as_bytes()),
                data[..len],
                "{bare}"
            );
        }
    }

    #[test]
    fn base64_skips_what_is_not_base64_and_a_lone_last_character() {
        assert_eq!(
            same_in_every_split("base64", b" aGVs\r\nbG8*\t\r\ngd29!ybGQ=\r\n"),
            b"hello world"
        );
        // Two encoded pieces glued together: the padding in the middle is
        // skipped like any other stray byte.
        assert_eq!(same_in_every_split("base64", b"SGk=SGk="), b"Hi\x12\x1a");
        assert_eq!(same_in_every_split("base64", b"SGVsbG8x"), b"Hello1");
        assert_eq!(same_in_every_split("base64", b"SGVsbG8xQ"), b"Hello1");
        assert_eq!(same_in_every_split("base64", b""), b"");
        assert_eq!(same_in_every_split("base64", b"===\r\n"), b"");
    }

    #[test]
    fn quoted_printable_escapes_and_soft_breaks_at_every_boundary() {
        let input = b"caf=C3=A9 cr=C3=A8me =\r\nbr=C3=BBl=C3=A9e=3D50% \r\nnext line\t \r\n";
        assert_eq!(
            same_in_every_split("quoted-printable", input),
            "café crème brûlée=50%\r\nnext line\r\n".as_bytes()
        );
        // LF-only mail, a soft break with spaces after the `=`, lower-case hex.
        assert_eq!(
            same_in_every_split("Quoted-Printable", b"a=e9b =  \nc  \nd"),
            b"a\xe9b c\nd"
        );
    }

    #[test]
    fn quoted_printable_keeps_broken_escapes_as_written() {
        assert_eq!(
            same_in_every_split("quoted-printable", b"50=ZZ off, =4 and =\tX, = end="),
            b"50=ZZ off, =4 and =\tX, = end="
        );
        assert_eq!(
            same_in_every_split("quoted-printable", b"bare\rCR =\rX"),
            b"bare\rCR =X"
        );
        assert_eq!(same_in_every_split("quoted-printable", b"=4"), b"=4");
        assert_eq!(same_in_every_split("quoted-printable", b"end  "), b"end  ");
    }

    #[test]
    fn quoted_printable_of_every_byte_round_trips() {
        // What an encoder writes: every byte outside printable ASCII
        // escaped, lines cut at 76 with soft breaks.
        let data = sample();
        let mut encoded = Vec::new();
        let mut line = 0;
        for &b in &data {
            let piece = if (33..=126).contains(&b) && b != b'=' {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            if line + piece.len() > 75 {
                encoded.extend_from_slice(b"=\r\n");
                line = 0;
            }
            line += piece.len();
            encoded.extend_from_slice(&piece);
        }
        assert_eq!(same_in_every_split("quoted-printable", &encoded), data);
    }

    #[test]
    fn quoted_printable_holds_back_a_bounded_run_of_spaces() {
        let mut input = vec![b' '; MAX_PENDING_SPACES * 2 + 3];
        input.extend_from_slice(b"x");
        let out = decode("quoted-printable", &input);
        assert_eq!(out, input, "spaces followed by text are text");
        let mut decoder = Decoder::for_encoding("quoted-printable");
        let mut out = Vec::new();
        decoder.feed(&vec![b' '; MAX_PENDING_SPACES * 3], &mut out);
        assert!(out.len() >= MAX_PENDING_SPACES * 2 - 1, "written out early");
        decoder.feed(b"\r\n", &mut out);
        assert!(out.ends_with(b"\r\n"));
    }

    #[test]
    fn other_encodings_pass_through() {
        for encoding in ["7bit", "8bit", "binary", "x-uuencode", ""] {
            assert_eq!(
                same_in_every_split(encoding, b"as =3D is\r\n"),
                b"as =3D is\r\n"
            );
        }
    }
}
