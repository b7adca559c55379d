//! Dialogs (RFC 3261 §12): the state an INVITE and its 2xx (or a tagged 1xx) create,
//! and the in-dialog requests built from it — ACK for the 2xx, BYE, re-INVITE (hold and
//! resume are re-INVITEs whose SDP the media layer writes).
//!
//! A dialog never sends anything: it builds messages for the caller to hand to the
//! [`TransactionLayer`](crate::transaction::TransactionLayer), and checks that incoming
//! requests belong to it and arrive in order.

use thiserror::Error;

use crate::message::{Message, Method, NameAddr, Scheme, SipUri, Via};

/// Which side of the dialog we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received the INVITE.
    Uas,
}

/// Early (after a tagged provisional) or confirmed (after a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 101–199 response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Call-ID plus both tags, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an incoming request claims to belong to: our tag is in To, theirs in
    /// From. `None` when the request has no To tag (it is not in a dialog).
    pub fn of_incoming_request(request: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.call_id()?.to_string(),
            local_tag: request.to()?.tag()?.to_string(),
            remote_tag: request.from()?.tag()?.to_string(),
        })
    }

    /// The dialog a response to one of our requests belongs to: our tag in From, theirs
    /// in To.
    pub fn of_incoming_response(response: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.call_id()?.to_string(),
            local_tag: response.from()?.tag()?.to_string(),
            remote_tag: response.to()?.tag()?.to_string(),
        })
    }
}

/// Why a dialog could not be created or a request does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogError {
    /// A header the dialog needs is absent or unreadable.
    #[error("missing or malformed {0}")]
    MissingHeader(&'static str),
    /// Only 101–299 responses to INVITE create dialogs.
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    /// The request belongs to another dialog.
    #[error("request is not part of this dialog")]
    WrongDialog,
    /// The request's CSeq is not above the last one seen (§12.2.2: answer 500).
    #[error("CSeq {got} is not above {last}")]
    OutOfOrder {
        /// The CSeq received.
        got: u32,
        /// The highest CSeq seen before.
        last: u32,
    },
}

/// One dialog. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    local_seq: u32,
    remote_seq: Option<u32>,
    local: NameAddr,
    remote: NameAddr,
    local_contact: Option<NameAddr>,
    remote_target: SipUri,
    route_set: Vec<NameAddr>,
    secure: bool,
}

impl Dialog {
    /// The dialog our INVITE created, from a 101–299 response carrying a To tag.
    /// Route set: Record-Route reversed; remote target: the response's Contact.
    pub fn uac(invite: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let status = response.status().unwrap_or_default();
        if !(101..300).contains(&status) {
            return Err(DialogError::NotDialogCreating(status));
        }
        let id =
            DialogId::of_incoming_response(response).ok_or(DialogError::MissingHeader("tags"))?;
        let cseq = invite.cseq().ok_or(DialogError::MissingHeader("CSeq"))?;
        let remote_target = response
            .contact()
            .map(|c| c.uri)
            .ok_or(DialogError::MissingHeader("Contact"))?;
        let mut route_set = response.record_routes();
        route_set.reverse();
        Ok(Dialog {
            id,
            role: Role::Uac,
            state: state_for(status),
            local_seq: cseq.number,
            remote_seq: None,
            local: invite.from().ok_or(DialogError::MissingHeader("From"))?,
            remote: response.to().ok_or(DialogError::MissingHeader("To"))?,
            local_contact: invite.contact(),
            secure: invite.uri().is_some_and(|u| u.scheme == Scheme::Sips),
            remote_target,
            route_set,
        })
    }

    /// The dialog we accept by answering `invite` with `response` (101–299, with our To
    /// tag). Route set: the request's Record-Route in order; remote target: its Contact.
    pub fn uas(invite: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let status = response.status().unwrap_or_default();
        if !(101..300).contains(&status) {
            return Err(DialogError::NotDialogCreating(status));
        }
        let local = response.to().ok_or(DialogError::MissingHeader("To"))?;
        let remote = invite.from().ok_or(DialogError::MissingHeader("From"))?;
        let id = DialogId {
            call_id: invite
                .call_id()
                .ok_or(DialogError::MissingHeader("Call-ID"))?
                .to_string(),
            local_tag: local
                .tag()
                .ok_or(DialogError::MissingHeader("To tag"))?
                .to_string(),
            remote_tag: remote
                .tag()
                .ok_or(DialogError::MissingHeader("From tag"))?
                .to_string(),
        };
        Ok(Dialog {
            id,
            role: Role::Uas,
            state: state_for(status),
            local_seq: 0,
            remote_seq: Some(
                invite
                    .cseq()
                    .ok_or(DialogError::MissingHeader("CSeq"))?
                    .number,
            ),
            local,
            remote,
            local_contact: response.contact(),
            remote_target: invite
                .contact()
                .map(|c| c.uri)
                .ok_or(DialogError::MissingHeader("Contact"))?,
            route_set: invite.record_routes(),
            secure: invite.uri().is_some_and(|u| u.scheme == Scheme::Sips),
        })
    }

