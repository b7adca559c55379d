//! A minimal IMAP client for the baselines: how fast the mail server alone
//! serves the mailbox, with nothing parsed and nothing kept (literals are
//! counted and dropped). Plain TCP on loopback, as the connector is set up
//! in the benchmark (`security = plain`).

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// The connector's batch limits (plugins/email/src/imap/sync.rs), for the
/// connector-shaped baseline.
pub const UID_WINDOW: u32 = 500;
pub const MAX_BATCH_MESSAGES: usize = 50;
pub const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;

const TIMEOUT: Duration = Duration::from_secs(120);

/// What `EXAMINE` said.
#[derive(Debug, Default, Clone, Copy)]
pub struct Status {
    pub exists: u32,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
}

/// What a `FETCH` brought.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    pub messages: usize,
    pub literal_bytes: u64,
    /// `(uid, RFC822.SIZE)` when asked for.
    pub sizes: Vec<(u32, u64)>,
}

pub struct Imap {
    io: BufStream<TcpStream>,
    tag: u32,
}

impl Imap {
    /// Connects to 127.0.0.1:`port` and logs in.
    pub async fn login(port: u16, user: &str, password: &str) -> anyhow::Result<Imap> {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to IMAP on 127.0.0.1:{port}"))?;
        tcp.set_nodelay(true)?;
        let mut imap = Imap {
            io: BufStream::with_capacity(256 << 10, 64 << 10, tcp),
            tag: 0,
        };
        let greeting = imap.line().await?;
        if !greeting.starts_with(b"* OK") {
            bail!("IMAP greeting: {}", String::from_utf8_lossy(&greeting));
        }
        imap.command(
            &format!("LOGIN {} {}", quote(user), quote(password)),
            &mut Fetched::default(),
        )
        .await?;
        Ok(imap)
    }

    /// `EXAMINE mailbox` (read-only).
    pub async fn examine(&mut self, mailbox: &str) -> anyhow::Result<Status> {
        let lines = self
            .command(
                &format!("EXAMINE {}", quote(mailbox)),
                &mut Fetched::default(),
            )
            .await?;
        let mut status = Status::default();
        for line in lines {
            let text = String::from_utf8_lossy(&line);
            if let Some(n) = text
                .strip_prefix("* ")
                .and_then(|t| t.strip_suffix(" EXISTS"))
            {
                status.exists = n.trim().parse().unwrap_or(0);
            }
            let code = |name: &str| {
                text.find(&format!("[{name} "))
                    .and_then(|at| text[at + name.len() + 2..].split(']').next())
                    .and_then(|n| n.trim().parse().ok())
            };
            status.uid_next = status.uid_next.or_else(|| code("UIDNEXT"));
            status.uid_validity = status.uid_validity.or_else(|| code("UIDVALIDITY"));
        }
        Ok(status)
    }

