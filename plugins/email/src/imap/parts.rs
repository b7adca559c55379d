//! A message's parts by IMAP part path (`1`, `2.1`…): which parts
//! `BODYSTRUCTURE` shows as the text and which as files, reading a message
//! from its structure rather than whole (the header, the start of the text
//! parts, every other part as a file reference `imap:{uidvalidity}/{uid}/{path}`),
//! and copying one referenced part later for `fetch-attachment-to`, a chunk
//! at a time (`BODY.PEEK[part]<offset.length>`), decoded as it arrives
//! ([`crate::transfer`]) into a [`PartSink`], so the connector never holds
//! a part whole.

use imap_proto::{BodyStructure, ContentEncoding};
use switchboard_sdk::mail::Transport;
use switchboard_sdk::{Attachment, DownloadedFile, PluginError};

use super::client::{Fetched, ImapError, Session};
use crate::inbound::{self, Context, LargeParts, MAX_PART_DEPTH, Parsed};
use crate::transfer::Decoder;

/// How much of each text part of an oversized message is read.
const PARTIAL_TEXT_BYTES: u32 = 512 * 1024;
/// Most parts of a message read from its structure that are reported as
/// files; the rest are counted in a note.
pub const MAX_STRUCTURE_FILES: usize = 64;
/// Bytes of a part asked for per `UID FETCH` when it is copied: what the
/// connector holds of it at a time (as sent, then decoded).
pub const PART_CHUNK_BYTES: u32 = 1024 * 1024;

/// A text part of a message, as BODYSTRUCTURE describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    pub path: String,
    pub subtype: String,
    pub charset: Option<String>,
    pub encoding: String,
    /// Its size as sent (encoded).
    pub octets: u64,
}

/// The first text/plain and text/html parts that are not attachments,
/// outside attached messages.
pub fn text_parts(root: &BodyStructure<'_>) -> Vec<TextPart> {
    let mut found: Vec<TextPart> = Vec::new();
    let mut stack: Vec<(&BodyStructure<'_>, String)> = match root {
        BodyStructure::Multipart { bodies, .. } => bodies
            .iter()
            .enumerate()
            .rev()
            .map(|(i, body)| (body, (i + 1).to_string()))
            .collect(),
        other => vec![(other, "1".to_owned())],
    };
    while let Some((node, path)) = stack.pop() {
        match node {
            BodyStructure::Multipart { bodies, .. } => {
                for (i, body) in bodies.iter().enumerate().rev() {
                    stack.push((body, format!("{path}.{}", i + 1)));
                }
            }
            BodyStructure::Text { common, other, .. } => {
                let subtype = common.ty.subtype.to_ascii_lowercase();
                let attachment = common
                    .disposition
                    .as_ref()
                    .is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
                if attachment
                    || !(subtype == "plain" || subtype == "html")
                    || found.iter().any(|f| f.subtype == subtype)
                {
                    continue;
                }
                let charset = common.ty.params.as_ref().and_then(|params| {
                    params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("charset"))
                        .map(|(_, v)| v.to_string())
                });
                found.push(TextPart {
                    path,
                    subtype,
                    charset,
                    encoding: encoding_name(&other.transfer_encoding),
                    octets: u64::from(other.octets),
                });
            }
            _ => {}
        }
    }
    found
}

fn encoding_name(encoding: &ContentEncoding<'_>) -> String {
    match encoding {
        ContentEncoding::SevenBit => "7bit".into(),
        ContentEncoding::EightBit => "8bit".into(),
        ContentEncoding::Binary => "binary".into(),
        ContentEncoding::Base64 => "base64".into(),
        ContentEncoding::QuotedPrintable => "quoted-printable".into(),
        ContentEncoding::Other(other) => other.to_string(),
    }
}

/// A part of a message read from its structure that is reported as a file:
/// every part but the text parts shown as the message, an attached message
/// as one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    pub path: String,
    /// `type/subtype`, lower-case.
    pub content_type: String,
    pub encoding: String,
    /// Its size as sent (encoded).
    pub octets: u64,
    /// An attached message's subject, raw (it may be an encoded word).
    pub subject: Option<Vec<u8>>,
}

impl FilePart {
    /// Its size once decoded, near enough until the host copies it and
    /// records the real one: base64 in 76-character lines carries 57 bytes
    /// in 78.
    pub fn estimated_size(&self) -> u64 {
        if self.encoding.eq_ignore_ascii_case("base64") {
            self.octets / 78 * 57 + self.octets % 78 * 3 / 4
        } else {
            self.octets
        }
    }
}

