//! A real mail system for the e-mail connector's tests: Postfix (SMTP in, submission,
//! queueing, bounces) delivering over LMTP into Dovecot (IMAP, mailboxes, and the
//! SASL authentication Postfix asks for), each test starting its own private pair.
//!
//! # Why Postfix and Dovecot
//!
//! The connector must be proved against the servers it will meet, not against a
//! script that agrees with it: these are the most deployed open-source MTA and IMAP
//! server, packaged by Debian (bookworm: Postfix 3.7, Dovecot 2.3), and together they
//! give every behaviour the connector depends on for real — IMAP over TLS, STARTTLS
//! and plain; SMTP submission on 465 (TLS on connect) and 587 (STARTTLS) with
//! username/password (Postfix SASL through Dovecot's auth socket, so the same
//! passwd-file users log in to IMAP and to submission); queueing and retries while
//! the mailbox server is down; and real delivery status notifications (RFC 3464) when
//! a recipient does not exist. Dovecot alone cannot do the last two (its submission
//! service needs an MTA behind it); an all-in-one test server (GreenMail, MailHog…)
//! would be a stand-in again, and one the connector's users never run.
//!
//! # What one [`MailServer`] is
//!
//! Everything lives under its own temporary folder and listens on 127.0.0.1 only, on
//! five ports picked free for it, so tests in parallel threads and test processes in
//! parallel never share anything:
//!
//! - Dovecot (`dovecot -F -c <own config>`, own `base_dir`, `state_dir`, log): IMAP
//!   with TLS on connect ([`MailServer::imap_port`]), IMAP plain with STARTTLS
//!   ([`MailServer::imap_plain_port`]); LMTP and the auth socket for Postfix as unix
//!   sockets in its `base_dir`. Users are virtual (a passwd-file, login = the full
//!   address, password in clear), mail in Maildirs under the temporary folder owned
//!   by the Debian system user `mail`. INBOX and a `Sent` folder (special-use
//!   `\Sent`) exist for every user.
//! - Postfix (its `master -c <own config dir> -d`, own queue and data directories,
//!   own log file through `postlogd`): inbound SMTP like an MX
//!   ([`MailServer::smtp_port`]: no auth, accepts mail for the local domains only),
//!   submission with STARTTLS required before AUTH ([`MailServer::smtp_submission_port`])
//!   and submissions with TLS on connect ([`MailServer::smtps_port`]), both accepting
//!   only authenticated senders. Every address in a local domain (`example.test`
//!   and the domains of the users given to [`MailServer::start`]) goes to Dovecot over
//!   LMTP. Unknown local recipients are accepted at RCPT (as many real providers
//!   do) and Dovecot refuses them at delivery, so Postfix sends the sender a real
//!   DSN (`multipart/report; report-type=delivery-status`, `Status: 5.1.1`, the
//!   original headers attached). Mail for any other domain is bounced the same way by
//!   Postfix's `error` transport: there is no SMTP client transport at all, DNS is
//!   off, nothing leaves 127.0.0.0/8. Retries are fast (deferred mail is retried
//!   every 1-2 s, and [`MailServer::start_imap`] flushes the queue), so mail sent
//!   while Dovecot is down arrives as soon as it is back.
//! - One certificate authority per server, made with `rcgen`
//!   ([`MailServer::ca_pem_path`]: give it to the host as `SWITCHBOARD_EXTRA_CA_FILE`),
//!   and one server certificate for `localhost`, `127.0.0.1` and `mail.example.test`
//!   used by both servers. Connect to [`MailServer::host`] (`localhost`).
//!
//! Both servers run in their own process groups and are stopped (SIGTERM to the
//! group, then SIGKILL) by [`MailServer::stop`] or on drop. A watchdog shell per
//! server also stops them if the test process dies without dropping it.
//!
//! # Requirements and cost
//!
//! Root (tests run as root here and on CI): Postfix's `master` refuses to run
//! otherwise, and its daemons switch to the `postfix` user. Dovecot could run
//! unprivileged, but without Postfix there would be no submission or bounces, so
//! [`MailServer::start`] fails early with a clear message when not root. The Debian
//! packages `postfix`, `dovecot-imapd` and `dovecot-lmtpd` (`scripts/test-deps.sh`
//! installs them and keeps the system-wide services stopped and disabled); the
//! `oauth2` passdb and the XOAUTH2 and OAUTHBEARER mechanisms are in
//! `dovecot-core`, which they depend on.
//!
//! Start-up measured on this 2-core machine (debug build): 0.14 s from nothing to
//! both servers answering (certificates, configuration, both masters), 0.25 s with
//! four starting at once; [`MailServer::restart_imap`] about 0.12 s; the four tests
//! of `tests/tests/mail_server.rs` take about 3 s together. (Postfix waits until its
//! configuration files are older than the current second, up to 2 s: they are
//! written with an mtime a minute back.) A port taken between choosing it and
//! binding it (another process's luck) makes the start retry with new ports, up to
//! four times.
//!
//! Departures from a production setup, all for test speed or simplicity: failed
//! logins are refused within about 0.5 s (Dovecot's `auth_failure_delay` of 2 s and
//! its per-IP penalty that grows to 15 s are off); passwords are stored in clear;
//! Postfix keeps its default 10 MB message size limit and does not check that the
//! MAIL FROM matches the login. Submitted mail is not copied to `Sent` (no server
//! does that; a client APPENDs it if it wants).
//!
//! # OAuth 2.0 (XOAUTH2)
//!
//! [`MailServer::start_with_oauth2`] also lets the mailboxes log in with OAuth
//! access tokens, the way Gmail and Microsoft 365 take them: `auth_mechanisms`
//! gains `xoauth2` and `oauthbearer`, served by Dovecot's own `oauth2` passdb
//! (in `dovecot-core`), which asks a token introspection endpoint (RFC 7662,
//! `introspection_mode = post`, HTTP Basic credentials in the URL) whether a
//! token is active and whose it is (`username_attribute = email`,
//! `active_attribute = active`, `active_value = true`); the test runs that
//! endpoint ([`crate::oauth::FakeOAuth`]). The passwd-file users keep PLAIN and
//! LOGIN (each passdb serves only its `mechanisms`), so the helpers below work as
//! before. Postfix's submission asks the same Dovecot auth service, so
//! `AUTH XOAUTH2` works on SMTP too. Dovecot sends `X-Dovecot-Auth-Service`
//! (`send_auth_headers`), so the endpoint knows whether IMAP or SMTP asked.
//! Dovecot answers an inactive token the XOAUTH2 way: a `+`/`334` continuation
//! with `{"status":"401",…}`, then `NO [AUTHENTICATIONFAILED]` / `535 5.7.8`
//! once the client sends an empty line; an introspection endpoint that fails
//! (non-2xx, or an `error` field) is `NO [UNAVAILABLE]` instead (a temporary
//! failure). Dovecot's auth cache is off, so every login is introspected.
//!
//! The test helpers ([`MailServer::deliver`], [`MailServer::submit`],
//! [`MailServer::fetch_all`], …) speak SMTP and IMAP themselves over
//! tokio-rustls, trusting only this server's CA; they exist for tests' setup and
//! assertions, never as a model for the connector.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The domain every server treats as local, whatever users it has.
pub const DOMAIN: &str = "example.test";

