//! Polling one folder: the cursor (`{uidvalidity}:{last_uid}`), which
//! messages a batch takes, reading them (whole, or headers and text only
//! when oversized or unreadable), and fetching one part later for
//! `fetch-attachment`.
//!
//! The cursor is the only state: messages are never flagged, moved or
//! deleted. A cursor is handed back only for messages whose events are in
//! the batch, and the host keeps it only once they are stored, so a crash
//! re-reads rather than loses; ingest is idempotent on the Message-ID, so
//! reading again never duplicates. When the folder's UIDVALIDITY changes
//! (the server renumbered it) polling starts over for the same reason.

use std::collections::BTreeMap;

use base64::Engine as _;
use imap_proto::{BodyStructure, ContentEncoding};
use switchboard_sdk::mail::{MailBatch, Transport};
use switchboard_sdk::{ChannelEvent, DownloadedFile, PluginError};

use super::client::{Fetched, ImapError, Session};
use super::codec;
use crate::inbound::{self, Context, LargeParts, Parsed};
use crate::settings::InitialSync;

/// Most messages one poll takes.
pub const MAX_BATCH_MESSAGES: usize = 25;
/// Most message bytes one poll downloads (at least one message is taken).
pub const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// UIDs asked about per poll, so a huge folder is walked in steps.
pub const UID_WINDOW: u32 = 500;
/// What one poll's events may add up to (the host caps a call's output).
pub const OUTPUT_BUDGET: usize = 768 * 1024;
/// What an oversized message costs in the byte budget.
const OVERSIZED_COST: u64 = 256 * 1024;
/// How much of each text part of an oversized message is read.
const PARTIAL_TEXT_BYTES: u32 = 512 * 1024;

/// Where the last poll stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub uid_validity: u32,
    pub last_uid: u32,
}

impl Cursor {
    /// Reads `{uidvalidity}:{last_uid}`; anything else is no cursor.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (validity, last) = text.trim().split_once(':')?;
        Some(Cursor {
            uid_validity: validity.parse().ok()?,
            last_uid: last.parse().ok()?,
        })
    }

    pub fn encode(&self) -> String {
        format!("{}:{}", self.uid_validity, self.last_uid)
    }
}

/// The last UID already read in a folder of this `uid_validity`: the
/// cursor's when it is of the same generation, else 0 (start over).
pub fn resume_after(cursor: Option<Cursor>, uid_validity: u32) -> u32 {
    match cursor {
        Some(cursor) if cursor.uid_validity == uid_validity => cursor.last_uid,
        _ => 0,
    }
}

/// The UID range the next poll asks about: after `last`, at most
/// [`UID_WINDOW`] UIDs, never past the folder's `uid_next`; `None` when the
/// folder has nothing after `last`.
pub fn window(last: u32, uid_next: Option<u32>) -> Option<(u32, Option<u32>)> {
    let start = last.checked_add(1)?;
    match uid_next {
        Some(next) if start >= next => None,
        Some(next) => Some((
            start,
            Some(next.saturating_sub(1).min(last.saturating_add(UID_WINDOW))),
        )),
        None => Some((start, None)),
    }
}

/// One message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Read whole.
    Whole(u32),
    /// Over the size limit: headers and text only.
    Oversized { uid: u32, size: u64 },
}

impl Item {
    pub fn uid(&self) -> u32 {
        match self {
            Item::Whole(uid) | Item::Oversized { uid, .. } => *uid,
        }
    }
}

/// The messages a poll takes of `sizes` (UID, RFC822.SIZE, ascending):
/// at most [`MAX_BATCH_MESSAGES`] and [`MAX_BATCH_BYTES`], at least one;
/// `true` when some are left for the next poll.
pub fn plan(sizes: &[(u32, u64)], max_message_bytes: u64) -> (Vec<Item>, bool) {
    let mut items = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        let oversized = size > max_message_bytes;
        let cost = if oversized { OVERSIZED_COST } else { size };
        if items.len() >= MAX_BATCH_MESSAGES
            || (!items.is_empty() && bytes + cost > MAX_BATCH_BYTES)
        {
            break;
        }
        bytes += cost;
        items.push(if oversized {
            Item::Oversized { uid, size }
        } else {
            Item::Whole(uid)
        });
    }
    let more = items.len() < sizes.len();
    (items, more)
}

/// What polling needs to know.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings<'a> {
    pub mailbox: &'a str,
    pub address: &'a str,
    pub initial_sync: InitialSync,
    pub max_message_bytes: u64,
}

