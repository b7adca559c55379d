//! The one place that generates host bindings, for every released version of
//! `switchboard:plugin` and of the packages beside it (`switchboard:mail`,
//! `switchboard:signing`, `switchboard:http`).
//!
//! - [`v0_2`] is the current contract; its types are the host's own and are
//!   re-exported at the root of this module.
//! - [`v0_1`] is frozen: plugins built against it keep loading, and
//!   [`crate::compat`] converts between its types and 0.2.0 at the boundary.
//!
//! In each version the channel world generates the shared `types` and `host`
//! interfaces and the routing and crm worlds reuse them, so one `Host`
//! implementation per version serves all three worlds. The e-mail world of
//! `switchboard:mail@0.1.0` ([`v0_2::email`]) is a 0.2.0 channel connector and
//! reuses the 0.2.0 `types` and `host` the same way; that of
//! `switchboard:mail@0.2.0` ([`v0_2::email_v0_2`]) is the 0.1.0 e-mail world
//! plus `blobs` and `attachments`, and reuses its `streams` too.

#![allow(missing_docs)]

/// `switchboard:plugin@0.1.0`, frozen.
pub mod v0_1 {
    /// Bindings for the `channel` world (and the shared `types` and `host`).
    pub mod channel {
        wasmtime::component::bindgen!({
            world: "channel",
            path: "../../wit/switchboard-plugin@0.1.0",
            imports: { default: async },
            exports: { default: async },
        });
    }

    /// Bindings for the `routing` world.
    pub mod routing {
        wasmtime::component::bindgen!({
            world: "routing",
            path: "../../wit/switchboard-plugin@0.1.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "switchboard:plugin/types": crate::bindings::v0_1::channel::switchboard::plugin::types,
                "switchboard:plugin/host": crate::bindings::v0_1::channel::switchboard::plugin::host,
            },
        });
    }

    /// Bindings for the `crm` world.
    pub mod crm {
        wasmtime::component::bindgen!({
            world: "crm",
            path: "../../wit/switchboard-plugin@0.1.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "switchboard:plugin/types": crate::bindings::v0_1::channel::switchboard::plugin::types,
                "switchboard:plugin/host": crate::bindings::v0_1::channel::switchboard::plugin::host,
            },
        });
    }

    pub use channel::exports::switchboard::plugin::connector::ChannelInfo;
    pub use channel::switchboard::plugin::host::{KvError, LogLevel};
    pub use channel::switchboard::plugin::types::*;
    pub use crm::exports::switchboard::plugin::crm_sync::{
        CrmProfile, Direction as CrmDirection, TimelineEntry,
    };
    pub use routing::exports::switchboard::plugin::policy::{
        AgentCandidate, Classification, GatherDigits, IvrStep, RoutingStep, SkillRequirement,
        TaskInfo,
    };
}

/// `switchboard:plugin@0.2.0`, the current contract.
pub mod v0_2 {
    /// Bindings for the `channel` world (and the shared `types` and `host`).
    pub mod channel {
        wasmtime::component::bindgen!({
            world: "channel",
            path: "../../wit/switchboard-plugin@0.2.0",
            imports: { default: async },
            exports: { default: async },
        });
    }

