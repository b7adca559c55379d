//! The state every handler gets: the application layer and, when it runs, voice.

use std::sync::Arc;

use switchboard_app::App;
use switchboard_voice::VoiceService;

/// Shared state of every handler: the application and, when it runs, voice. Cheap
/// to clone; dereferences to the [`App`].
#[derive(Clone)]
pub struct AppState {
    /// The application layer.
    pub app: App,
    /// Voice, when it runs.
    pub voice: Option<Arc<VoiceService>>,
    dummy_hash: Arc<String>,
}

impl AppState {
    /// The edge over an application and, optionally, voice.
    pub fn new(app: App, voice: Option<Arc<VoiceService>>) -> AppState {
        AppState {
            app,
            voice,
            dummy_hash: Arc::new(
                switchboard_app::accounts::hash_password("not-a-real-password").unwrap_or_default(),
            ),
        }
    }
}

impl AppState {
    /// A real argon2 hash of no one's password: logins of unknown e-mails verify
    /// against it so timing does not reveal which e-mails exist.
    pub(crate) fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