    /// `UID FETCH set items`; literals are counted, not kept.
    pub async fn uid_fetch(&mut self, set: &str, items: &str) -> anyhow::Result<Fetched> {
        let mut fetched = Fetched::default();
        let lines = self
            .command(&format!("UID FETCH {set} {items}"), &mut fetched)
            .await?;
        for line in lines {
            let text = String::from_utf8_lossy(&line);
            if !text.starts_with("* ") || !text.contains(" FETCH ") {
                continue;
            }
            fetched.messages += 1;
            let number = |name: &str| {
                let at = text.find(name)? + name.len();
                text[at..]
                    .trim_start()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            };
            if let (Some(uid), Some(size)) = (number("UID "), number("RFC822.SIZE ")) {
                fetched.sizes.push((uid as u32, size));
            }
        }
        Ok(fetched)
    }

    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT", &mut Fetched::default()).await;
    }

    /// Sends a tagged command; returns its untagged responses (literals left
    /// out, counted in `fetched`). `Err` unless it ends in OK.
    async fn command(
        &mut self,
        command: &str,
        fetched: &mut Fetched,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let work = async {
            self.io
                .write_all(format!("{tag} {command}\r\n").as_bytes())
                .await?;
            self.io.flush().await?;
            let mut untagged = Vec::new();
            loop {
                let mut line = self.line().await?;
                while let Some(n) = literal_len(&line) {
                    skip(&mut self.io, n).await?;
                    fetched.literal_bytes += n;
                    line.extend_from_slice(b" ");
                    line.extend_from_slice(&self.line().await?);
                }
                if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                    let status = String::from_utf8_lossy(&line[tag.len() + 1..]).into_owned();
                    if status.starts_with("OK") {
                        return Ok(untagged);
                    }
                    let shown = if command.starts_with("LOGIN") {
                        "LOGIN …"
                    } else {
                        command
                    };
                    bail!("IMAP {shown} → {status}");
                }
                untagged.push(line);
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .unwrap_or_else(|_| bail!("IMAP {command} timed out"))
    }

    /// One line without its CRLF.
    async fn line(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = self.io.read_until(b'\n', &mut line).await?;
        if n == 0 {
            bail!("the IMAP server closed the connection");
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(line)
    }
}

async fn skip(io: &mut BufStream<TcpStream>, n: u64) -> anyhow::Result<()> {
    let copied = tokio::io::copy(&mut (&mut *io).take(n), &mut tokio::io::sink()).await?;
    if copied != n {
        bail!("the IMAP server closed the connection inside a literal");
    }
    Ok(())
}

/// `n` when the line ends with `{n}`.
fn literal_len(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let inner = text.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A set of UIDs as IMAP writes it (`3:7,9`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// How many messages `mailbox` holds now.
pub async fn count(port: u16, user: &str, password: &str, mailbox: &str) -> anyhow::Result<u32> {
    let mut imap = Imap::login(port, user, password).await?;
    let status = imap.examine(mailbox).await?;
    imap.logout().await;
    Ok(status.exists)
}

/// What one baseline read of the mailbox did.
pub struct Read {
    pub messages: usize,
    pub bytes: u64,
    pub sessions: usize,
    pub elapsed: Duration,
}

/// Every message in one session: `UID FETCH 1:* (BODY.PEEK[])` — the most
/// the server can do for one reader.
pub async fn read_all(
    port: u16,
    user: &str,
    password: &str,
    mailbox: &str,
) -> anyhow::Result<Read> {
    let started = std::time::Instant::now();
    let mut imap = Imap::login(port, user, password).await?;
    imap.examine(mailbox).await?;
    let fetched = imap.uid_fetch("1:*", "(UID BODY.PEEK[])").await?;
    imap.logout().await;
    Ok(Read {
        messages: fetched.messages,
        bytes: fetched.literal_bytes,
        sessions: 1,
        elapsed: started.elapsed(),
    })
}

/// Every message the way the connector asks for them: per poll a new
/// session (connect, LOGIN, EXAMINE), the sizes of the next [`UID_WINDOW`]
/// UIDs, then the bodies of at most [`MAX_BATCH_MESSAGES`] messages and
/// [`MAX_BATCH_BYTES`], LOGOUT — the mail server's share of the connector's work.
pub async fn read_in_batches(
    port: u16,
    user: &str,
    password: &str,
    mailbox: &str,
) -> anyhow::Result<Read> {
    let started = std::time::Instant::now();
    let mut last = 0u32;
    let (mut messages, mut bytes, mut sessions) = (0usize, 0u64, 0usize);
    loop {
        let mut imap = Imap::login(port, user, password).await?;
        sessions += 1;
        let status = imap.examine(mailbox).await?;
        let next = status.uid_next.unwrap_or(u32::MAX);
        if last + 1 >= next {
            imap.logout().await;
            break;
        }
        let end = (next - 1).min(last + UID_WINDOW);
        let sizes = imap
            .uid_fetch(&format!("{}:{end}", last + 1), "(UID RFC822.SIZE)")
            .await?
            .sizes;
        let mut sizes: Vec<(u32, u64)> = sizes.into_iter().filter(|(uid, _)| *uid > last).collect();
        sizes.sort_unstable();
        if sizes.is_empty() {
            last = end;
            imap.logout().await;
            continue;
        }
        let mut take = Vec::new();
        let mut total = 0u64;
        for (uid, size) in sizes {
            if take.len() >= MAX_BATCH_MESSAGES
                || (!take.is_empty() && total + size > MAX_BATCH_BYTES)
            {
                break;
            }
            total += size;
            take.push(uid);
        }
        let fetched = imap.uid_fetch(&uid_set(&take), "(UID BODY.PEEK[])").await?;
        messages += fetched.messages;
        bytes += fetched.literal_bytes;
        last = *take.last().expect("at least one");
        imap.logout().await;
    }
    Ok(Read {
        messages,
        bytes,
        sessions,
        elapsed: started.elapsed(),
    })
}

/// Every part in `parts` (`(uid, part path)`) the way `fetch-attachment`
/// asks for one: a session per part (connect, LOGIN, EXAMINE), `UID FETCH
/// uid (UID BODYSTRUCTURE BODY.PEEK[path])`, LOGOUT.
pub async fn read_parts(
    port: u16,
    user: &str,
    password: &str,
    mailbox: &str,
    parts: &[(u32, String)],
) -> anyhow::Result<Read> {
    let started = std::time::Instant::now();
    let (mut messages, mut bytes) = (0usize, 0u64);
    for (uid, path) in parts {
        let mut imap = Imap::login(port, user, password).await?;
        imap.examine(mailbox).await?;
        let fetched = imap
            .uid_fetch(
                &uid.to_string(),
                &format!("(UID BODYSTRUCTURE BODY.PEEK[{path}])"),
            )
            .await?;
        messages += fetched.messages;
        bytes += fetched.literal_bytes;
        imap.logout().await;
    }
    Ok(Read {
        messages,
        bytes,
        sessions: parts.len(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_literals() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(literal_len(b"* 1 FETCH (UID 1 BODY[] {123}"), Some(123));
        assert_eq!(literal_len(b"* 1 FETCH (UID 1)"), None);
    }
}
