//! The state every handler gets: the application layer and, when it runs, voice.

use std::sync::Arc;

use switchboard_app::App;
use switchboard_voice::VoiceService;

use crate::limits::BodyLimits;
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
}

impl AppState {
    /// The edge over an application and, optionally, voice.
    pub fn new(app: App, voice: Option<Arc<VoiceService>>) -> AppState {
        AppState {
            app,
            voice,
            sockets: Arc::new(Sockets::new(SocketLimits::default())),
            body_limits: BodyLimits::default(),
        }
    }

    /// The same state with other body limits.
    pub fn with_body_limits(mut self, limits: BodyLimits) -> AppState {
        self.body_limits = limits;
        self
    }

    /// The same state with other socket limits.
    pub fn with_socket_limits(mut self, limits: SocketLimits) -> AppState {
        self.sockets = Arc::new(Sockets::new(limits));
        self
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
