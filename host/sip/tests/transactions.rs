//! RFC 3261 §17 transactions on virtual time, told as small stories.

mod common;

use std::time::Duration;

use common::{Endpoint, label, message, phone, trunk};
use switchboard_sip::message::{Message, Method, Transport};
use switchboard_sip::transaction::{Output, State};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn response_from_trunk(request: &Message, status: u16) -> Message {
    let mut r = Message::response_to(request, status);
    r.set_to_tag("trunk-tag");
    r
}

#[test]
fn an_invite_over_udp_is_retransmitted_on_timer_a_doubling_until_180_arrives() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.send(invite.clone(), trunk(), Transport::Udp);
    ep.advance(ms(4000));
    let times: Vec<u128> = ep.take_sent().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        times,
        [0, 500, 1500, 3500],
        "timer A: 500 ms, then 1 s, then 2 s"
    );

    ep.receive(response_from_trunk(&invite, 180), trunk(), Transport::Udp);
    assert!(
        matches!(&ep.take()[..], [(_, Output::Response { id: r, response })]
        if *r == id && response.status() == Some(180))
    );
    assert_eq!(ep.layer.state(id), Some(State::Proceeding));

    ep.advance(Duration::from_secs(60));
    assert!(
        ep.take_sent().is_empty(),
        "no retransmissions once the trunk is ringing"
    );
    assert_eq!(
        ep.layer.state(id),
        Some(State::Proceeding),
        "timer B only runs while Calling"
    );
}

#[test]
fn an_invite_nobody_answers_times_out_on_timer_b() {
    let mut ep = Endpoint::new();
    let id = ep.send(message("invite.sip"), trunk(), Transport::Udp);
    ep.advance(Duration::from_secs(40));
    let log = ep.take();
    let (at, _) = log
        .iter()
        .find(|(_, o)| matches!(o, Output::Timeout { id: t } if *t == id))
        .unwrap();
    assert_eq!(*at, Duration::from_secs(32), "timer B = 64·T1");
    assert!(matches!(log.last(), Some((_, Output::Terminated { .. }))));
    assert!(ep.layer.is_empty());
}

#[test]
fn a_busy_trunk_is_acked_by_the_transaction_and_retransmissions_get_the_same_ack() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.send(invite.clone(), trunk(), Transport::Udp);
    ep.take();
    let busy = response_from_trunk(&invite, 486);
    ep.receive(busy.clone(), trunk(), Transport::Udp);
    let log = ep.take();
    let Output::Transmit(ack) = &log[0].1 else {
        panic!("ACK first: {log:?}")
    };
    assert_eq!(ack.message.method(), Some(&Method::Ack));
    assert_eq!(
        ack.message.via().unwrap().branch(),
        invite.via().unwrap().branch()
    );
    assert_eq!(ack.message.to().unwrap().tag(), Some("trunk-tag"));
    assert_eq!(ack.message.cseq().unwrap().to_string(), "1 ACK");
    assert!(
        matches!(&log[1].1, Output::Response { response, .. } if response.status() == Some(486))
    );
    assert_eq!(ep.layer.state(id), Some(State::Completed));

    ep.receive(busy, trunk(), Transport::Udp);
    let again = ep.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].1, ack.message,
        "the 486 was retransmitted: same ACK again, not delivered twice"
    );

    ep.advance(Duration::from_secs(32));
    assert!(
        ep.layer.is_empty(),
        "timer D ends the transaction after 32 s"
    );
}

#[test]
fn a_lost_ack_makes_the_server_retransmit_the_final_response_until_timer_h_then_times_out() {
    let mut ep = Endpoint::new();
    ep.receive(message("invite.sip"), phone(), Transport::Udp);
    let log = ep.take();
    assert!(matches!(&log[0].1, Output::Transmit(t) if t.message.status() == Some(100)));
    let Output::Request { id, request, .. } = &log[1].1 else {
        panic!("{log:?}")
    };
    let id = *id;
    let request = request.clone();

    ep.respond(id, Message::response_to(&request, 480));
    ep.advance(Duration::from_secs(40));
    let log = ep.take();
    let sent: Vec<u128> = log
        .iter()
        .filter_map(|(at, o)| matches!(o, Output::Transmit(_)).then_some(at.as_millis()))
        .collect();
    assert_eq!(
        sent,
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ],
        "timer G doubles up to T2"
    );
    let timeout = log
        .iter()
        .position(|(_, o)| matches!(o, Output::Timeout { id: t } if *t == id))
        .unwrap();
    assert_eq!(log[timeout].0, Duration::from_secs(32), "timer H = 64·T1");
    assert!(ep.layer.is_empty());
}