/// The name the servers' certificate is valid for and tests connect to.
pub const HOST: &str = "localhost";

const DOVECOT: &str = "/usr/sbin/dovecot";
const POSTFIX_MASTER: &str = "/usr/lib/postfix/sbin/master";
/// How long one protocol exchange of the helpers may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How a helper connects: TLS from the first byte, STARTTLS, or plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS on connect (IMAPS, SMTP submissions on "465").
    Tls,
    /// Plain connection upgraded with STARTTLS before logging in.
    StartTls,
    /// No TLS at all.
    Plain,
}

/// The five loopback ports of one server.
#[derive(Debug, Clone, Copy)]
struct Ports {
    imaps: u16,
    imap: u16,
    smtp: u16,
    submission: u16,
    smtps: u16,
}

/// A private Postfix + Dovecot pair; see the module documentation.
pub struct MailServer {
    ports: Ports,
    users: Vec<(String, String)>,
    dovecot: Option<Child>,
    postfix: Option<Child>,
    watchdog: Option<Child>,
    tls: Arc<rustls::ClientConfig>,
    startup: Duration,
    // Last: removed after the servers are stopped.
    dir: tempfile::TempDir,
}

impl MailServer {
    /// Starts a mail system whose mailboxes are `users` (`(address, password)`, the
    /// address is also the login). Panics with the servers' logs if it cannot start.
    pub async fn start(users: &[(&str, &str)]) -> MailServer {
        MailServer::start_inner(users, None).await
    }

    /// [`MailServer::start`], with XOAUTH2 and OAUTHBEARER logins checked by
    /// Dovecot's `oauth2` passdb at `introspection_url` (see the module
    /// documentation); passwords work as well.
    pub async fn start_with_oauth2(users: &[(&str, &str)], introspection_url: &str) -> MailServer {
        MailServer::start_inner(users, Some(introspection_url)).await
    }