/// One poll over an authenticated session.
///
/// # Errors
///
/// [`ImapError`] when the folder cannot be read at all; a message that
/// cannot be read is reported with a problem (or skipped), never an error.
pub fn poll<T: Transport>(
    session: &mut Session<T>,
    cursor: Option<&str>,
    settings: &PollSettings<'_>,
) -> Result<MailBatch, ImapError> {
    let status = session.examine(settings.mailbox)?;
    let uid_validity = status.uid_validity.unwrap_or(0);
    let cursor = cursor.and_then(Cursor::parse);
    if let Some(previous) = cursor
        && previous.uid_validity != uid_validity
    {
        crate::warn(format_args!(
            "IMAP folder `{}` was renumbered (UIDVALIDITY {} → {uid_validity}): reading it again",
            settings.mailbox, previous.uid_validity
        ));
    }
    let at = |last_uid| {
        Some(
            Cursor {
                uid_validity,
                last_uid,
            }
            .encode(),
        )
    };
    let empty = |last_uid, more| MailBatch {
        cursor: at(last_uid),
        more,
        ..MailBatch::default()
    };

    if cursor.is_none() && settings.initial_sync == InitialSync::New {
        let last = match (status.uid_next, status.exists) {
            (_, Some(0)) => 0,
            (Some(next), _) => next.saturating_sub(1),
            (None, _) => highest_uid(session)?,
        };
        return Ok(empty(last, false));
    }
    let last = resume_after(cursor, uid_validity);
    if status.exists == Some(0) {
        return Ok(empty(last, false));
    }
    let Some((start, end)) = window(last, status.uid_next) else {
        return Ok(empty(last, false));
    };
    let range = match end {
        Some(end) => format!("{start}:{end}"),
        None => format!("{start}:*"),
    };
    let window_more =
        matches!((end, status.uid_next), (Some(end), Some(next)) if end < next.saturating_sub(1));

    let mut sizes = Vec::new();
    session.uid_fetch(&range, "(UID RFC822.SIZE)", |fetched| {
        // `n:*` includes the highest UID even when it is below `n`.
        if let (Some(uid), Some(size)) = (fetched.uid, fetched.size)
            && uid > last
            && end.is_none_or(|end| uid <= end)
        {
            sizes.push((uid, size));
        }
        Ok(())
    })?;
    sizes.sort_unstable();
    sizes.dedup_by_key(|(uid, _)| *uid);
    if sizes.is_empty() {
        return Ok(empty(end.unwrap_or(last), window_more));
    }

    let (items, more_in_window) = plan(&sizes, settings.max_message_bytes);
    let mut read = read_batch(session, uid_validity, &items, settings)?;
    let mut batch = MailBatch::default();
    let mut through = last;
    for item in &items {
        let uid = item.uid();
        if read.cut_at.is_some_and(|cut| uid >= cut) {
            break;
        }
        if let Some(parsed) = read.parsed.remove(&uid) {
            push(&mut batch, parsed);
        }
        through = uid;
    }
    let cut = read.cut_at.is_some();
    batch.cursor = at(through);
    batch.more = cut || more_in_window || window_more;
    Ok(batch)
}

fn push(batch: &mut MailBatch, parsed: Parsed) {
    let Parsed {
        message,
        envelope,
        receipt,
    } = parsed;
    batch.events.push(ChannelEvent::Message(message));
    batch.envelopes.push(envelope);
    if let Some(receipt) = receipt {
        batch.events.push(ChannelEvent::Receipt(receipt));
    }
}

fn highest_uid<T: Transport>(session: &mut Session<T>) -> Result<u32, ImapError> {
    let mut highest = 0;
    session.uid_fetch("*", "(UID)", |fetched| {
        highest = highest.max(fetched.uid.unwrap_or(0));
        Ok(())
    })?;
    Ok(highest)
}

/// The messages of one batch, read.
struct Read {
    parsed: BTreeMap<u32, Parsed>,
    /// The first UID left for the next poll because the output budget ran out.
    cut_at: Option<u32>,
}

