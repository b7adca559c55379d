//! `switchboard:mail/blobs` for the plugin host's store state: the
//! generated WIT traits, implemented by [`super::BlobWriter`], with the WIT
//! types converted at this boundary.

use wasmtime::component::Resource;

use super::{BlobWriter, Refusal};
use crate::bindings::v0_2::email_v0_2::switchboard::mail0_2_0::blobs as wit;
use crate::state::PluginState;

impl From<Refusal> for wit::BlobError {
    fn from(refusal: Refusal) -> wit::BlobError {
        match refusal {
            Refusal::TooLarge(max) => wit::BlobError::TooLarge(max),
            Refusal::Unavailable(message) => wit::BlobError::Unavailable(message),
        }
    }
}

impl wit::Host for PluginState {}

impl wit::HostBlobWriter for PluginState {
    async fn write(
        &mut self,
        this: Resource<BlobWriter>,
        data: Vec<u8>,
    ) -> Result<(), wit::BlobError> {
        match self.table_mut().get_mut(&this) {
            Ok(writer) => writer.write(&data).await.map_err(Into::into),
            Err(e) => Err(wit::BlobError::Unavailable(e.to_string())),
        }
    }

    async fn drop(&mut self, this: Resource<BlobWriter>) -> wasmtime::Result<()> {
        // Writers are only ever lent; an owned one would be the host's bug.
        self.table_mut().delete(this)?;
        Ok(())
    }
}