    async fn start_inner(users: &[(&str, &str)], oauth2: Option<&str>) -> MailServer {
        assert_root();
        for bin in [DOVECOT, POSTFIX_MASTER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install postfix, dovecot-imapd and dovecot-lmtpd \
                 (bash scripts/test-deps.sh does)"
            );
        }
        for (address, password) in users {
            assert!(
                address.contains('@') && !address.contains([':', '\n', ' ']),
                "bad test address {address:?}"
            );
            assert!(
                !password.contains([':', '\n']),
                "test passwords may not contain ':' or newlines"
            );
        }
        let started = Instant::now();
        let mut last_error = String::new();
        for _attempt in 0..4 {
            let mut server = MailServer::prepare(users, free_ports(), oauth2);
            match server.launch().await {
                Ok(()) => {
                    server.startup = started.elapsed();
                    return server;
                }
                // Most likely a port taken since we chose it: stop what started
                // (dropping `server` does) and try new ones.
                Err(e) if e.contains("exited during start-up") => last_error = e,
                Err(e) => panic!("the mail server did not start: {e}"),
            }
        }
        panic!("the mail server did not start in four attempts: {last_error}");
    }

    /// The host name to connect to (`localhost`; the certificate is also valid for
    /// `127.0.0.1` and `mail.example.test`).
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// IMAP with TLS on connect (the "993" of this server).
    pub fn imap_port(&self) -> u16 {
        self.ports.imaps
    }

    /// IMAP in plain text, with STARTTLS offered (the "143" of this server).
    pub fn imap_plain_port(&self) -> u16 {
        self.ports.imap
    }

    /// SMTP submission with STARTTLS (required before AUTH; the "587").
    pub fn smtp_submission_port(&self) -> u16 {
        self.ports.submission
    }

    /// SMTP submission with TLS on connect (the "465").
    pub fn smtps_port(&self) -> u16 {
        self.ports.smtps
    }

    /// Inbound SMTP as from the internet (the "25"): no auth, local domains only.
    pub fn smtp_port(&self) -> u16 {
        self.ports.smtp
    }

    /// The PEM file of this server's certificate authority.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// A rustls client configuration trusting only this server's CA.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// How long [`MailServer::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Postfix's and Dovecot's logs so far (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (name, file) in [
            ("postfix", "postfix/log"),
            ("postfix stderr", "postfix/stderr"),
            ("dovecot", "dovecot/log"),
            ("dovecot stderr", "dovecot/stderr"),
        ] {
            let text = fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
            if !text.trim().is_empty() {
                let _ = writeln!(out, "--- {name}:\n{text}");
            }
        }
        out
    }

    /// Sends `raw` (an RFC 5322 message; bare LF line ends are made CRLF) to `to` the
    /// way mail from outside arrives: plain SMTP to [`MailServer::smtp_port`], the
    /// envelope sender taken from the `From:` header (empty if there is none).
    pub async fn deliver(&self, raw: &[u8], to: &str) {
        let from = header_address(raw, "from").unwrap_or_default();
        if let Err(e) = self
            .smtp_send(self.smtp_port(), Security::Plain, None, &from, &[to], raw)
            .await
        {
            panic!("delivering to {to}: {e}\n{}", self.logs());
        }
    }

    /// Submits `raw` as `user` (its login and envelope sender) to `to` on the STARTTLS
    /// submission port with AUTH PLAIN, as a mail client would.
    pub async fn submit(&self, user: &str, password: &str, to: &[&str], raw: &[u8]) {
        if let Err(e) = self
            .smtp_send(
                self.smtp_submission_port(),
                Security::StartTls,
                Some((user, password)),
                user,
                to,
                raw,
            )
            .await
        {
            panic!("submitting as {user}: {e}\n{}", self.logs());
        }
    }

    /// One SMTP transaction on `port` (any of this server's three): EHLO, STARTTLS
    /// when asked, AUTH PLAIN when `login` is given, MAIL FROM `from`, RCPT TO each of
    /// `to`, DATA. `Err` holds the server's refusal (e.g. `535 5.7.8 …`).
    pub async fn smtp_send(
        &self,
        port: u16,
        security: Security,
        login: Option<(&str, &str)>,
        from: &str,
        to: &[&str],
        raw: &[u8],
    ) -> Result<(), String> {
        let work = async {
            let mut w = Wire::connect(port, security == Security::Tls, &self.tls).await?;
            w.smtp_expect(220).await?;
            w.smtp_cmd("EHLO client.test", 250).await?;
            if security == Security::StartTls {
                w.smtp_cmd("STARTTLS", 220).await?;
                w = w.start_tls(&self.tls).await?;
                w.smtp_cmd("EHLO client.test", 250).await?;
            }
            if let Some((user, password)) = login {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("\0{user}\0{password}"));
                w.smtp_cmd(&format!("AUTH PLAIN {token}"), 235).await?;
            }
            w.smtp_cmd(&format!("MAIL FROM:<{from}>"), 250).await?;
            for rcpt in to {
                w.smtp_cmd(&format!("RCPT TO:<{rcpt}>"), 250).await?;
            }
            w.smtp_cmd("DATA", 354).await?;
            w.send(&smtp_data(raw)).await?;
            w.smtp_expect(250).await?;
            let _ = w.smtp_cmd("QUIT", 221).await;
            Ok(())
        };
        tokio::time::timeout(IO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err("SMTP timed out".to_string()))
    }

    /// Every message in `mailbox` of `user`, oldest first, read over IMAPS (TLS checked
    /// against this server's CA) without marking anything seen. Panics on failure.
    pub async fn fetch_all(&self, user: &str, password: &str, mailbox: &str) -> Vec<Vec<u8>> {
        match self
            .imap_fetch(Security::Tls, user, password, mailbox)
            .await
        {
            Ok(messages) => messages,
            Err(e) => panic!("reading {user}'s {mailbox}: {e}\n{}", self.logs()),
        }
    }

    /// Like [`MailServer::fetch_all`] on the port `security` picks (TLS: the IMAPS port;
    /// otherwise the plain port, upgraded with STARTTLS for [`Security::StartTls`]).
    pub async fn imap_fetch(
        &self,
        security: Security,
        user: &str,
        password: &str,
        mailbox: &str,
    ) -> Result<Vec<Vec<u8>>, String> {
        let port = if security == Security::Tls {
            self.imap_port()
        } else {
            self.imap_plain_port()
        };
        let work = async {
            let mut w = Wire::connect(port, security == Security::Tls, &self.tls).await?;
            let greeting = w.line().await?;
            if !greeting.starts_with(b"* OK") {
                return Err(format!("IMAP greeting: {}", lossy(&greeting)));
            }
            if security == Security::StartTls {
                w.imap_cmd("a0 STARTTLS").await?;
                w = w.start_tls(&self.tls).await?;
            }
            w.imap_cmd(&format!(
                "a1 LOGIN {} {}",
                imap_quote(user),
                imap_quote(password)
            ))
            .await?;
            let (untagged, _) = w
                .imap_cmd(&format!("a2 EXAMINE {}", imap_quote(mailbox)))
                .await?;
            let exists = untagged
                .iter()
                .rev()
                .find_map(|(line, _)| {
                    let line = lossy(line);
                    let n = line.strip_prefix("* ")?.strip_suffix(" EXISTS")?;
                    n.parse::<usize>().ok()
                })
                .unwrap_or(0);
            let mut messages = Vec::new();
            if exists > 0 {
                let (untagged, _) = w.imap_cmd("a3 FETCH 1:* (BODY.PEEK[])").await?;
                let mut numbered: Vec<(usize, Vec<u8>)> = untagged
                    .into_iter()
                    .filter_map(|(line, literal)| {
                        let line = lossy(&line);
                        let seq = line.strip_prefix("* ")?.split(' ').next()?.parse().ok()?;
                        line.contains(" FETCH ").then_some((seq, literal?))
                    })
                    .collect();
                numbered.sort_by_key(|(seq, _)| *seq);
                messages = numbered.into_iter().map(|(_, m)| m).collect();
            }
            let _ = w.imap_cmd("a4 LOGOUT").await;
            Ok(messages)
        };
        tokio::time::timeout(IO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err("IMAP timed out".to_string()))
    }

    /// Logs in to IMAP (over TLS) as `user` with `AUTHENTICATE XOAUTH2` and the
    /// access token `token`, answering the server's error continuation with an
    /// empty line as clients must. `Err` holds the server's answer (`NO
    /// [AUTHENTICATIONFAILED] …`, with the continuation's JSON before it).
    pub async fn imap_xoauth2(&self, user: &str, token: &str) -> Result<(), String> {
        let work = async {
            let mut w = Wire::connect(self.imap_port(), true, &self.tls).await?;
            w.line().await?;
            w.send(format!("a1 AUTHENTICATE XOAUTH2 {}\r\n", xoauth2(user, token)).as_bytes())
                .await?;
            let mut said = String::new();
            loop {
                let line = lossy(&w.line().await?);
                if let Some(challenge) = line.strip_prefix("+ ") {
                    said.push_str(&lossy(
                        &base64::engine::general_purpose::STANDARD
                            .decode(challenge.trim())
                            .unwrap_or_default(),
                    ));
                    said.push(' ');
                    w.send(b"\r\n").await?;
                } else if let Some(status) = line.strip_prefix("a1 ") {
                    let _ = w.imap_cmd("a2 LOGOUT").await;
                    return if status.starts_with("OK") {
                        Ok(())
                    } else {
                        Err(format!("{said}{status}"))
                    };
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err("IMAP timed out".to_string()))
    }

    /// Logs in to the STARTTLS submission port as `user` with `AUTH XOAUTH2`,
    /// as [`MailServer::imap_xoauth2`] does to IMAP. `Err` holds the server's
    /// answer (`535 5.7.8 …`).
    pub async fn smtp_xoauth2(&self, user: &str, token: &str) -> Result<(), String> {
        let work = async {
            let mut w = Wire::connect(self.smtp_submission_port(), false, &self.tls).await?;
            w.smtp_expect(220).await?;
            w.smtp_cmd("EHLO client.test", 250).await?;
            w.smtp_cmd("STARTTLS", 220).await?;
            w = w.start_tls(&self.tls).await?;
            let ehlo = w.smtp_cmd("EHLO client.test", 250).await?;
            if !ehlo.contains("XOAUTH2") {
                return Err(format!("no XOAUTH2 offered: {ehlo}"));
            }
            w.send(format!("AUTH XOAUTH2 {}\r\n", xoauth2(user, token)).as_bytes())
                .await?;
            let answer = match w.smtp_expect(235).await {
                Ok(_) => Ok(()),
                Err(e) if e.starts_with("334 ") => {
                    w.send(b"\r\n").await?;
                    match w.smtp_expect(235).await {
                        Ok(_) => Ok(()),
                        Err(final_answer) => Err(format!("{e} {final_answer}")),
                    }
                }
                Err(e) => Err(e),
            };
            let _ = w.smtp_cmd("QUIT", 221).await;
            answer
        };
        tokio::time::timeout(IO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err("SMTP timed out".to_string()))
    }

    /// Waits until `user`'s INBOX holds at least `n` messages and returns them all
    /// (oldest first); panics with the servers' logs after `timeout`.
    pub async fn wait_for_messages(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let password = self.password(user);
        let deadline = Instant::now() + timeout;
        loop {
            let got = self
                .imap_fetch(Security::Tls, user, &password, "INBOX")
                .await;
            match got {
                Ok(messages) if messages.len() >= n => return messages,
                Ok(messages) if Instant::now() > deadline => panic!(
                    "{user} has {} message(s) after {timeout:?}, expected {n}\n{}",
                    messages.len(),
                    self.logs()
                ),
                Err(e) if Instant::now() > deadline => {
                    panic!("reading {user}'s INBOX: {e}\n{}", self.logs())
                }
                _ => tokio::time::sleep(Duration::from_millis(150)).await,
            }
        }
    }

    /// Stops Dovecot and starts it again on the same ports with the same mail (for
    /// "the IMAP server restarted" tests). Mail delivered meanwhile waits in Postfix's
    /// queue and arrives once Dovecot is back.
    pub async fn restart_imap(&mut self) {
        self.stop_imap();
        self.start_imap().await;
    }

    /// Stops Dovecot only (IMAP answers nothing; Postfix queues local mail).
    pub fn stop_imap(&mut self) {
        if let Some(child) = self.dovecot.take() {
            stop_group(child);
        }
        self.write_pgids();
    }

    /// Starts Dovecot again after [`MailServer::stop_imap`]; waits until IMAP answers.
    pub async fn start_imap(&mut self) {
        assert!(self.dovecot.is_none(), "Dovecot is already running");
        // The old listeners can take a moment to go away with the old processes.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch_dovecot().await {
                Ok(()) => {
                    // Mail deferred while Dovecot was down goes now, as after an
                    // administrator's `postqueue -f`, rather than at the next retry.
                    self.flush_queue();
                    return;
                }
                Err(e) if e.contains("exited during start-up") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("Dovecot did not start again: {e}"),
            }
        }
    }

    /// Asks Postfix to retry every queued message now, whatever its backoff (the
    /// trigger `postqueue -f` sends to the queue manager: forget dead destinations,
    /// scan all queues ignoring retry times). Without it, a message Postfix found
    /// locked during a deferral waits a fixed 60 s.
    pub fn flush_queue(&self) {
        if self.postfix.is_none() {
            return;
        }
        let socket = self.dir.path().join("postfix/queue/public/qmgr");
        let sent = std::os::unix::net::UnixStream::connect(&socket)
            .and_then(|mut s| std::io::Write::write_all(&mut s, b"FADI"));
        if let Err(e) = sent {
            panic!(
                "triggering Postfix's queue manager at {}: {e}",
                socket.display()
            );
        }
    }

    /// Stops both servers (also done on drop). Idempotent.
    pub fn stop(&mut self) {
        if let Some(child) = self.postfix.take() {
            stop_group(child);
        }
        if let Some(child) = self.dovecot.take() {
            stop_group(child);
        }
        if let Some(mut child) = self.watchdog.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    fn password(&self, user: &str) -> String {
        self.users
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(user))
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("{user} is not a user of this mail server"))
    }

    /// Makes the folder, certificates and configuration; starts nothing.
    fn prepare(users: &[(&str, &str)], ports: Ports, oauth2: Option<&str>) -> MailServer {
        let base = std::env::temp_dir();
        // Unix socket paths must stay short (108 bytes): long TMPDIRs give way to /tmp.
        let base = if base.as_os_str().len() > 40 {
            PathBuf::from("/tmp")
        } else {
            base
        };
        let dir = tempfile::Builder::new()
            .prefix("sbmail-")
            .tempdir_in(base)
            .expect("temporary folder for the mail server");
        let d = dir.path();
        // The daemons' own users (postfix, mail, dovecot) must get through it.
        set_mode(d, 0o755);
        let mail = system_user("mail");
        let postfix = system_user("postfix");
        let postdrop = system_group("postdrop");

        let tls = write_certificates(&d.join("tls"));

        let mut domains: BTreeSet<String> = BTreeSet::from([DOMAIN.to_string()]);
        for (address, _) in users {
            let domain = address.rsplit('@').next().unwrap_or(DOMAIN);
            domains.insert(domain.to_ascii_lowercase());
        }

        // Dovecot.
        mkdir(&d.join("dovecot"), 0o755, None);
        mkdir(&d.join("mail"), 0o700, Some(mail));
        let mut passwd = String::new();
        for (address, password) in users {
            let _ = writeln!(passwd, "{address}:{{PLAIN}}{password}::::::");
        }
        write(&d.join("dovecot/users"), &passwd, 0o644);
        if let Some(url) = oauth2 {
            write(&d.join("dovecot/oauth2.conf.ext"), &oauth2_conf(url), 0o600);
        }
        write(
            &d.join("dovecot/dovecot.conf"),
            &dovecot_conf(d, ports, mail, oauth2.is_some()),
            0o644,
        );

        // Postfix: the queue layout `postfix check` would make (postfix-files).
        let q = d.join("postfix/queue");
        mkdir(&d.join("postfix"), 0o755, None);
        mkdir(&d.join("postfix/conf"), 0o755, None);
        mkdir(&q, 0o755, None);
        for sub in [
            "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
            "private", "saved", "trace",
        ] {
            mkdir(&q.join(sub), 0o700, Some(postfix));
        }
        mkdir(&q.join("maildrop"), 0o1730, Some((postfix.0, postdrop)));
        mkdir(&q.join("public"), 0o710, Some((postfix.0, postdrop)));
        mkdir(&q.join("pid"), 0o755, None);
        mkdir(&d.join("postfix/data"), 0o700, Some(postfix));
        let domains: Vec<String> = domains.into_iter().collect();
        write(
            &d.join("postfix/conf/main.cf"),
            &postfix_main_cf(d, &domains.join(", ")),
            0o644,
        );
        write(
            &d.join("postfix/conf/master.cf"),
            &postfix_master_cf(ports),
            0o644,
        );
        // Postfix waits (up to ~2 s) until a configuration file it reads is older than
        // the current second, in case an editor is still writing it: make it so.
        for file in ["main.cf", "master.cf"] {
            let path = d.join("postfix/conf").join(file);
            fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| {
                    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
                })
                .unwrap_or_else(|e| panic!("set the mtime of {}: {e}", path.display()));
        }

        MailServer {
            ports,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            dovecot: None,
            postfix: None,
            watchdog: None,
            tls,
            startup: Duration::ZERO,
            dir,
        }
    }

    /// Starts both servers and the watchdog; `Err` (with the logs) if either fails.
    async fn launch(&mut self) -> Result<(), String> {
        self.start_watchdog();
        let d = self.dir.path().to_path_buf();
        let child = spawn_group(
            Command::new(POSTFIX_MASTER)
                .arg("-c")
                .arg(d.join("postfix/conf"))
                .arg("-d"),
            &d.join("postfix/stderr"),
        )?;
        self.postfix = Some(child);
        self.write_pgids();
        self.launch_dovecot().await?;
        let port = self.ports.smtp;
        let ready = wait_ready(&mut self.postfix, "Postfix", || async move {
            let mut w = Wire::connect(port, false, &dummy_tls()).await?;
            w.smtp_expect(220).await?;
            w.smtp_cmd("QUIT", 221).await.map(drop)
        })
        .await;
        if let Err(e) = ready {
            let e = format!("{e}\n{}", self.logs());
            self.stop();
            return Err(e);
        }
        Ok(())
    }

    async fn launch_dovecot(&mut self) -> Result<(), String> {
        let d = self.dir.path().to_path_buf();
        let child = spawn_group(
            Command::new(DOVECOT)
                .arg("-F")
                .arg("-c")
                .arg(d.join("dovecot/dovecot.conf")),
            &d.join("dovecot/stderr"),
        )?;
        self.dovecot = Some(child);
        self.write_pgids();
        let (imap, imaps) = (self.ports.imap, self.ports.imaps);
        let ready = wait_ready(&mut self.dovecot, "Dovecot", || async move {
            let mut w = Wire::connect(imap, false, &dummy_tls()).await?;
            let greeting = w.line().await?;
            if !greeting.starts_with(b"* OK") {
                return Err(format!("IMAP greeting: {}", lossy(&greeting)));
            }
            let _ = w.imap_cmd("z LOGOUT").await;
            TcpStream::connect(("127.0.0.1", imaps))
                .await
                .map(drop)
                .map_err(|e| format!("IMAPS port: {e}"))
        })
        .await;
        if let Err(e) = ready {
            let e = format!("{e}\n{}", self.logs());
            if let Some(child) = self.dovecot.take() {
                stop_group(child);
            }
            return Err(e);
        }
        Ok(())
    }

    /// A shell that outlives nothing: when this test process is gone without dropping
    /// the server, it stops the process groups listed in `pgids` and removes the folder.
    fn start_watchdog(&mut self) {
        let d = self.dir.path();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             for g in $(cat '{d}/pgids' 2>/dev/null); do kill -TERM -$g 2>/dev/null; done; \
             sleep 2; \
             for g in $(cat '{d}/pgids' 2>/dev/null); do kill -KILL -$g 2>/dev/null; done; \
             rm -rf '{d}'",
            pid = std::process::id(),
            d = d.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the mail server's watchdog shell");
        self.watchdog = Some(child);
    }

    fn write_pgids(&self) {
        let ids: Vec<String> = [&self.postfix, &self.dovecot]
            .into_iter()
            .flatten()
            .map(|c| c.id().to_string())
            .collect();
        let _ = fs::write(self.dir.path().join("pgids"), ids.join("\n"));
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `oauth2` passdb's settings: introspection of every token at `url`.
fn oauth2_conf(url: &str) -> String {
    format!(
        r#"# The oauth2 passdb of one test's Dovecot (tests/src/mail.rs).
introspection_url = {url}
introspection_mode = post
username_attribute = email
active_attribute = active
active_value = true
send_auth_headers = yes
timeout_msecs = 10000
"#
    )
}

fn dovecot_conf(d: &Path, ports: Ports, mail: (u32, u32), oauth2: bool) -> String {
    let d_path = d;
    let d = d.display();
    let instance = format!("sbmail-{}-{}", std::process::id(), ports.imap);
    let (uid, gid) = mail;
    let Ports { imap, imaps, .. } = ports;
    // With OAuth, each passdb serves only its own mechanisms: a password is
    // never sent to the introspection endpoint, a token never compared with a
    // password. `none` is the lookup without a login that the static userdb
    // makes to know whether a user exists (LMTP delivery).
    let (mechanisms, passdbs) = if oauth2 {
        (
            "plain login xoauth2 oauthbearer",
            format!(
                r#"passdb {{
  driver = passwd-file
  mechanisms = plain login none
  args = scheme=PLAIN username_format=%u {d}/dovecot/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {}
}}"#,
                d_path.join("dovecot/oauth2.conf.ext").display()
            ),
        )
    } else {
        (
            "plain login",
            format!(
                r#"passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/dovecot/users
}}"#
            ),
        )
    };
    format!(
        r#"# One test's Dovecot (tests/src/mail.rs); nothing from /etc/dovecot is read.
base_dir = {d}/dovecot/run
state_dir = {d}/dovecot/state
instance_name = {instance}
protocols = imap lmtp
listen = 127.0.0.1
log_path = {d}/dovecot/log
auth_verbose = yes
ssl = yes
ssl_cert = <{d}/tls/server.pem
ssl_key = <{d}/tls/server.key
ssl_min_protocol = TLSv1.2
# Plain IMAP is for the connector's `plain` mode to a loopback address.
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
# Failed logins are answered at once (a real server waits 2 s, and more for repeated
# failures from one address): tests of wrong passwords stay fast.
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
first_valid_gid = {gid}
{passdbs}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%d/%n
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
"#
    )
}