    /// An early UAC dialog becomes confirmed by the 2xx; the 2xx's Contact and
    /// Record-Route replace what the provisional said (§12.1.2, §13.2.2.4).
    pub fn confirm(&mut self, response: &Message) -> Result<(), DialogError> {
        if DialogId::of_incoming_response(response).as_ref() != Some(&self.id) {
            return Err(DialogError::WrongDialog);
        }
        if self.role == Role::Uac && self.state == DialogState::Early {
            if let Some(contact) = response.contact() {
                self.remote_target = contact.uri;
            }
            let mut routes = response.record_routes();
            routes.reverse();
            self.route_set = routes;
        }
        self.state = DialogState::Confirmed;
        Ok(())
    }

    /// The dialog's identity.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Which side we are.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Where in-dialog requests go (the peer's Contact).
    pub fn remote_target(&self) -> &SipUri {
        &self.remote_target
    }

    /// The proxies in-dialog requests traverse, first hop first.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// The CSeq of our last request in the dialog.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// The highest CSeq received from the peer.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Whether the dialog was created over `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether `request` belongs to this dialog.
    pub fn matches(&self, request: &Message) -> bool {
        DialogId::of_incoming_request(request).as_ref() == Some(&self.id)
    }

    /// Accepts an in-dialog request from the peer: checks it belongs here and that its
    /// CSeq goes up (ACK and CANCEL reuse their INVITE's number), and applies a target
    /// refresh from re-INVITE or UPDATE.
    pub fn receive_request(&mut self, request: &Message) -> Result<(), DialogError> {
        if !self.matches(request) {
            return Err(DialogError::WrongDialog);
        }
        let cseq = request.cseq().ok_or(DialogError::MissingHeader("CSeq"))?;
        if !matches!(cseq.method, Method::Ack | Method::Cancel) {
            if let Some(last) = self.remote_seq
                && cseq.number <= last
            {
                return Err(DialogError::OutOfOrder {
                    got: cseq.number,
                    last,
                });
            }
            self.remote_seq = Some(cseq.number);
        }
        if matches!(cseq.method, Method::Invite | Method::Update)
            && let Some(contact) = request.contact()
        {
            self.remote_target = contact.uri;
        }
        Ok(())
    }

    /// A new in-dialog request (§12.2.1.1) with the next local CSeq. `via` is our top
    /// Via with a fresh branch.
    pub fn request(&mut self, method: Method, via: &Via) -> Message {
        self.local_seq += 1;
        self.build(method, self.local_seq, via)
    }

    /// The ACK for the 2xx to our INVITE with CSeq `invite_cseq` (§13.2.2.4). It reuses
    /// the INVITE's number and must be resent for every retransmitted 2xx.
    pub fn ack(&self, invite_cseq: u32, via: &Via) -> Message {
        self.build(Method::Ack, invite_cseq, via)
    }

    /// A BYE ending the dialog.
    pub fn bye(&mut self, via: &Via) -> Message {
        self.request(Method::Bye, via)
    }

    /// A re-INVITE carrying a new SDP offer (hold: `a=sendonly`; resume: `a=sendrecv`).
    pub fn reinvite(&mut self, via: &Via, sdp: &[u8]) -> Message {
        let mut invite = self.request(Method::Invite, via);
        invite.set_body("application/sdp", sdp);
        invite
    }

    fn build(&self, method: Method, cseq: u32, via: &Via) -> Message {
        // Loose routing when the first hop has `lr`; otherwise the strict-routing
        // rewrite of §12.2.1.1 (Request-URI is the first route, target goes last).
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| !r.uri.params.contains("lr"));
        let (uri, routes): (SipUri, Vec<String>) = if strict {
            let mut first = self.route_set[0].uri.clone();
            first.params = Default::default();
            let mut routes: Vec<String> = self.route_set[1..]
                .iter()
                .map(ToString::to_string)
                .collect();
            routes.push(format!("<{}>", self.remote_target));
            (first, routes)
        } else {
            (
                self.remote_target.clone(),
                self.route_set.iter().map(ToString::to_string).collect(),
            )
        };
        let mut request = Message::request(method.clone(), uri)
            .with_header("Via", via)
            .with_header("Max-Forwards", 70)
            .with_header("From", &self.local)
            .with_header("To", &self.remote)
            .with_header("Call-ID", &self.id.call_id)
            .with_header("CSeq", format!("{cseq} {method}"));
        for route in routes {
            request.push_header("Route", route);
        }
        let refreshes_target = matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
        );
        if refreshes_target && let Some(contact) = &self.local_contact {
            request.push_header("Contact", NameAddr::new(contact.uri.clone()));
        }
        request.push_header("Content-Length", 0);
        request
    }
}

