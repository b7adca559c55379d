//! The SIP side of calls that the voice service itself needs: a call's SIP leg,
//! desk phones' registrations, the user agent's shared state, transport and TLS
//! settings, and the BYE the service sends when it ends a call. Nothing here knows
//! the voice service; the user agent's request handlers are in [`crate::sip`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use switchboard_sip::dialog::Dialog;
use switchboard_sip::digest::{Algorithm, DigestServer};
use switchboard_sip::message::{Message, Transport, Via, new_branch};
use switchboard_sip::sdp::LocalAudio;
use switchboard_sip::transaction::TransactionId;
use switchboard_sip::transport::{SipEndpoint, TransportConfig};
use tokio::sync::mpsc;

/// The SIP side of one call.
#[derive(Debug, Clone)]
pub struct SipLeg {
    /// The SIP Call-ID.
    pub call_id: String,
    /// The dialog, once established.
    pub dialog: Option<Dialog>,
    /// Where requests in the dialog go.
    pub peer: SocketAddr,
    /// On which transport.
    pub transport: Transport,
    /// Our SDP parameters (version bumped per new answer).
    pub local: LocalAudio,
    /// The INVITE server transaction (inbound) until the ACK.
    pub invite_tx: Option<TransactionId>,
}

/// A desk phone's registration.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Where the phone is reached.
    pub contact: String,
    /// The address REGISTER came from.
    pub source: SocketAddr,
    /// When it lapses.
    pub expires_at: Instant,
}

/// State shared by the user agent's handlers.
pub struct UaState {
    pub(crate) registrar: DigestServer,
    /// Desk phones' INVITEs are challenged too.
    pub(crate) inviter: DigestServer,
    /// SIP username → registration.
    pub bindings: HashMap<String, Binding>,
    /// Client transactions waiting for responses.
    pub(crate) waiters: HashMap<TransactionId, mpsc::UnboundedSender<Option<Message>>>,
}

impl UaState {
    /// Fresh state for `realm`.
    pub fn new(realm: &str) -> UaState {
        UaState {
            registrar: DigestServer::new(realm).with_algorithms(&[Algorithm::Md5]),
            inviter: DigestServer::new(realm)
                .as_proxy()
                .with_algorithms(&[Algorithm::Md5]),
            bindings: HashMap::new(),
            waiters: HashMap::new(),
        }
    }
}

/// The transport settings for the voice service.
pub fn transport_config(
    addr: SocketAddr,
    tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
) -> TransportConfig {
    let mut config = TransportConfig::new(addr);
    config.tls = tls;
    config
}

/// A rustls server config from PEM certificate chain and key files.
pub fn tls_config(cert: &Path, key: &Path) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| invalid(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| invalid(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Our Via header for a request sent from `public_ip`:`sip_port`.
pub fn our_via(public_ip: IpAddr, sip_port: u16, transport: Transport) -> Via {
    let mut via = Via::new(
        transport,
        &public_ip.to_string(),
        Some(sip_port),
        &new_branch(),
    );
    via.params.set("rport", None);
    via
}

/// Sends a BYE on the call's dialog (best effort: the call ends either way).
pub async fn send_bye(
    endpoint: &SipEndpoint,
    public_ip: IpAddr,
    sip_addr: SocketAddr,
    leg: &SipLeg,
) {
    let Some(mut dialog) = leg.dialog.clone() else {
        return;
    };
    let bye = dialog.bye(&our_via(public_ip, sip_addr.port(), leg.transport));
    match endpoint.send_request(bye, leg.peer, leg.transport).await {
        Ok(_) => {}
        Err(e) => tracing::warn!("BYE not sent: {e}"),
    }
}