fn postfix_main_cf(d: &Path, domains: &str) -> String {
    let d = d.display();
    format!(
        r#"# One test's Postfix (tests/src/mail.rs); nothing from /etc/postfix/main.cf is read.
compatibility_level = 3.6
queue_directory = {d}/postfix/queue
data_directory = {d}/postfix/data
meta_directory = /etc/postfix
mail_owner = postfix
maillog_file = {d}/postfix/log
maillog_file_prefixes = {d}
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# The connector's tests include a 50 MB attachment.
message_size_limit = 104857600
mailbox_size_limit = 0
# Every local domain goes to Dovecot over LMTP; unknown users are accepted here and
# refused by Dovecot at delivery, so the sender gets a real DSN.
virtual_mailbox_domains = {domains}
virtual_transport = lmtp:unix:{d}/dovecot/run/lmtp
smtpd_reject_unlisted_recipient = no
# Nothing leaves the machine: no DNS, and other domains bounce (there is no smtp
# transport in master.cf at all).
default_transport = error:5.0.0 this test mail system delivers only to local domains
relay_transport = error:5.0.0 this test mail system delivers only to local domains
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = {d}/tls/server.pem
smtpd_tls_key_file = {d}/tls/server.key
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = {d}/dovecot/run/auth-postfix
# Deferred mail (Dovecot restarting) is retried within a second or two.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"#
    )
}

