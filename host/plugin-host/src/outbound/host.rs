//! `switchboard:http/client` for the plugin host's store state: the
//! generated WIT trait, answered by the call's [`super::Outbound`].

use crate::bindings::http_client::switchboard::http::client::{self, HttpError};
use crate::state::PluginState;

impl client::Host for PluginState {
    async fn send(&mut self, request: client::Request) -> Result<client::Response, HttpError> {
        self.hooks.send(request).await
    }
}