fn read_batch<T: Transport>(
    session: &mut Session<T>,
    uid_validity: u32,
    items: &[Item],
    settings: &PollSettings<'_>,
) -> Result<Read, ImapError> {
    let context = |uid: u32| Context {
        address: settings.address,
        large_parts: LargeParts::ByReference {
            prefix: format!("imap:{uid_validity}/{uid}/"),
        },
    };
    let mut read = Read {
        parsed: BTreeMap::new(),
        cut_at: None,
    };
    let mut output = 0usize;
    let mut admit = |read: &mut Read, uid: u32, parsed: Parsed| {
        if read.cut_at.is_some_and(|cut| uid >= cut) {
            return;
        }
        let size = parsed.output_size();
        if !read.parsed.is_empty() && output + size > OUTPUT_BUDGET {
            read.cut_at = Some(read.cut_at.map_or(uid, |cut| cut.min(uid)));
            return;
        }
        output += size;
        read.parsed.insert(uid, parsed);
    };

    let whole: Vec<u32> = items
        .iter()
        .filter_map(|item| match item {
            Item::Whole(uid) => Some(*uid),
            Item::Oversized { .. } => None,
        })
        .collect();
    let mut refused = None;
    if !whole.is_empty() {
        let result = session.uid_fetch(
            &codec::uid_set(&whole),
            "(UID BODY.PEEK[])",
            |mut fetched| {
                let Some(uid) = fetched.uid.filter(|uid| whole.contains(uid)) else {
                    return Ok(());
                };
                if let Some(raw) = fetched.take_section("") {
                    let parsed = inbound::parse(&raw, &context(uid), Vec::new());
                    drop(raw);
                    admit(&mut read, uid, parsed);
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => {}
            // Some servers refuse a batch for one bad message: the rest is
            // read one by one below.
            Err(ImapError::Refused { completion, .. }) => refused = Some(completion.describe()),
            Err(other) => return Err(other),
        }
    }

    for item in items {
        let uid = item.uid();
        if read.parsed.contains_key(&uid) || read.cut_at.is_some_and(|cut| uid >= cut) {
            continue;
        }
        let note = match item {
            Item::Oversized { size, .. } => format!(
                "message is {}, over the {} limit: attachments not copied",
                inbound::human_size(*size),
                inbound::human_size(settings.max_message_bytes)
            ),
            Item::Whole(_) => match &refused {
                Some(reason) => {
                    format!(
                        "the server could not return the whole message ({reason}); shown in part"
                    )
                }
                None => "the server returned no content for the message; shown in part".to_owned(),
            },
        };
        match read_partial(session, uid, settings.address, note) {
            Ok(Some(parsed)) => admit(&mut read, uid, parsed),
            Ok(None) => crate::warn(format_args!(
                "IMAP message UID {uid} is gone or unreadable; skipped"
            )),
            Err(ImapError::Refused { completion, .. }) => crate::warn(format_args!(
                "IMAP message UID {uid} cannot be read ({}); skipped",
                completion.describe()
            )),
            Err(other) => return Err(other),
        }
    }
    Ok(read)
}

/// A text part of a message, as BODYSTRUCTURE describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    pub path: String,
    pub subtype: String,
    pub charset: Option<String>,
    pub encoding: String,
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

/// Headers and the start of the text parts of message `uid`, as one event
/// with `note` as its problem; `None` when the server returns nothing.
fn read_partial<T: Transport>(
    session: &mut Session<T>,
    uid: u32,
    address: &str,
    note: String,
) -> Result<Option<Parsed>, ImapError> {
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
            for part in parts {
                if let Some(bytes) = fetched.take_section(&part.path) {
                    bodies.push((part, bytes));
                }
            }
        }
    }
    let raw = assemble(&header, &bodies);
    let context = Context {
        address,
        large_parts: LargeParts::Drop,
    };
    Ok(Some(inbound::parse(&raw, &context, vec![note])))
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

/// Downloads one part a poll referenced, decoded.
///
/// # Errors
///
/// [`PluginError::Permanent`] when the folder was renumbered or the message
/// or part is gone; the session's errors.
pub fn fetch_part<T: Transport>(
    session: &mut Session<T>,
    mailbox: &str,
    reference: &PartReference,
) -> Result<DownloadedFile, PluginError> {
    let status = session.examine(mailbox)?;
    if status.uid_validity.unwrap_or(0) != reference.uid_validity {
        return Err(PluginError::Permanent(
            "the IMAP folder was renumbered since the message was read; the attachment is gone"
                .into(),
        ));
    }
    let path = reference.path_text();
    let mut found: Option<Fetched> = None;
    session.uid_fetch(
        &reference.uid.to_string(),
        &format!("(UID BODYSTRUCTURE BODY.PEEK[{path}])"),
        |fetched| {
            if fetched.uid == Some(reference.uid) {
                found = Some(fetched);
            }
            Ok(())
        },
    )?;
    let mut fetched = found.ok_or_else(|| {
        PluginError::Permanent("the message is no longer in the IMAP folder".into())
    })?;
    let bytes = fetched
        .take_section(&path)
        .ok_or_else(|| PluginError::Permanent(format!("the message has no part {path}")))?;
    let part = fetched
        .body_structure
        .as_ref()
        .and_then(|root| part_at(root, &reference.path));
    let (content_type, encoding) = match part {
        Some(part) => describe_part(part),
        None => (None, "7bit".to_owned()),
    };
    Ok(DownloadedFile {
        content: decode_transfer(&encoding, bytes),
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

/// Undoes a Content-Transfer-Encoding, leniently: whitespace and stray
/// characters in base64 are skipped, broken quoted-printable is kept as is.
pub fn decode_transfer(encoding: &str, bytes: Vec<u8>) -> Vec<u8> {
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let mut clean: Vec<u8> = bytes
                .into_iter()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
                .collect();
            if clean.len() % 4 == 1 {
                clean.pop();
            }
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            engine.decode(&clean).unwrap_or_default()
        }
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(&bytes)
                .unwrap_or(bytes)
        }
        _ => bytes,
    }
}

#[cfg(test)]
mod tests;
