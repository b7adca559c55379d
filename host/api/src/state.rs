//! The state every handler gets: the application layer and, when it runs, voice.

use std::sync::Arc;

use switchboard_app::App;
use switchboard_voice::VoiceService;

use std::net::IpAddr;

use switchboard_app::rate::Buckets;

use crate::limits::{BodyLimits, ConnectionLimits, WebhookLimits};
use crate::sockets::{SocketLimits, Sockets};

/// Shared state of every handler: the application and, when it runs, voice. Cheap
/// to clone; dereferences to the [`App`].
#[derive(Clone)]
pub struct AppState {
    /// The application layer.
    pub app: App,
    /// Voice, when it runs.
    pub voice: Option<Arc<VoiceService>>,
    /// Open WebSockets and their limits.
    pub sockets: Arc<Sockets>,
    /// Request body limits per kind of route.
    pub body_limits: BodyLimits,
    /// Header size and time limits per connection and request.
    pub connection_limits: ConnectionLimits,
    /// Failed webhook verifications per client address.
    pub webhook_failures: Arc<Buckets<IpAddr>>,
}

impl AppState {
    /// The edge over an application and, optionally, voice.
    pub fn new(app: App, voice: Option<Arc<VoiceService>>) -> AppState {
        AppState {
            app,
            voice,
            sockets: Arc::new(Sockets::new(SocketLimits::default())),
            body_limits: BodyLimits::default(),
            connection_limits: ConnectionLimits::default(),
            webhook_failures: Arc::new(webhook_buckets(&WebhookLimits::default())),
        }
    }

    /// The same state with other body limits.
    pub fn with_body_limits(mut self, limits: BodyLimits) -> AppState {
        self.body_limits = limits;
        self
    }

    /// The same state with other connection limits.
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> AppState {
        self.connection_limits = limits;
        self
    }

    /// The same state with another limit on failed webhooks.
    pub fn with_webhook_limits(mut self, limits: &WebhookLimits) -> AppState {
        self.webhook_failures = Arc::new(webhook_buckets(limits));
        self
    }

    /// The same state with other socket limits.
    pub fn with_socket_limits(mut self, limits: SocketLimits) -> AppState {
        self.sockets = Arc::new(Sockets::new(limits));
        self
    }
}

fn webhook_buckets(limits: &WebhookLimits) -> Buckets<IpAddr> {
    Buckets::per_minute(limits.failures_per_minute, limits.failure_burst)
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
