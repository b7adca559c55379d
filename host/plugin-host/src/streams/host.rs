//! `switchboard:mail/streams` for the plugin host's store state: the
//! generated WIT traits, implemented by the functions of [`super`], with the
//! WIT types converted at this boundary.

use wasmtime::component::{Resource, ResourceTable};

use super::{Connection, Security, StreamError, StreamsCtx, StreamsView};
use crate::bindings::v0_2::email::switchboard::mail::streams as wit;
use crate::state::PluginState;

impl From<wit::Security> for Security {
    fn from(s: wit::Security) -> Security {
        match s {
            wit::Security::Tls => Security::Tls,
            wit::Security::Starttls => Security::Starttls,
            wit::Security::Plain => Security::Plain,
        }
    }
}

impl From<StreamError> for wit::StreamError {
    fn from(e: StreamError) -> wit::StreamError {
        match e {
            StreamError::NotAllowed(m) => wit::StreamError::NotAllowed(m),
            StreamError::Dns(m) => wit::StreamError::Dns(m),
            StreamError::Io(m) => wit::StreamError::Io(m),
            StreamError::Tls(m) => wit::StreamError::Tls(m),
            StreamError::Timeout(m) => wit::StreamError::Timeout(m),
            StreamError::Limit(m) => wit::StreamError::Limit(m),
        }
    }
}

impl StreamsView for PluginState {
    fn streams_ctx(&mut self) -> Option<&mut StreamsCtx> {
        self.streams.as_mut()
    }

    fn streams_table(&mut self) -> &mut ResourceTable {
        self.table_mut()
    }
}

impl wit::Host for PluginState {
    async fn connect(
        &mut self,
        host: String,
        port: u16,
        security: wit::Security,
    ) -> Result<Resource<Connection>, wit::StreamError> {
        super::connect(self, host, port, security.into())
            .await
            .map_err(Into::into)
    }
}

impl wit::HostConnection for PluginState {
    async fn read(
        &mut self,
        this: Resource<Connection>,
        max: u32,
    ) -> Result<Vec<u8>, wit::StreamError> {
        super::read(self, &this, max).await.map_err(Into::into)
    }

    async fn write(
        &mut self,
        this: Resource<Connection>,
        data: Vec<u8>,
    ) -> Result<(), wit::StreamError> {
        super::write(self, &this, &data).await.map_err(Into::into)
    }

    async fn start_tls(&mut self, this: Resource<Connection>) -> Result<(), wit::StreamError> {
        super::start_tls(self, &this).await.map_err(Into::into)
    }

    async fn is_tls(&mut self, this: Resource<Connection>) -> bool {
        super::is_tls(self, &this)
    }

    async fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        self.table_mut().delete(this)?;
        Ok(())
    }
}
