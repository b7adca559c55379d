//! Generated bindings for `switchboard:plugin@0.2.0`, one module per world.
//!
//! The `channel` world generates the shared `types` and `host` interfaces; the
//! other two worlds reuse them through `with`, so every plugin sees one
//! `Identity`, one `PluginError`… whatever it exports. Each world's full
//! component type is emitted by its export macro, in the plugin crate that uses
//! it (`pub_export_macro`), so a channel connector does not claim to export a
//! routing policy.
//!
//! The generated code is unsafe ABI glue and carries the WIT docs only, so the
//! crate's `unsafe_code` and `missing_docs` lints are relaxed here and nowhere else.

#![allow(unsafe_code, missing_docs)]

pub mod channel {
    wit_bindgen::generate!({
        path: "../wit/switchboard-plugin@0.2.0",
        world: "switchboard:plugin/channel@0.2.0",
        additional_derives: [PartialEq],
        pub_export_macro: true,
        export_macro_name: "export_channel_world",
        default_bindings_module: "switchboard_sdk::__private::channel",
    });
}

pub mod routing {
    wit_bindgen::generate!({
        path: "../wit/switchboard-plugin@0.2.0",
        world: "switchboard:plugin/routing@0.2.0",
        additional_derives: [PartialEq],
        with: {
            "switchboard:plugin/types@0.2.0": crate::bindings::channel::switchboard::plugin::types,
            "switchboard:plugin/host@0.2.0": crate::bindings::channel::switchboard::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_routing_world",
        default_bindings_module: "switchboard_sdk::__private::routing",
    });
}

pub mod crm {
    wit_bindgen::generate!({
        path: "../wit/switchboard-plugin@0.2.0",
        world: "switchboard:plugin/crm@0.2.0",
        additional_derives: [PartialEq],
        with: {
            "switchboard:plugin/types@0.2.0": crate::bindings::channel::switchboard::plugin::types,
            "switchboard:plugin/host@0.2.0": crate::bindings::channel::switchboard::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_crm_world",
        default_bindings_module: "switchboard_sdk::__private::crm",
    });
}