/// The parts of `root` reported as files (at most `max`, in order), and
/// how many more there are. `texts` are the paths of the text parts shown
/// as the message. Parts nested deeper than [`MAX_PART_DEPTH`] are not
/// reached.
pub fn file_parts(root: &BodyStructure<'_>, texts: &[&str], max: usize) -> (Vec<FilePart>, usize) {
    let mut files = Vec::new();
    let mut more = 0;
    let mut stack: Vec<(&BodyStructure<'_>, String, usize)> = match root {
        BodyStructure::Multipart { bodies, .. } => bodies
            .iter()
            .enumerate()
            .rev()
            .map(|(i, body)| (body, (i + 1).to_string(), 1))
            .collect(),
        other => vec![(other, "1".to_owned(), 1)],
    };
    while let Some((node, path, depth)) = stack.pop() {
        let (common, other, subject) = match node {
            BodyStructure::Multipart { bodies, .. } => {
                if depth < MAX_PART_DEPTH {
                    for (i, body) in bodies.iter().enumerate().rev() {
                        stack.push((body, format!("{path}.{}", i + 1), depth + 1));
                    }
                }
                continue;
            }
            BodyStructure::Text { .. } if texts.contains(&path.as_str()) => continue,
            BodyStructure::Basic { common, other, .. }
            | BodyStructure::Text { common, other, .. } => (common, other, None),
            BodyStructure::Message {
                common,
                other,
                envelope,
                ..
            } => (common, other, envelope.subject.as_ref().map(|s| s.to_vec())),
        };
        if files.len() == max {
            more += 1;
            continue;
        }
        files.push(FilePart {
            path,
            content_type: format!("{}/{}", common.ty.ty, common.ty.subtype).to_ascii_lowercase(),
            encoding: encoding_name(&other.transfer_encoding).to_ascii_lowercase(),
            octets: u64::from(other.octets),
            subject,
        });
    }
    (files, more)
}

/// Which message [`read_structure`] reads.
#[derive(Debug, Clone, Copy)]
pub struct MessageAt {
    pub uid_validity: u32,
    pub uid: u32,
    /// Its size when it is read this way for being over the limit.
    pub size: Option<u64>,
}

/// Message `uid` from its structure, as one event: the header, the first
/// [`PARTIAL_TEXT_BYTES`] of its text parts, and every other part as a file
/// referenced for `fetch-attachment-to` (named and typed from the part's own
/// MIME header). `note` is the problem to report, if any; `None` when the
/// server returns nothing.
pub fn read_structure<T: Transport>(
    session: &mut Session<T>,
    message: MessageAt,
    address: &str,
    note: Option<String>,
) -> Result<Option<Parsed>, ImapError> {
    let uid = message.uid;
    let mut header = None;
    let mut structure = None;
    session.uid_fetch(
        &uid.to_string(),
        "(UID BODYSTRUCTURE BODY.PEEK[HEADER])",
        |mut fetched| {
            if fetched.uid == Some(uid) {
                header = fetched.take_section("HEADER");
                structure = fetched.body_structure.take();
            }
            Ok(())
        },
    )?;
    let Some(header) = header else {
        return Ok(None);
    };
    let mut notes: Vec<String> = note.into_iter().collect();
    let parts = structure.as_ref().map(text_parts).unwrap_or_default();
    let mut bodies: Vec<(TextPart, Vec<u8>)> = Vec::new();
    if !parts.is_empty() {
        let items = parts
            .iter()
            .map(|p| format!("BODY.PEEK[{}]<0.{PARTIAL_TEXT_BYTES}>", p.path))
            .collect::<Vec<_>>()
            .join(" ");
        let mut fetched_parts: Option<Fetched> = None;
        session.uid_fetch(&uid.to_string(), &format!("(UID {items})"), |fetched| {
            if fetched.uid == Some(uid) {
                fetched_parts = Some(fetched);
            }
            Ok(())
        })?;
        if let Some(mut fetched) = fetched_parts {
            for part in &parts {
                if let Some(bytes) = fetched.take_section(&part.path) {
                    bodies.push((part.clone(), bytes));
                }
            }
        }
    }
    if let Some(size) = message.size {
        for part in parts
            .iter()
            .filter(|p| p.octets > u64::from(PARTIAL_TEXT_BYTES))
        {
            notes.push(format!(
                "message is {}: its {} was read to the first {}",
                inbound::human_size(size),
                if part.subtype == "html" {
                    "HTML"
                } else {
                    "text"
                },
                inbound::human_size(u64::from(PARTIAL_TEXT_BYTES))
            ));
        }
    }
    let files = match &structure {
        Some(root) => {
            let texts: Vec<&str> = parts.iter().map(|p| p.path.as_str()).collect();
            let (files, more) = file_parts(root, &texts, MAX_STRUCTURE_FILES);
            if more > 0 {
                notes.push(format!(
                    "{more} more parts than the first {MAX_STRUCTURE_FILES} were not copied"
                ));
            }
            referenced_files(session, message, &header, root, &files)?
        }
        None => Vec::new(),
    };
    let raw = assemble(&header, &bodies);
    let context = Context {
        address,
        large_parts: LargeParts::Drop,
    };
    let mut parsed = inbound::parse(&raw, &context, notes);
    parsed.message.attachments.extend(files);
    Ok(Some(parsed))
}