fn state_for(status: u16) -> DialogState {
    if status < 200 {
        DialogState::Early
    } else {
        DialogState::Confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Transport;

    fn invite() -> Message {
        Message::request(
            Method::Invite,
            SipUri::parse("sip:bob@biloxi.example").unwrap(),
        )
        .with_header(
            "Via",
            "SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK74bf9",
        )
        .with_header("Max-Forwards", 70)
        .with_header("From", "Alice <sip:alice@atlanta.example>;tag=9fxced76sl")
        .with_header("To", "Bob <sip:bob@biloxi.example>")
        .with_header("Call-ID", "3848276298220188511@atlanta.example")
        .with_header("CSeq", "2 INVITE")
        .with_header("Contact", "<sip:alice@pc33.atlanta.example>")
        .with_header("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>")
        .with_header("Content-Length", 0)
    }

    fn ok(invite: &Message) -> Message {
        let mut ok = Message::response_to(invite, 200);
        ok.set_to_tag("8321234356");
        ok.push_header("Contact", "<sip:bob@192.0.2.4>");
        ok
    }

    fn via() -> Via {
        Via::new(Transport::Udp, "pc33.atlanta.example", None, "z9hG4bKnew")
    }

    #[test]
    fn the_caller_routes_through_the_reversed_record_route_to_the_contact() {
        let invite = invite();
        let ok = ok(&invite);
        let mut dialog = Dialog::uac(&invite, &ok).unwrap();
        assert_eq!(dialog.state(), DialogState::Confirmed);
        assert_eq!(dialog.id().local_tag, "9fxced76sl");
        assert_eq!(dialog.id().remote_tag, "8321234356");
        let ack = dialog.ack(2, &via());
        assert_eq!(ack.cseq().unwrap().to_string(), "2 ACK");
        assert_eq!(ack.uri().unwrap().to_string(), "sip:bob@192.0.2.4");
        let routes: Vec<String> = ack.routes().iter().map(|r| r.uri.host.clone()).collect();
        assert_eq!(routes, ["p2.example", "p1.example"]);
        let bye = dialog.bye(&via());
        assert_eq!(bye.cseq().unwrap().to_string(), "3 BYE");
        assert_eq!(bye.to().unwrap().tag(), Some("8321234356"));
        assert!(bye.header("Contact").is_none());
    }

    #[test]
    fn the_callee_checks_order_and_follows_target_refreshes() {
        let invite = invite();
        let ok = ok(&invite);
        let mut dialog = Dialog::uas(&invite, &ok).unwrap();
        assert_eq!(dialog.role(), Role::Uas);
        assert_eq!(dialog.route_set()[0].uri.host, "p1.example");
        // The caller puts the call on hold with a re-INVITE from a new address.
        let mut caller = Dialog::uac(&invite, &ok).unwrap();
        let mut hold = caller.reinvite(&via(), b"v=0\r\na=sendonly\r\n");
        hold.set_header("Contact", "<sip:alice@198.51.100.9>");
        assert!(dialog.matches(&hold));
        dialog.receive_request(&hold).unwrap();
        assert_eq!(dialog.remote_target().host, "198.51.100.9");
        assert_eq!(
            dialog.receive_request(&hold),
            Err(DialogError::OutOfOrder { got: 3, last: 3 })
        );
        let mut stranger = hold.clone();
        stranger.set_header("Call-ID", "other");
        assert_eq!(
            dialog.receive_request(&stranger),
            Err(DialogError::WrongDialog)
        );
    }

    #[test]
    fn a_strict_router_gets_the_request_uri() {
        let mut invite = invite();
        invite.set_header("Record-Route", "<sip:strict.example>");
        let mut dialog = Dialog::uac(&invite, &ok(&invite)).unwrap();
        let bye = dialog.bye(&via());
        assert_eq!(bye.uri().unwrap().to_string(), "sip:strict.example");
        assert_eq!(bye.routes().last().unwrap().uri.host, "192.0.2.4");
    }

    #[test]
    fn failures_do_not_create_dialogs() {
        let invite = invite();
        let busy = Message::response_to(&invite, 486);
        assert_eq!(
            Dialog::uac(&invite, &busy),
            Err(DialogError::NotDialogCreating(486))
        );
    }
}
