//! The one place that generates host bindings for `switchboard:plugin@0.1.0`.
//!
//! The channel world generates the shared `types` and `host` interfaces; the
//! routing and crm worlds reuse them, so one `Host` implementation serves all
//! three and the rest of the crate sees one set of types.

#![allow(missing_docs)]

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
            "switchboard:plugin/types": crate::bindings::channel::switchboard::plugin::types,
            "switchboard:plugin/host": crate::bindings::channel::switchboard::plugin::host,
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
            "switchboard:plugin/types": crate::bindings::channel::switchboard::plugin::types,
            "switchboard:plugin/host": crate::bindings::channel::switchboard::plugin::host,
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
    AgentCandidate, Classification, GatherDigits, IvrStep, RoutingStep, SkillRequirement, TaskInfo,
};
