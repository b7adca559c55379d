//! An IMAP session over any [`Transport`]: greeting, STARTTLS, LOGIN or
//! AUTHENTICATE XOAUTH2, EXAMINE, UID FETCH, LOGOUT — the commands polling
//! needs, nothing that changes the mailbox. The folder is opened read-only
//! (EXAMINE) and bodies are fetched with `BODY.PEEK`, so no flag is ever set.

use std::borrow::Cow;

use base64::Engine as _;
use imap_proto::{
    AttributeValue, BodyStructure, MailboxDatum, MessageSection, ResponseCode, SectionPath,
};
use switchboard_sdk::PluginError;
use switchboard_sdk::mail::{StreamError, Transport};

use super::codec::{self, Arg, Completion, Encoded, Kind, Status};

/// Longest line between literals; FETCH lines with a BODYSTRUCTURE of many
/// parts are the longest an IMAP server sends.
const MAX_LINE: usize = 1024 * 1024;
/// What a response may carry besides its literals.
const MAX_NON_LITERAL: usize = 4 * 1024 * 1024;

/// Why an IMAP exchange failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ImapError {
    /// The connection failed.
    Stream(StreamError),
    /// The server said goodbye (`* BYE`) or never greeted.
    Closed(String),
    /// LOGIN or AUTHENTICATE was refused.
    LoginRefused(Completion),
    /// A command other than login was refused.
    Refused {
        command: &'static str,
        completion: Completion,
    },
    /// Something the operator must change on the server or in the config.
    Config(String),
    /// The server broke the protocol or sent more than the limits allow.
    Protocol(String),
}

impl From<StreamError> for ImapError {
    fn from(error: StreamError) -> Self {
        ImapError::Stream(error)
    }
}

impl From<ImapError> for PluginError {
    /// A refused login is the operator's to fix unless the server says it is
    /// temporarily unavailable; a dropped connection or a confused server
    /// may pass.
    fn from(error: ImapError) -> Self {
        match error {
            ImapError::Stream(error) => error.into(),
            ImapError::Closed(text) => {
                PluginError::Transient(format!("IMAP server closed the connection: {text}"))
            }
            ImapError::LoginRefused(completion) => {
                if completion.code_name().as_deref() == Some("UNAVAILABLE") {
                    PluginError::Transient(format!(
                        "IMAP login temporarily unavailable: {}",
                        completion.describe()
                    ))
                } else {
                    PluginError::Config(format!("IMAP login refused: {}", completion.describe()))
                }
            }
            ImapError::Refused {
                command,
                completion,
            } => {
                PluginError::Transient(format!("IMAP {command} refused: {}", completion.describe()))
            }
            ImapError::Config(text) => PluginError::Config(text),
            ImapError::Protocol(text) => PluginError::Transient(format!("IMAP: {text}")),
        }
    }
}

/// The read-only state of the folder, as EXAMINE reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub uid_validity: Option<u32>,
    pub uid_next: Option<u32>,
    pub exists: Option<u32>,
}

/// One `* n FETCH (…)` response, with the parts polling asks for.
#[derive(Debug, Default)]
pub struct Fetched {
    pub uid: Option<u32>,
    pub size: Option<u64>,
    /// Body sections by name: `""` for `BODY[]`, `HEADER`, `1.2`, `1.2.MIME`.
    /// NIL sections are absent.
    pub sections: Vec<(String, Vec<u8>)>,
    pub body_structure: Option<BodyStructure<'static>>,
}

impl Fetched {
    /// Takes the section named `name` out.
    pub fn take_section(&mut self, name: &str) -> Option<Vec<u8>> {
        let at = self.sections.iter().position(|(n, _)| n == name)?;
        Some(self.sections.swap_remove(at).1)
    }
}

/// An authenticated or not-yet-authenticated IMAP session.
pub struct Session<T: Transport> {
    transport: T,
    next_tag: u32,
    capabilities: Vec<String>,
    /// Largest literal accepted.
    max_literal: usize,
}