/// The attachments of `files`, each named from its MIME header (fetched
/// for all of them in one command; a single-part message's is `header`).
fn referenced_files<T: Transport>(
    session: &mut Session<T>,
    message: MessageAt,
    header: &[u8],
    root: &BodyStructure<'_>,
    files: &[FilePart],
) -> Result<Vec<Attachment>, ImapError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let multipart = matches!(root, BodyStructure::Multipart { .. });
    let mut mime: Option<Fetched> = None;
    if multipart {
        let items = files
            .iter()
            .map(|f| format!("BODY.PEEK[{}.MIME]", f.path))
            .collect::<Vec<_>>()
            .join(" ");
        session.uid_fetch(
            &message.uid.to_string(),
            &format!("(UID {items})"),
            |fetched| {
                if fetched.uid == Some(message.uid) {
                    mime = Some(fetched);
                }
                Ok(())
            },
        )?;
    }
    Ok(files
        .iter()
        .map(|file| {
            let part_header = match (&mut mime, multipart) {
                (Some(fetched), true) => fetched
                    .take_section(&format!("{}.MIME", file.path))
                    .unwrap_or_default(),
                (_, true) => Vec::new(),
                (_, false) => header.to_vec(),
            };
            inbound::file_reference(
                format!(
                    "imap:{}/{}/{}",
                    message.uid_validity, message.uid, file.path
                ),
                &part_header,
                &file.content_type,
                file.estimated_size(),
                file.subject.as_deref(),
            )
        })
        .collect())
}