fn postfix_master_cf(ports: Ports) -> String {
    let Ports {
        smtp,
        submission,
        smtps,
        ..
    } = ports;
    format!(
        r#"# service type private unpriv chroot wakeup maxproc command
127.0.0.1:{smtp} inet n - n - - smtpd
127.0.0.1:{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:{smtps} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"#
    )
}

/// A CA and a server certificate signed by it; writes `ca.pem`, `server.pem` (leaf
/// then CA) and `server.key`, and returns a client configuration trusting the CA.
fn write_certificates(dir: &Path) -> Arc<rustls::ClientConfig> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    mkdir(dir, 0o755, None);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Switchboard test mail CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![
        HOST.to_string(),
        "127.0.0.1".to_string(),
        format!("mail.{DOMAIN}"),
    ])
    .unwrap();
    params.distinguished_name.push(DnType::CommonName, HOST);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).unwrap();
    write(&dir.join("ca.pem"), &ca.pem(), 0o644);
    write(
        &dir.join("server.pem"),
        &format!("{}{}", cert.pem(), ca.pem()),
        0o644,
    );
    write(&dir.join("server.key"), &key.serialize_pem(), 0o600);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// For readiness probes that never start TLS.
fn dummy_tls() -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    )
}

fn assert_root() {
    // /proc/self belongs to the process's effective user.
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    assert!(
        uid == 0,
        "MailServer needs root: Postfix's master runs only as root (tests run as root on CI)"
    );
}

