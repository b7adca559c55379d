//! `multipart/form-data` (RFC 7578): reading Mailgun's inbound posts and
//! writing the upload of a MIME message to Mailgun's API.

/// Most fields read from one body.
const MAX_FIELDS: usize = 1000;
/// Longest header block of one field.
const MAX_FIELD_HEADER: usize = 16 * 1024;

/// One form field: text or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Field {
    /// The value as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    param(params, "boundary").filter(|b| !b.is_empty() && b.len() <= 200)
}

/// The value of parameter `name` in `; a=b; c="d"`.
pub fn param(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let last = haystack.len() - needle.len();
    let mut at = from;
    while at <= last {
        let offset = haystack[at..=last].iter().position(|b| *b == needle[0])?;
        at += offset;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// The fields of `body`.
///
/// # Errors
///
/// A description of what is malformed: no opening delimiter, a field
/// without its closing delimiter, too many fields.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Field>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let next_delimiter = format!("\r\n--{boundary}");
    let next_delimiter = next_delimiter.as_bytes();
    let mut at = find(body, delimiter, 0).ok_or("no multipart delimiter")? + delimiter.len();
    let mut fields = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(fields);
        }
        // The rest of the delimiter line.
        let line_end = find(body, b"\n", at).ok_or("delimiter line never ends")?;
        at = line_end + 1;
        let header_end = find(body, b"\r\n\r\n", at)
            .map(|end| (end, end + 4))
            .or_else(|| find(body, b"\n\n", at).map(|end| (end, end + 2)))
            .ok_or("field headers never end")?;
        if header_end.0 - at > MAX_FIELD_HEADER {
            return Err("field headers too long".into());
        }
        let headers = String::from_utf8_lossy(&body[at..header_end.0]).into_owned();
        let data_start = header_end.1;
        let data_end = find(body, next_delimiter, data_start)
            .ok_or("a field without its closing delimiter")?;
        let mut field = Field {
            name: String::new(),
            filename: None,
            content_type: None,
            data: body[data_start..data_end].to_vec(),
        };
        for line in headers.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("Content-Disposition") {
                let params = value.split_once(';').map_or("", |(_, p)| p);
                field.name = param(params, "name").unwrap_or_default();
                field.filename = param(params, "filename").filter(|f| !f.is_empty());
            } else if name.trim().eq_ignore_ascii_case("Content-Type") {
                field.content_type = Some(value.trim().to_owned());
            }
        }
        fields.push(field);
        if fields.len() > MAX_FIELDS {
            return Err("too many fields".into());
        }
        at = data_end + next_delimiter.len();
        if at > body.len() {
            return Err("truncated body".into());
        }
    }
}

/// A `multipart/form-data` body of text fields and files; the boundary
/// comes from the content's hash, so it cannot occur in it.
pub fn build(fields: &[Field]) -> (String, Vec<u8>) {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(&field.data);
    }
    let digest = hasher.finalize();
    let boundary: String = std::iter::once("switchboard-".to_owned())
        .chain(digest.iter().take(16).map(|b| format!("{b:02x}")))
        .collect();
    let mut body = Vec::new();
    let clean = |s: &str| s.replace(['"', '\r', '\n', '\\'], "_");
    for field in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!(
            "Content-Disposition: form-data; name=\"{}\"",
            clean(&field.name)
        );
        if let Some(filename) = &field.filename {
            disposition.push_str(&format!("; filename=\"{}\"", clean(filename)));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = &field.content_type {
            body.extend_from_slice(format!("Content-Type: {}\r\n", clean(content_type)).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&field.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files_round_trip() {
        let fields = vec![
            Field {
                name: "to".into(),
                filename: None,
                content_type: None,
                data: b"a@example.org".to_vec(),
            },
            Field {
                name: "message".into(),
                filename: Some("message.mime".into()),
                content_type: Some("message/rfc822".into()),
                data: b"Subject: hi\r\n\r\nbody with --switchboard- inside\r\n".to_vec(),
            },
        ];
        let (content_type, body) = build(&fields);
        let boundary = boundary(&content_type).unwrap();
        assert_eq!(parse(&body, &boundary).unwrap(), fields);
    }

    #[test]
    fn parameters_with_quotes_and_escapes() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\\\"c\"").as_deref(),
            Some("a b\"c")
        );
        assert_eq!(
            boundary("multipart/form-data;boundary=xyz").as_deref(),
            Some("xyz")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(
            param("; name=\"file\"; filename=\"x;y.txt\"", "filename").as_deref(),
            Some("x;y.txt")
        );
    }

    #[test]
    fn broken_bodies_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"--b",
            b"--b\r\n",
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nno end",
            b"garbage",
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b",
        ] {
            let _ = parse(body, "b");
        }
        let ok = parse(
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b--\r\n",
            "b",
        )
        .unwrap();
        assert_eq!(ok[0].text(), "v");
    }
}