    /// Bindings for the `routing` world; the `agents.candidates` resource is
    /// the host's [`crate::CandidateSet`].
    pub mod routing {
        wasmtime::component::bindgen!({
            world: "routing",
            path: "../../wit/switchboard-plugin@0.2.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "switchboard:plugin/types": crate::bindings::v0_2::channel::switchboard::plugin::types,
                "switchboard:plugin/host": crate::bindings::v0_2::channel::switchboard::plugin::host,
                "switchboard:plugin/agents.candidates": crate::candidates::CandidateSet,
            },
        });
    }

    /// Bindings for the `crm` world.
    pub mod crm {
        wasmtime::component::bindgen!({
            world: "crm",
            path: "../../wit/switchboard-plugin@0.2.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "switchboard:plugin/types": crate::bindings::v0_2::channel::switchboard::plugin::types,
                "switchboard:plugin/host": crate::bindings::v0_2::channel::switchboard::plugin::host,
            },
        });
    }

    /// Bindings for `switchboard:mail/email@0.1.0`: a 0.2.0 channel connector
    /// plus the `streams` import (the `connection` resource is the host's
    /// [`crate::streams::Connection`]) and the `mailer` export.
    ///
    /// The world lives in its own package, which includes the frozen
    /// `channel@0.2.0`, so both folders are parsed. The host calls the
    /// `connector` exports of an e-mail component through the 0.2.0 channel
    /// types (they are the same interface), so only `streams` and `mailer`
    /// are used from here.
    pub mod email {
        wasmtime::component::bindgen!({
            world: "switchboard:mail/email@0.1.0",
            path: ["../../wit/switchboard-plugin@0.2.0", "../../wit/switchboard-mail@0.1.0"],
            imports: { default: async },
            exports: { default: async },
            with: {
                "switchboard:plugin/types": crate::bindings::v0_2::channel::switchboard::plugin::types,
                "switchboard:plugin/host": crate::bindings::v0_2::channel::switchboard::plugin::host,
                "switchboard:mail/streams.connection": crate::streams::Connection,
            },
        });
    }

    /// Bindings for `switchboard:mail/email@0.2.0`: the 0.1.0 e-mail world
    /// (its `streams` import is [`email`]'s, the same interface) plus the
    /// `blobs` import (the `blob-writer` resource is the host's
    /// [`crate::blobs::BlobWriter`]) and the `attachments` export.
    ///
    /// Two versions of `switchboard:mail` are parsed here, so the generated
    /// modules carry the version: `switchboard::mail0_2_0::blobs`.
    pub mod email_v0_2 {
        wasmtime::component::bindgen!({
            world: "switchboard:mail/email@0.2.0",
            path: [
                "../../wit/switchboard-plugin@0.2.0",
                "../../wit/switchboard-mail@0.1.0",
                "../../wit/switchboard-mail@0.2.0",
            ],
            imports: { default: async },
            exports: { default: async },
            with: {
                "switchboard:plugin/types": crate::bindings::v0_2::channel::switchboard::plugin::types,
                "switchboard:plugin/host": crate::bindings::v0_2::channel::switchboard::plugin::host,
                "switchboard:mail/streams@0.1.0": crate::bindings::v0_2::email::switchboard::mail::streams,
                "switchboard:mail/blobs@0.2.0.blob-writer": crate::blobs::BlobWriter,
            },
        });
    }
}

/// `switchboard:signing@0.1.0`: `hmac.verify`, for plugins of any world
/// and version that import it. Synchronous: the check is a few microseconds
/// of hashing and never waits.
pub mod signing {
    wasmtime::component::bindgen!({
        world: "switchboard:signing/signing@0.1.0",
        path: "../../wit/switchboard-signing@0.1.0",
        additional_derives: [PartialEq, Eq],
    });
}

/// `switchboard:http@0.1.0`: `client.send`, outbound HTTP in one call, for
/// plugins of any world and version that import it (the SDK's since it
/// replaced `wasi:http`). Asynchronous: it waits on the network.
pub mod http_client {
    wasmtime::component::bindgen!({
        world: "switchboard:http/http@0.1.0",
        path: "../../wit/switchboard-http@0.1.0",
        imports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

pub use v0_2::channel::exports::switchboard::plugin::connector::{
    AttachmentLimits, Capabilities as ChannelCapabilities, ChannelInfo, PollOutcome, TemplateInfo,
};
pub use v0_2::channel::switchboard::plugin::host::{KvError, LogLevel};
pub use v0_2::channel::switchboard::plugin::types::*;
pub use v0_2::crm::exports::switchboard::plugin::crm_sync::{
    CrmProfile, Direction as CrmDirection, TimelineEntry,
};
pub use v0_2::email::exports::switchboard::mail::mailer::{Automatic, Copies, Envelope, MailBatch};
pub use v0_2::email::switchboard::mail::streams::{Security as StreamSecurity, StreamError};
pub use v0_2::routing::exports::switchboard::plugin::policy::{
    Classification, GatherDigits, IvrStep, RoutingStep, SkillRequirement, TaskInfo,
};