/// Five distinct free loopback ports (all held at once while choosing).
fn free_ports() -> Ports {
    let listeners: Vec<std::net::TcpListener> = (0..5)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    let p: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    Ports {
        imaps: p[0],
        imap: p[1],
        smtp: p[2],
        submission: p[3],
        smtps: p[4],
    }
}

/// `(uid, gid)` of a system user, from /etc/passwd.
fn system_user(name: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .unwrap_or_else(|| {
            panic!("no system user {name:?}: install postfix and dovecot (scripts/test-deps.sh)")
        })
}

/// The gid of a system group, from /etc/group.
fn system_group(name: &str) -> u32 {
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .unwrap_or_else(|| {
            panic!("no system group {name:?}: install postfix (scripts/test-deps.sh)")
        })
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn mkdir(path: &Path, mode: u32, owner: Option<(u32, u32)>) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
    set_mode(path, mode);
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

/// Spawns a server in its own process group, output to `log`.
fn spawn_group(command: &mut Command, log: &Path) -> Result<Child, String> {
    let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawning {command:?}: {e}"))
}

/// Polls `probe` until it succeeds (Ok), the server exits, or 20 s pass.
async fn wait_ready<F, Fut>(child: &mut Option<Child>, name: &str, probe: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exited = match child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some("not running".to_string()),
        };
        if let Some(status) = exited {
            // Its log says why. Most likely a port was taken since it was chosen
            // (Postfix's master cannot even log that: postlogd is not up yet).
            return Err(format!("{name} exited during start-up ({status})"));
        }
        let probed = tokio::time::timeout(Duration::from_secs(5), probe())
            .await
            .unwrap_or_else(|_| Err("no answer within 5 s".to_string()));
        match probed {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("{name} did not answer within 20 s: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// SIGTERM to the process group, up to 5 s for the leader to exit, then SIGKILL to
/// whatever is left of the group.
fn stop_group(mut child: Child) {
    signal_group(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_group(child.id(), "KILL");
    let _ = child.wait();
}

/// Sends `signal` to the process group `pgid` (one this module started), with the
/// shell's `kill` (no libc here: the workspace forbids `unsafe`).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} -{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The address in a header (`Name <a@b>` or `a@b`) of a message's header block.
pub fn header_address(raw: &[u8], name: &str) -> Option<String> {
    let value = header(raw, name)?;
    let address = match (value.find('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.trim(),
    };
    Some(address.trim().to_string()).filter(|a| a.contains('@'))
}

/// A header's value (continuation lines unfolded) from a raw message.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut found: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(v) = found.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_string());
        }
    }
    found
}

/// The DATA payload: CRLF line ends, dot-stuffed, ending with `.`.
fn smtp_data(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut line_start = true;
    let mut prev = 0u8;
    for &b in raw {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The XOAUTH2 initial response: base64 of `user=…^Aauth=Bearer …^A^A`.
fn xoauth2(user: &str, token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn imap_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An untagged IMAP response: its line(s), and the literal it carried if any.
type Untagged = (Vec<u8>, Option<Vec<u8>>);

/// A line-oriented client connection, plain or TLS.
struct Wire {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Wire {
    async fn connect(
        port: u16,
        tls: bool,
        config: &Arc<rustls::ClientConfig>,
    ) -> Result<Wire, String> {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
        let wire = Wire {
            io: Box::new(tcp),
            buf: Vec::new(),
        };
        if tls {
            wire.start_tls(config).await
        } else {
            Ok(wire)
        }
    }

    async fn start_tls(self, config: &Arc<rustls::ClientConfig>) -> Result<Wire, String> {
        if !self.buf.is_empty() {
            return Err("data after the STARTTLS answer".to_string());
        }
        let name = rustls::pki_types::ServerName::try_from(HOST).unwrap();
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, self.io)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(Wire {
            io: Box::new(stream),
            buf: Vec::new(),
        })
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16384];
        let n = self.io.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by the server".to_string());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// One line without its CRLF.
    async fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let mut line: Vec<u8> = self.buf.drain(..i + 2).collect();
                line.truncate(i);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.io.write_all(data).await.map_err(|e| e.to_string())?;
        self.io.flush().await.map_err(|e| e.to_string())
    }

    /// Reads a (multi-line) SMTP reply; `Err` unless its code is `code`.
    async fn smtp_expect(&mut self, code: u16) -> Result<String, String> {
        let mut text = String::new();
        loop {
            let line = lossy(&self.line().await?);
            text.push_str(&line);
            text.push('\n');
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return if got == code {
                    Ok(text)
                } else {
                    Err(text.trim_end().to_string())
                };
            }
        }
    }

    async fn smtp_cmd(&mut self, command: &str, code: u16) -> Result<String, String> {
        self.send(format!("{command}\r\n").as_bytes()).await?;
        self.smtp_expect(code).await.map_err(|e| {
            let shown = if command.starts_with("AUTH") {
                "AUTH PLAIN …"
            } else {
                command
            };
            format!("{shown} → {e}")
        })
    }

    /// Sends a tagged IMAP command and reads up to its tagged answer: the untagged
    /// responses (line, with the literal it carried if any) and the tagged line.
    /// `Err` unless the answer is OK.
    async fn imap_cmd(&mut self, command: &str) -> Result<(Vec<Untagged>, String), String> {
        let tag = command.split(' ').next().unwrap_or_default().to_string();
        self.send(format!("{command}\r\n").as_bytes()).await?;
        let mut untagged = Vec::new();
        loop {
            let mut line = self.line().await?;
            let mut literal = None;
            // `… {123}` announces a literal; the response goes on after it.
            while let Some(n) = literal_len(&line) {
                let data = self.take(n).await?;
                let rest = self.line().await?;
                line.extend_from_slice(b" ");
                line.extend_from_slice(&rest);
                literal = Some(data);
            }
            let text = lossy(&line);
            if let Some(status) = text.strip_prefix(&format!("{tag} ")) {
                if status.starts_with("OK") {
                    return Ok((untagged, status.to_string()));
                }
                let shown = if command.contains("LOGIN") {
                    format!("{tag} LOGIN …")
                } else {
                    command.to_string()
                };
                return Err(format!("{shown} → {status}"));
            }
            untagged.push((line, literal));
        }
    }
}

/// `n` when the line ends with `{n}` (or `{n+}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let inner = text.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}