#[test]
fn an_ack_for_the_final_response_stops_retransmissions_and_timer_i_cleans_up() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.receive_request(invite.clone(), phone());
    let rejected = Message::response_to(&invite, 603);
    ep.respond(id, rejected.clone());
    ep.advance(ms(600));
    assert_eq!(ep.take_sent().len(), 2, "the 603 and one retransmission");

    // The phone ACKs on the INVITE's branch (§17.1.1.3).
    let mut ack = Message::request(Method::Ack, invite.uri().unwrap().clone());
    for name in ["Via", "From", "Call-ID"] {
        ack.push_header(name, invite.header(name).unwrap());
    }
    ack.push_header("To", rejected.header("To").unwrap());
    ack.push_header("CSeq", "1 ACK");
    ack.push_header("Content-Length", 0);
    ep.receive(ack.clone(), phone(), Transport::Udp);
    assert_eq!(ep.layer.state(id), Some(State::Confirmed));
    ep.receive(ack, phone(), Transport::Udp);
    assert!(ep.take().is_empty(), "ACKs are absorbed, not passed up");

    ep.advance(Duration::from_secs(4));
    assert!(ep.take_sent().is_empty());
    ep.advance(Duration::from_secs(2));
    assert!(ep.layer.is_empty(), "timer I = T4");
}

#[test]
fn a_retransmitted_request_is_absorbed_and_the_last_response_resent() {
    let mut ep = Endpoint::new();
    let options = message("options.sip");
    ep.receive(options.clone(), trunk(), Transport::Udp);
    let log = ep.take();
    let [(_, Output::Request { id, request, .. })] = &log[..] else {
        panic!("{log:?}")
    };
    let id = *id;

    // Before any response there is nothing to resend.
    ep.receive(options.clone(), trunk(), Transport::Udp);
    assert!(ep.take().is_empty());

    let ok = Message::response_to(request, 200);
    ep.respond(id, ok.clone());
    assert_eq!(ep.take_sent().len(), 1);

    ep.advance(ms(700));
    ep.receive(options, trunk(), Transport::Udp);
    let log = ep.take();
    assert_eq!(log.len(), 1, "no new request for the TU: {log:?}");
    let Output::Transmit(t) = &log[0].1 else {
        panic!()
    };
    assert_eq!(t.message, ok, "the same 200 again, same To tag");
    assert_eq!(t.destination, trunk());

    ep.advance(Duration::from_secs(32));
    assert!(ep.layer.is_empty(), "timer J = 64·T1");
}

#[test]
fn cancel_of_a_pending_invite_gets_200_and_the_invite_487() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.receive_request(invite.clone(), phone());
    let mut ringing = Message::response_to(&invite, 180);
    ringing.set_to_tag("ring-tag");
    ep.respond(id, ringing);
    ep.take();

    // The caller hangs up before an agent answers.
    let cancel = switchboard_sip::transaction::cancel_for(&invite);
    ep.receive(cancel, phone(), Transport::Udp);
    let log = ep.take();
    let labels: Vec<String> = log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Transmit(t) => Some(label(&t.message)),
            _ => None,
        })
        .collect();
    assert_eq!(labels, ["200", "487"]);
    let terminated = log
        .iter()
        .find_map(|(_, o)| match o {
            Output::Transmit(t) if t.message.status() == Some(487) => Some(t.message.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        terminated.to().unwrap().tag(),
        Some("ring-tag"),
        "487 keeps the early dialog's tag"
    );
    assert_eq!(terminated.cseq().unwrap().method, Method::Invite);
    assert!(
        log.iter()
            .any(|(_, o)| matches!(o, Output::Cancelled { id: c, .. } if *c == id))
    );
    assert_eq!(ep.layer.state(id), Some(State::Completed));

    // A CANCEL for something unknown is 481.
    let mut stray = switchboard_sip::transaction::cancel_for(&invite);
    stray.set_header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnothing");
    ep.receive(stray, phone(), Transport::Udp);
    assert_eq!(label(&ep.take_sent()[0].1), "481");
}

#[test]
fn a_2xx_is_retransmitted_until_the_ack_arrives() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.receive_request(invite.clone(), phone());
    let ok = Message::response_to(&invite, 200);
    ep.respond(id, ok.clone());
    assert_eq!(ep.layer.state(id), Some(State::Accepted));
    ep.advance(ms(1600));
    assert_eq!(ep.take_sent().len(), 3, "200 at 0, 500 and 1500 ms");

    // The 2xx ACK has a new branch; it still stops the retransmissions and goes up.
    let mut ack = message("ack.sip");
    ack.set_header("To", ok.header("To").unwrap());
    ep.receive(ack, phone(), Transport::Udp);
    assert!(matches!(&ep.take()[..], [(_, Output::Ack { .. })]));
    ep.advance(Duration::from_secs(40));
    let log = ep.take();
    assert!(
        log.iter()
            .all(|(_, o)| matches!(o, Output::Terminated { .. })),
        "{log:?}"
    );
    assert!(ep.layer.is_empty());
}

