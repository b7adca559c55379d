//! Polling one folder: the cursor (`{uidvalidity}:{last_uid}`), which
//! messages a batch takes, and reading them: whole, or from their structure
//! when oversized or unreadable ([`super::parts`]).
//!
//! The cursor is the only state: messages are never flagged, moved or
//! deleted. A cursor is handed back only for messages whose events are in
//! the batch, and the host keeps it only once they are stored, so a crash
//! re-reads rather than loses; ingest is idempotent on the Message-ID, so
//! reading again never duplicates. When the folder's UIDVALIDITY changes
//! (the server renumbered it) polling starts over for the same reason.

use std::collections::BTreeMap;

use switchboard_sdk::ChannelEvent;
use switchboard_sdk::mail::{MailBatch, Transport};

use super::client::{ImapError, Session};
use super::codec;
use super::parts::{self, MessageAt};
use crate::inbound::{self, Context, LargeParts, Parsed};
use crate::settings::InitialSync;

/// Most messages one poll takes: a message is at most two events (itself and
/// the receipt a bounce carries), and the host takes at most 100 from a call.
pub const MAX_BATCH_MESSAGES: usize = 50;
/// Most message bytes one poll downloads (at least one message is taken).
pub const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// UIDs asked about per poll, so a huge folder is walked in steps.
pub const UID_WINDOW: u32 = 500;
/// What one poll's events may add up to (the host caps a call's output).
pub const OUTPUT_BUDGET: usize = 768 * 1024;
/// What an oversized message costs in the byte budget.
const OVERSIZED_COST: u64 = 256 * 1024;

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
    /// Over the size limit: read from its structure, files by reference.
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
    // Both callers skip a message past the cut before reading it, so one that
    // reaches here and does not fit is the cut.
    let mut admit = |read: &mut Read, uid: u32, parsed: Parsed| {
        let size = parsed.output_size();
        if !read.parsed.is_empty() && output + size > OUTPUT_BUDGET {
            read.cut_at = Some(uid);
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
                // Past a cut, the message is left for the next poll: not parsed.
                if read.cut_at.is_some_and(|cut| uid >= cut) {
                    return Ok(());
                }
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
            Item::Oversized { .. } => None,
            Item::Whole(_) => Some(match &refused {
                Some(reason) => {
                    format!(
                        "the server could not return the whole message ({reason}); shown in part"
                    )
                }
                None => "the server returned no content for the message; shown in part".to_owned(),
            }),
        };
        let message = MessageAt {
            uid_validity,
            uid,
            size: match item {
                Item::Oversized { size, .. } => Some(*size),
                Item::Whole(_) => None,
            },
        };
        match parts::read_structure(session, message, settings.address, note) {
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

#[cfg(test)]
pub(crate) mod tests;