impl<T: Transport> Session<T> {
    /// Reads the greeting and, with `starttls`, upgrades the connection.
    ///
    /// # Errors
    ///
    /// [`ImapError::Closed`] when the server greets with BYE;
    /// [`ImapError::Config`] when STARTTLS is asked for and not offered.
    pub fn start(transport: T, starttls: bool, max_literal: usize) -> Result<Self, ImapError> {
        let mut session = Session {
            transport,
            next_tag: 1,
            capabilities: Vec::new(),
            max_literal,
        };
        let greeting = session.read_response()?;
        match codec::parse_untagged_status(&greeting) {
            Some((word, _, _)) if word == "OK" || word == "PREAUTH" => {}
            Some((word, _, text)) if word == "BYE" => return Err(ImapError::Closed(text)),
            _ => {
                return Err(ImapError::Protocol(format!(
                    "unexpected greeting: {}",
                    printable(&greeting)
                )));
            }
        }
        if let Some(capabilities) = codec::capabilities(&greeting) {
            session.capabilities = capabilities;
        }
        if starttls {
            if session.capabilities.is_empty() {
                session.refresh_capabilities()?;
            }
            if !session.has_capability("STARTTLS") {
                return Err(ImapError::Config(
                    "the IMAP server does not offer STARTTLS; use `security = tls` with port 993"
                        .into(),
                ));
            }
            let done = session.run(&[Arg::Atom("STARTTLS")], |_| Ok(()))?;
            if done.status != Status::Ok {
                return Err(ImapError::Refused {
                    command: "STARTTLS",
                    completion: done,
                });
            }
            session.transport.start_tls()?;
            // What the server said before TLS is not to be trusted.
            session.capabilities.clear();
        }
        if session.capabilities.is_empty() {
            session.refresh_capabilities()?;
        }
        Ok(session)
    }