#[test]
fn a_2xx_never_acked_is_reported_so_the_call_can_be_torn_down() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.receive_request(invite.clone(), phone());
    ep.respond(id, Message::response_to(&invite, 200));
    ep.advance(Duration::from_secs(40));
    assert!(
        ep.take()
            .iter()
            .any(|(at, o)| matches!(o, Output::Timeout { .. }) && *at == Duration::from_secs(32))
    );
}

#[test]
fn over_tcp_nothing_is_retransmitted_and_completed_states_end_at_once() {
    let mut ep = Endpoint::new();
    let bye = message("bye.sip");
    let id = ep.send(bye.clone(), phone(), Transport::Tcp);
    ep.advance(Duration::from_secs(10));
    assert_eq!(
        ep.take_sent().len(),
        1,
        "no timer E on a reliable transport"
    );
    ep.receive(Message::response_to(&bye, 200), phone(), Transport::Tcp);
    let log = ep.take();
    assert!(
        matches!(log[..], [(_, Output::Response { .. }), (_, Output::Terminated { id: t })] if t == id)
    );

    // Server side: the response ends the transaction (timer J is zero).
    ep.receive(message("options.sip"), trunk(), Transport::Tcp);
    let Some((_, Output::Request { id, request, .. })) = ep.take().pop() else {
        panic!()
    };
    ep.respond(id, Message::response_to(&request, 200));
    assert!(ep.layer.is_empty());
}

#[test]
fn a_caller_can_cancel_after_the_first_provisional() {
    let mut ep = Endpoint::new();
    let invite = message("invite.sip");
    let id = ep.send(invite.clone(), trunk(), Transport::Udp);
    assert!(
        ep.layer.cancel(ep.now, id).is_err(),
        "§9.1: not before a provisional"
    );
    ep.receive(response_from_trunk(&invite, 183), trunk(), Transport::Udp);
    ep.take();
    let cancel_id = ep.layer.cancel(ep.now, id).unwrap();
    ep.drain();
    let sent = ep.take_sent();
    let cancel = &sent[0].1;
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(
        cancel.via().unwrap().branch(),
        invite.via().unwrap().branch()
    );
    ep.receive(Message::response_to(cancel, 200), trunk(), Transport::Udp);
    ep.receive(response_from_trunk(&invite, 487), trunk(), Transport::Udp);
    let log = ep.take();
    assert!(
        log.iter()
            .any(|(_, o)| matches!(o, Output::Response { id: c, .. } if *c == cancel_id))
    );
    assert!(log.iter().any(|(_, o)| matches!(o, Output::Response { id: i, response } if *i == id && response.status() == Some(487))));
}

#[test]
fn the_server_records_where_a_natted_phone_really_is() {
    let mut ep = Endpoint::new();
    let natted: std::net::SocketAddr = "203.0.113.50:40123".parse().unwrap();
    ep.receive(message("invite.sip"), natted, Transport::Udp);
    let log = ep.take();
    let Output::Transmit(trying) = &log[0].1 else {
        panic!()
    };
    assert_eq!(
        trying.destination, natted,
        "rport: answer where it came from"
    );
    let via = trying.message.via().unwrap();
    assert_eq!(via.received(), Some("203.0.113.50"));
    assert_eq!(via.rport(), Some(40123));
}