/// A message made of `header` (without its MIME fields) and the given text
/// parts as a `multipart/alternative`, for the same parser as whole mail.
pub fn assemble(header: &[u8], parts: &[(TextPart, Vec<u8>)]) -> Vec<u8> {
    let mut out = strip_mime_fields(header);
    if parts.is_empty() {
        out.extend_from_slice(
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        );
        return out;
    }
    let boundary = {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (_, bytes) in parts {
            hasher.update(bytes);
        }
        let digest = hasher.finalize();
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("=_sb_partial_{hex}")
    };
    out.extend_from_slice(
        format!("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n")
            .as_bytes(),
    );
    for (part, bytes) in parts {
        let charset = part
            .charset
            .as_deref()
            .filter(|c| {
                c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.:".contains(ch))
            })
            .unwrap_or("us-ascii");
        let encoding = if part
            .encoding
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        {
            part.encoding.as_str()
        } else {
            "8bit"
        };
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: text/{}; charset=\"{charset}\"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n",
                part.subtype
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// `header` without `Content-*` and `MIME-Version` fields (with their
/// folded lines) and without its closing blank line.
fn strip_mime_fields(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut skipping = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        let blank = line.iter().all(|b| matches!(b, b'\r' | b'\n'));
        if blank {
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let lower = line.to_ascii_lowercase();
            skipping = lower.starts_with(b"content-") || lower.starts_with(b"mime-version");
        }
        if !skipping {
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// A part reference of `fetch-attachment`: `imap:{uidvalidity}/{uid}/{path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReference {
    pub uid_validity: u32,
    pub uid: u32,
    pub path: Vec<u32>,
}

impl PartReference {
    pub fn parse(url: &str) -> Option<PartReference> {
        let rest = url.strip_prefix("imap:")?;
        let mut pieces = rest.splitn(3, '/');
        let uid_validity = pieces.next()?.parse().ok()?;
        let uid = pieces.next()?.parse().ok()?;
        let path = pieces
            .next()?
            .split('.')
            .map(|n| n.parse::<u32>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<u32>>>()?;
        (!path.is_empty() && path.len() <= 64).then_some(PartReference {
            uid_validity,
            uid,
            path,
        })
    }

    fn path_text(&self) -> String {
        self.path
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Where a copied part's decoded bytes go: the host's blob writer, or
/// memory.
pub trait PartSink {
    /// Appends the next decoded bytes.
    ///
    /// # Errors
    ///
    /// What stops the copy (the host refuses the file).
    fn write(&mut self, bytes: &[u8]) -> Result<(), PluginError>;
}

impl PartSink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Copies one part a poll referenced into `sink`, decoded, [`PART_CHUNK_BYTES`]
/// at a time (`BODY.PEEK[part]<offset.length>`), so the connector never
/// holds the part whole; answers the part's content type.
///
/// # Errors
///
/// [`PluginError::Permanent`] when the folder was renumbered or the message
/// or part is gone; the session's and the sink's errors.
pub fn fetch_part_to<T: Transport>(
    session: &mut Session<T>,
    mailbox: &str,
    reference: &PartReference,
    sink: &mut impl PartSink,
) -> Result<Option<String>, PluginError> {
    fetch_part_in_chunks(session, mailbox, reference, sink, PART_CHUNK_BYTES)
}

/// [`fetch_part_to`] with `chunk` bytes per request.
fn fetch_part_in_chunks<T: Transport>(
    session: &mut Session<T>,
    mailbox: &str,
    reference: &PartReference,
    sink: &mut impl PartSink,
    chunk: u32,
) -> Result<Option<String>, PluginError> {
    let status = session.examine(mailbox)?;
    if status.uid_validity.unwrap_or(0) != reference.uid_validity {
        return Err(PluginError::Permanent(
            "the IMAP folder was renumbered since the message was read; the attachment is gone"
                .into(),
        ));
    }
    let path = reference.path_text();
    let uid = reference.uid.to_string();
    let mut content_type = None;
    let mut decoder = None;
    let mut decoded = Vec::new();
    let mut offset = 0u64;
    loop {
        // The first request also asks how the part is encoded.
        let items = if offset == 0 {
            format!("(UID BODYSTRUCTURE BODY.PEEK[{path}]<0.{chunk}>)")
        } else {
            format!("(UID BODY.PEEK[{path}]<{offset}.{chunk}>)")
        };
        let mut found: Option<Fetched> = None;
        session.uid_fetch(&uid, &items, |fetched| {
            if fetched.uid == Some(reference.uid) {
                found = Some(fetched);
            }
            Ok(())
        })?;
        let Some(mut fetched) = found else {
            return Err(PluginError::Permanent(
                "the message is no longer in the IMAP folder".into(),
            ));
        };
        if offset == 0 {
            let part = fetched
                .body_structure
                .as_ref()
                .and_then(|root| part_at(root, &reference.path));
            let (declared, encoding) = match part {
                Some(part) => describe_part(part),
                None => (None, "7bit".to_owned()),
            };
            content_type = declared;
            decoder = Some(Decoder::for_encoding(&encoding));
        }
        let decoder = decoder.as_mut().expect("set by the first request");
        let Some(bytes) = fetched.take_section(&path) else {
            if offset == 0 {
                return Err(PluginError::Permanent(format!(
                    "the message has no part {path}"
                )));
            }
            break;
        };
        if bytes.len() > chunk as usize {
            return Err(PluginError::Transient(format!(
                "the IMAP server sent {} bytes of part {path} when {chunk} were asked",
                bytes.len()
            )));
        }
        decoded.clear();
        decoder.feed(&bytes, &mut decoded);
        sink.write(&decoded)?;
        offset += bytes.len() as u64;
        if bytes.len() < chunk as usize {
            break;
        }
    }
    decoded.clear();
    if let Some(decoder) = decoder {
        decoder.finish(&mut decoded);
    }
    sink.write(&decoded)?;
    Ok(content_type)
}

/// [`fetch_part_to`] into memory, for `fetch-attachment`.
///
/// # Errors
///
/// As [`fetch_part_to`].
pub fn fetch_part<T: Transport>(
    session: &mut Session<T>,
    mailbox: &str,
    reference: &PartReference,
) -> Result<DownloadedFile, PluginError> {
    let mut content = Vec::new();
    let content_type = fetch_part_to(session, mailbox, reference, &mut content)?;
    Ok(DownloadedFile {
        content,
        content_type,
    })
}

/// The BODYSTRUCTURE node at IMAP part `path`.
pub fn part_at<'a>(root: &'a BodyStructure<'a>, path: &[u32]) -> Option<&'a BodyStructure<'a>> {
    let mut node = root;
    for (depth, n) in path.iter().enumerate() {
        let index = usize::try_from(*n).ok()?.checked_sub(1)?;
        node = match node {
            BodyStructure::Multipart { bodies, .. } => bodies.get(index)?,
            // Inside an attached message, its own numbering.
            BodyStructure::Message { body, .. } if depth > 0 => match body.as_ref() {
                BodyStructure::Multipart { bodies, .. } => bodies.get(index)?,
                single if index == 0 => single,
                _ => return None,
            },
            single if depth == 0 && index == 0 => single,
            _ => return None,
        };
    }
    Some(node)
}

fn describe_part(part: &BodyStructure<'_>) -> (Option<String>, String) {
    let (common, other) = match part {
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => (common, other),
        BodyStructure::Multipart { common, .. } => {
            return (
                Some(format!("multipart/{}", common.ty.subtype).to_ascii_lowercase()),
                "7bit".into(),
            );
        }
    };
    (
        Some(format!("{}/{}", common.ty.ty, common.ty.subtype).to_ascii_lowercase()),
        encoding_name(&other.transfer_encoding).to_ascii_lowercase(),
    )
}

#[cfg(test)]
mod tests;