    /// The connection, for tests that read what was sent.
    #[cfg(test)]
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Whether the server announced `name` (upper-case).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let mut found = None;
        let done = self.run(&[Arg::Atom("CAPABILITY")], |response| {
            if let Some(list) = codec::capabilities(&response) {
                found = Some(list);
            }
            Ok(())
        })?;
        if done.status != Status::Ok {
            return Err(ImapError::Refused {
                command: "CAPABILITY",
                completion: done,
            });
        }
        self.capabilities = found.unwrap_or_default();
        Ok(())
    }

    /// `LOGIN user password`.
    ///
    /// # Errors
    ///
    /// [`ImapError::LoginRefused`] with the server's words;
    /// [`ImapError::Config`] when the server disables LOGIN.
    pub fn login(&mut self, username: &str, password: &str) -> Result<(), ImapError> {
        if self.has_capability("LOGINDISABLED") {
            return Err(ImapError::Config(
                "the IMAP server refuses LOGIN on this connection (LOGINDISABLED): use TLS or STARTTLS"
                    .into(),
            ));
        }
        let done = self.run(
            &[
                Arg::Atom("LOGIN"),
                Arg::Str(username.as_bytes()),
                Arg::Str(password.as_bytes()),
            ],
            |_| Ok(()),
        )?;
        self.after_login(done)
    }

    /// `AUTHENTICATE XOAUTH2` with an OAuth access token (Gmail, Microsoft 365).
    ///
    /// # Errors
    ///
    /// [`ImapError::LoginRefused`] when the token is refused.
    pub fn authenticate_xoauth2(&mut self, username: &str, token: &str) -> Result<(), ImapError> {
        let initial = xoauth2_initial_response(username, token);
        let tag = self.tag();
        let mut command = format!("{tag} AUTHENTICATE XOAUTH2");
        let inline = self.has_capability("SASL-IR");
        if inline {
            command.push(' ');
            command.push_str(&initial);
        }
        command.push_str("\r\n");
        self.transport.write_all(command.as_bytes())?;
        let mut sent_initial = inline;
        loop {
            let response = self.read_response()?;
            match codec::kind(&response) {
                Kind::Continuation if !sent_initial => {
                    sent_initial = true;
                    self.transport
                        .write_all(format!("{initial}\r\n").as_bytes())?;
                }
                // The server's error details (a base64 JSON); an empty line
                // asks for the final NO.
                Kind::Continuation => self.transport.write_all(b"\r\n")?,
                Kind::Untagged => self.check_bye(&response)?,
                Kind::Tagged => {
                    let done = codec::parse_tagged(&response, &tag).ok_or_else(|| {
                        ImapError::Protocol(format!(
                            "unexpected response: {}",
                            printable(&response)
                        ))
                    })?;
                    return self.after_login(done);
                }
            }
        }
    }

    fn after_login(&mut self, done: Completion) -> Result<(), ImapError> {
        if done.status != Status::Ok {
            return Err(ImapError::LoginRefused(done));
        }
        // Servers often announce more after login.
        if let Some(code) = &done.code
            && let Some(list) = codec::capabilities(format!("[{code}]").as_bytes())
        {
            self.capabilities = list;
        }
        Ok(())
    }

    /// Opens `mailbox` read-only.
    ///
    /// # Errors
    ///
    /// [`ImapError::Config`] when the folder cannot be opened (it does not
    /// exist, say).
    pub fn examine(&mut self, mailbox: &str) -> Result<MailboxStatus, ImapError> {
        let name = codec::mailbox_name(mailbox);
        let mut status = MailboxStatus::default();
        let done = self.run(
            &[Arg::Atom("EXAMINE"), Arg::Str(name.as_bytes())],
            |response| {
                match imap_proto::Response::parse(&response) {
                    Ok((_, imap_proto::Response::Data { outcome, .. })) => match outcome.code {
                        Some(ResponseCode::UidValidity(n)) => status.uid_validity = Some(n),
                        Some(ResponseCode::UidNext(n)) => status.uid_next = Some(n),
                        _ => {}
                    },
                    Ok((_, imap_proto::Response::MailboxData(MailboxDatum::Exists(n)))) => {
                        status.exists = Some(n);
                    }
                    _ => {}
                }
                Ok(())
            },
        )?;
        if done.status != Status::Ok {
            return Err(ImapError::Config(format!(
                "IMAP folder `{mailbox}` cannot be opened: {}",
                done.describe()
            )));
        }
        Ok(status)
    }

    /// `UID FETCH {uids} {items}`, handing each FETCH response to `each` as
    /// it arrives (so one message at a time is in memory).
    ///
    /// # Errors
    ///
    /// [`ImapError::Refused`] when the server answers NO or BAD (after the
    /// responses it did send were handed over); what `each` returns.
    pub fn uid_fetch(
        &mut self,
        uids: &str,
        items: &str,
        mut each: impl FnMut(Fetched) -> Result<(), ImapError>,
    ) -> Result<(), ImapError> {
        let done = self.run(
            &[
                Arg::Atom("UID"),
                Arg::Atom("FETCH"),
                Arg::Atom(uids),
                Arg::Atom(items),
            ],
            |response| match parse_fetch(response) {
                Some(fetched) => each(fetched),
                None => Ok(()),
            },
        )?;
        if done.status != Status::Ok {
            return Err(ImapError::Refused {
                command: "UID FETCH",
                completion: done,
            });
        }
        Ok(())
    }

    /// Says goodbye; failures do not matter any more.
    pub fn logout(mut self) {
        let _ = self.run(&[Arg::Atom("LOGOUT")], |_| Ok(()));
    }

    fn tag(&mut self) -> String {
        let tag = format!("sb{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Sends one command and reads until its completion, handing untagged
    /// data to `on_data`. Literal arguments wait for the server's go-ahead.
    fn run(
        &mut self,
        args: &[Arg<'_>],
        mut on_data: impl FnMut(Vec<u8>) -> Result<(), ImapError>,
    ) -> Result<Completion, ImapError> {
        let tag = self.tag();
        let is_logout = args.first() == Some(&Arg::Atom("LOGOUT"));
        let mut line = tag.clone().into_bytes();
        for arg in args {
            line.push(b' ');
            match arg {
                Arg::Atom(atom) => line.extend_from_slice(atom.as_bytes()),
                Arg::Str(value) => match codec::encode_string(value) {
                    Encoded::Quoted(quoted) => line.extend_from_slice(&quoted),
                    Encoded::Literal(bytes) => {
                        line.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                        self.transport.write_all(&line)?;
                        line.clear();
                        if let Some(done) = self.await_continuation(&tag)? {
                            return Ok(done);
                        }
                        line.extend_from_slice(bytes);
                    }
                },
            }
        }
        line.extend_from_slice(b"\r\n");
        self.transport.write_all(&line)?;
        drop(line);

        loop {
            let response = self.read_response()?;
            match codec::kind(&response) {
                Kind::Untagged => {
                    if !is_logout {
                        self.check_bye(&response)?;
                    }
                    on_data(response)?;
                }
                Kind::Continuation => {
                    return Err(ImapError::Protocol(
                        "the server asked for more of a complete command".into(),
                    ));
                }
                Kind::Tagged => {
                    return codec::parse_tagged(&response, &tag).ok_or_else(|| {
                        ImapError::Protocol(format!(
                            "unexpected response: {}",
                            printable(&response)
                        ))
                    });
                }
            }
        }
    }

    /// Waits for `+` after a literal's size; a tagged answer instead means
    /// the command was refused there.
    fn await_continuation(&mut self, tag: &str) -> Result<Option<Completion>, ImapError> {
        loop {
            let response = self.read_response()?;
            match codec::kind(&response) {
                Kind::Continuation => return Ok(None),
                Kind::Untagged => self.check_bye(&response)?,
                Kind::Tagged => {
                    return codec::parse_tagged(&response, tag)
                        .map(Some)
                        .ok_or_else(|| {
                            ImapError::Protocol(format!(
                                "unexpected response: {}",
                                printable(&response)
                            ))
                        });
                }
            }
        }
    }

    fn check_bye(&self, response: &[u8]) -> Result<(), ImapError> {
        match codec::parse_untagged_status(response) {
            Some((word, _, text)) if word == "BYE" => Err(ImapError::Closed(text)),
            _ => Ok(()),
        }
    }

    /// One whole response: its lines and the literals they announce.
    fn read_response(&mut self) -> Result<Vec<u8>, ImapError> {
        read_response(&mut self.transport, self.max_literal)
    }
}

/// Reads one response with its literals from `transport`.
///
/// # Errors
///
/// [`ImapError::Protocol`] when a literal is larger than `max_literal` or the
/// text around literals exceeds its limit; the transport's errors.
pub fn read_response(
    transport: &mut impl Transport,
    max_literal: usize,
) -> Result<Vec<u8>, ImapError> {
    let mut response = Vec::new();
    let mut text_bytes = 0usize;
    loop {
        let line = transport.read_line(MAX_LINE)?;
        text_bytes += line.len();
        if text_bytes > MAX_NON_LITERAL {
            return Err(ImapError::Protocol(format!(
                "a response longer than {MAX_NON_LITERAL} bytes outside its literals"
            )));
        }
        let literal = codec::literal_len(&line);
        response.extend_from_slice(&line);
        match literal {
            None => return Ok(response),
            Some(len) if len > max_literal => {
                return Err(ImapError::Protocol(format!(
                    "the server announced {len} bytes, over the limit of {max_literal}"
                )));
            }
            Some(len) => {
                response.reserve(len);
                transport.read_exact_into(len, &mut response)?;
            }
        }
    }
}

/// The SASL XOAUTH2 initial response, base64.
pub fn xoauth2_initial_response(username: &str, token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={username}\x01auth=Bearer {token}\x01\x01"))
}

/// Where a section's bytes are: inside the response buffer, or copied.
enum Data {
    Range(std::ops::Range<usize>),
    Owned(Vec<u8>),
}

/// The FETCH response in `response`, or `None` for any other untagged data.
/// The largest section is cut out of `response` in place rather than copied:
/// a whole message may be tens of megabytes.
pub fn parse_fetch(mut response: Vec<u8>) -> Option<Fetched> {
    let mut fetched = Fetched::default();
    let mut found: Vec<(String, Data)> = Vec::new();
    {
        let base = response.as_ptr() as usize;
        let end = base + response.len();
        let (_, parsed) = imap_proto::Response::parse(&response).ok()?;
        let imap_proto::Response::Fetch(_, attributes) = parsed else {
            return None;
        };
        for attribute in attributes {
            match attribute {
                AttributeValue::Uid(uid) => fetched.uid = Some(uid),
                AttributeValue::Rfc822Size(size) => fetched.size = Some(u64::from(size)),
                AttributeValue::BodyStructure(structure) => {
                    fetched.body_structure = Some(structure.into_owned());
                }
                AttributeValue::BodySection {
                    section,
                    data: Some(data),
                    ..
                } => {
                    let name = section_name(section.as_ref());
                    let data = match data {
                        Cow::Borrowed(slice) => {
                            let start = slice.as_ptr() as usize;
                            if start >= base && start + slice.len() <= end {
                                Data::Range(start - base..start - base + slice.len())
                            } else {
                                Data::Owned(slice.to_vec())
                            }
                        }
                        Cow::Owned(bytes) => Data::Owned(bytes),
                    };
                    found.push((name, data));
                }
                AttributeValue::Rfc822(Some(data)) => {
                    found.push((String::new(), Data::Owned(data.into_owned())));
                }
                _ => {}
            }
        }
    }
    let largest = found
        .iter()
        .enumerate()
        .filter_map(|(i, (_, data))| match data {
            Data::Range(range) => Some((i, range.len())),
            Data::Owned(_) => None,
        })
        .max_by_key(|(_, len)| *len)
        .map(|(i, _)| i);
    let mut in_place = None;
    for (i, (name, data)) in found.into_iter().enumerate() {
        match data {
            Data::Owned(bytes) => fetched.sections.push((name, bytes)),
            Data::Range(range) if Some(i) == largest => in_place = Some((name, range)),
            Data::Range(range) => fetched.sections.push((name, response[range].to_vec())),
        }
    }
    if let Some((name, range)) = in_place {
        response.truncate(range.end);
        response.drain(..range.start);
        fetched.sections.push((name, response));
    }
    Some(fetched)
}

/// `""`, `HEADER`, `TEXT`, `1.2`, `1.2.MIME`, `1.2.HEADER`.
fn section_name(section: Option<&SectionPath>) -> String {
    let part_text = |section: &MessageSection| match section {
        MessageSection::Header => "HEADER",
        MessageSection::Mime => "MIME",
        MessageSection::Text => "TEXT",
    };
    match section {
        None => String::new(),
        Some(SectionPath::Full(section)) => part_text(section).to_owned(),
        Some(SectionPath::Part(path, section)) => {
            let mut name = path
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".");
            if let Some(section) = section {
                name.push('.');
                name.push_str(part_text(section));
            }
            name
        }
    }
}

/// A response for an error message: printable ASCII, cut short.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(200)
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '.'
            }
        })
        .collect()
}
