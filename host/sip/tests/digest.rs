//! Desk phones registering with digest authentication, and a trunk answering ours.

mod common;

use std::time::{Duration, Instant};

use common::message;
use switchboard_sip::digest::{
    Algorithm, Challenge, DigestClient, DigestServer, Rejection, Secret, Verdict,
};
use switchboard_sip::message::Message;

fn register() -> Message {
    let mut r = message("register.sip");
    r.remove_header("Authorization");
    r
}

fn directory(user: &str) -> Option<Secret> {
    (user == "1002").then(|| Secret::Password("correct horse".into()))
}

#[test]
fn a_desk_phone_registers_after_one_challenge() {
    let now = Instant::now();
    let mut registrar = DigestServer::new("switchboard.example");
    let first = register();
    assert_eq!(registrar.verify(now, &first, directory), Verdict::Missing);

    let challenge = registrar.challenge_response(now, &first, false);
    assert_eq!(challenge.status(), Some(401));
    let offered: Vec<Algorithm> = challenge
        .header_values("WWW-Authenticate")
        .iter()
        .map(|v| Challenge::parse(v).unwrap().algorithm)
        .collect();
    assert_eq!(offered, [Algorithm::Sha256, Algorithm::Md5]);

    let mut phone = DigestClient::new("1002", "correct horse");
    let retry = phone.authorize(&first, &challenge).unwrap();
    assert_eq!(
        retry.cseq().unwrap().number,
        first.cseq().unwrap().number + 1
    );
    assert_ne!(retry.via().unwrap().branch(), first.via().unwrap().branch());
    assert_eq!(
        registrar.verify(now + Duration::from_secs(1), &retry, directory),
        Verdict::Authorized {
            username: "1002".into()
        }
    );
}

#[test]
fn a_phone_that_only_knows_md5_is_accepted_with_a_stored_ha1() {
    let now = Instant::now();
    let mut registrar = DigestServer::new("switchboard.example").with_algorithms(&[Algorithm::Md5]);
    let challenge = registrar.challenge_response(now, &register(), false);
    let retry = DigestClient::new("1002", "pw")
        .authorize(&register(), &challenge)
        .unwrap();
    let stored = switchboard_sip::digest::ha1(Algorithm::Md5, "1002", "switchboard.example", "pw");
    assert_eq!(
        registrar.verify(now, &retry, |_| Some(Secret::Ha1(stored.clone()))),
        Verdict::Authorized {
            username: "1002".into()
        }
    );
}

#[test]
fn a_digest_register_with_a_wrong_password_is_challenged_again() {
    let now = Instant::now();
    let mut registrar = DigestServer::new("switchboard.example");
    let challenge = registrar.challenge_response(now, &register(), false);
    let retry = DigestClient::new("1002", "wrong")
        .authorize(&register(), &challenge)
        .unwrap();
    assert_eq!(
        registrar.verify(now, &retry, directory),
        Verdict::Rejected(Rejection::WrongResponse)
    );
    let again = registrar.challenge_response(now, &retry, false);
    assert_eq!(again.status(), Some(401));
    assert!(
        !Challenge::parse(again.header("WWW-Authenticate").unwrap())
            .unwrap()
            .stale
    );

    let stranger = DigestClient::new("9999", "x")
        .authorize(&register(), &challenge)
        .unwrap();
    assert_eq!(
        registrar.verify(now, &stranger, directory),
        Verdict::Rejected(Rejection::UnknownUser)
    );
}

#[test]
fn a_stale_nonce_is_refused_with_stale_true() {
    let now = Instant::now();
    let mut registrar =
        DigestServer::new("switchboard.example").with_nonce_lifetime(Duration::from_secs(60));
    let challenge = registrar.challenge_response(now, &register(), false);
    let mut phone = DigestClient::new("1002", "correct horse");
    let retry = phone.authorize(&register(), &challenge).unwrap();

    let later = now + Duration::from_secs(61);
    assert_eq!(registrar.verify(later, &retry, directory), Verdict::Stale);
    let refusal = registrar.challenge_response(later, &retry, true);
    let fresh = Challenge::parse(refusal.header("WWW-Authenticate").unwrap()).unwrap();
    assert!(fresh.stale);

    // The phone retries silently with the fresh nonce.
    let third = phone.authorize(&retry, &refusal).unwrap();
    assert_eq!(
        registrar.verify(later, &third, directory),
        Verdict::Authorized {
            username: "1002".into()
        }
    );
}

#[test]
fn a_replayed_request_is_stale_because_its_nonce_count_did_not_grow() {
    let now = Instant::now();
    let mut registrar = DigestServer::new("switchboard.example");
    let challenge = registrar.challenge_response(now, &register(), false);
    let retry = DigestClient::new("1002", "correct horse")
        .authorize(&register(), &challenge)
        .unwrap();
    assert!(matches!(
        registrar.verify(now, &retry, directory),
        Verdict::Authorized { .. }
    ));
    assert_eq!(registrar.verify(now, &retry, directory), Verdict::Stale);
}

#[test]
fn credentials_for_another_request_uri_are_refused() {
    let now = Instant::now();
    let mut registrar = DigestServer::new("switchboard.example");
    let challenge = registrar.challenge_response(now, &register(), false);
    let mut retry = DigestClient::new("1002", "correct horse")
        .authorize(&register(), &challenge)
        .unwrap();
    retry.start = Message::request(
        switchboard_sip::message::Method::Register,
        "sip:elsewhere.example".parse().unwrap(),
    )
    .start;
    assert_eq!(
        registrar.verify(now, &retry, directory),
        Verdict::Rejected(Rejection::UriMismatch)
    );
}

#[test]
fn our_invite_to_a_trunk_answers_its_407_with_proxy_authorization() {
    let now = Instant::now();
    let mut carrier = DigestServer::new("carrier.example").as_proxy();
    let invite = message("invite.sip");
    let challenge = carrier.challenge_response(now, &invite, false);
    assert_eq!(challenge.status(), Some(407));
    let mut account = DigestClient::new("switchboard", "trunk-secret");
    let retry = account.authorize(&invite, &challenge).unwrap();
    assert!(retry.header("Proxy-Authorization").is_some());
    assert_eq!(retry.body(), invite.body(), "the SDP offer is kept");
    assert_eq!(
        carrier.verify(now, &retry, |_| Some(Secret::Password(
            "trunk-secret".into()
        ))),
        Verdict::Authorized {
            username: "switchboard".into()
        }
    );
}
