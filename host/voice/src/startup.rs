//! Starting voice: binds SIP, the WebRTC endpoint and the recordings folder, builds
//! the [`VoiceService`], and starts its tasks (the SIP user agent, the WebRTC event
//! loop, the routing watcher, the RTP-timeout reaper).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU16, AtomicU64};

use switchboard_app::App;
use switchboard_media::webrtc::{WebRtcConfig, WebRtcEndpoint};
use tokio::sync::mpsc;

use crate::service::{Dispositions, VoiceConfig, VoiceService};
use crate::sip;
use crate::ua::{self, UaState};

impl VoiceService {
    /// Binds the SIP transport and the WebRTC endpoint and starts the service.
    pub async fn start(state: App, config: VoiceConfig) -> std::io::Result<Arc<VoiceService>> {
        let tls = match &config.tls {
            Some((addr, cert, key)) => Some((*addr, ua::tls_config(cert, key)?)),
            None => None,
        };
        let (endpoint, sip_events) = switchboard_sip::transport::SipEndpoint::bind(
            ua::transport_config(config.sip_addr, tls),
        )
        .await?;
        let media_ip = config
            .public_ip
            .unwrap_or_else(|| match endpoint.udp_addr().ip() {
                ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
                ip => ip,
            });
        let mut webrtc_bind = config.webrtc_addr;
        if webrtc_bind.ip().is_unspecified() {
            // Browsers need an address they can send to in the answer's candidate.
            webrtc_bind.set_ip(media_ip);
        }
        let (webrtc, webrtc_events) = WebRtcEndpoint::bind(WebRtcConfig::new(webrtc_bind)).await?;
        let recordings = state.config.data_dir.join("recordings");
        std::fs::create_dir_all(&recordings)?;
        let (dead_calls, mut dead_rx) = mpsc::unbounded_channel::<String>();
        let sources = crate::flood::SourceLimiter::new(config.source_rate.0, config.source_rate.1);
        let service = Arc::new(VoiceService {
            next_port: AtomicU16::new(config.rtp_ports.0),
            sip_state: StdMutex::new(UaState::new(&config.realm)),
            state,
            config,
            sip: endpoint,
            webrtc,
            calls: StdMutex::default(),
            by_dialog: StdMutex::default(),
            agents: StdMutex::default(),
            bridged: StdMutex::default(),
            surveying: StdMutex::default(),
            prompts: StdMutex::default(),
            counters: Arc::default(),
            calls_total: AtomicU64::new(0),
            dead_calls,
            trunk_ips: StdMutex::default(),
            trunk_refresh: tokio::sync::Mutex::default(),
            sources,
        });
        let reaper = service.clone();
        tokio::spawn(async move {
            while let Some(call) = dead_rx.recv().await {
                tracing::warn!(call = %call, "no audio from the caller; hanging up");
                reaper.hang_up(&call, "failed").await;
            }
        });
        service
            .state
            .desk
            .observe_calls(Arc::new(Dispositions(Arc::downgrade(&service))));
        service.end_unfinished().await;
        tokio::spawn(sip::run(service.clone(), sip_events));
        tokio::spawn(service.clone().run_webrtc(webrtc_events));
        tokio::spawn(service.clone().watch_routing());
        tokio::spawn(crate::service::end_calls_of_dead_nodes(Arc::downgrade(
            &service,
        )));
        tracing::info!(
            sip = %service.sip.udp_addr(),
            webrtc = %service.webrtc.local_addr(),
            "voice ready"
        );
        Ok(service)
    }
}
