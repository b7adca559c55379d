//! Generates the guest bindings of the `switchboard:mail/email@0.2.0` world.
//!
//! Every other world is generated in place by `wit_bindgen::generate!` (see
//! `src/bindings.rs`). This one cannot be: it includes the `channel` world, so
//! both generate the hidden `#[macro_export]` macro that exports
//! `switchboard:plugin/connector@0.2.0`, under the same name at the crate
//! root. This script runs the same generator with the same options and gives
//! the email world's copy of that macro a name of its own; nothing else of
//! the output is touched.
//!
//! `email@0.2.0` includes `email@0.1.0` (its `streams` and `mailer` are
//! 0.1.0's), so both versions of `switchboard:mail` are parsed and the
//! generated modules carry the version (`switchboard::mail0_1_0::streams`,
//! `switchboard::mail0_2_0::blobs`).

use std::env;
use std::path::PathBuf;

use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::{Files, WorldGenerator};
use wit_bindgen_rust::{Opts, WithOption};

const CONNECTOR_EXPORT_MACRO: &str = "__export_switchboard_plugin_connector_0_2_0_cabi";
const RENAMED_CONNECTOR_EXPORT_MACRO: &str =
    "__export_email_switchboard_plugin_connector_0_2_0_cabi";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let wit = manifest_dir.join("../wit");
    let packages = [
        wit.join("switchboard-plugin@0.2.0"),
        wit.join("switchboard-mail@0.1.0"),
        wit.join("switchboard-mail@0.2.0"),
    ];
    for package in &packages {
        println!("cargo:rerun-if-changed={}", package.display());
    }

    let mut resolve = Resolve::default();
    let mut main_packages = Vec::new();
    for package in &packages {
        let (id, _) = resolve
            .push_path(package)
            .unwrap_or_else(|e| panic!("cannot read WIT {}: {e:?}", package.display()));
        main_packages.push(id);
    }
    let world = resolve
        .select_world(&main_packages, Some("switchboard:mail/email@0.2.0"))
        .expect("the email world");

    let channel = "crate::bindings::channel::switchboard::plugin";
    let opts = Opts {
        additional_derive_attributes: vec!["PartialEq".into()],
        with: vec![
            (
                "switchboard:plugin/host@0.2.0".into(),
                WithOption::Path(format!("{channel}::host")),
            ),
            (
                "switchboard:plugin/types@0.2.0".into(),
                WithOption::Path(format!("{channel}::types")),
            ),
        ],
        // `streams` and `mailer` come from `switchboard:mail@0.1.0`, a
        // package other than the world's: generated here all the same.
        generate_all: true,
        pub_export_macro: true,
        export_macro_name: Some("export_email_world".into()),
        default_bindings_module: Some("switchboard_sdk::__private::email".into()),
        ..Opts::default()
    };
    let mut files = Files::default();
    opts.build()
        .generate(&mut resolve, world, &mut files)
        .expect("generate the email world's bindings");
    let (_, source) = files.iter().next().expect("one generated file");
    let source = std::str::from_utf8(source).expect("generated Rust is UTF-8");
    assert!(
        source.contains(CONNECTOR_EXPORT_MACRO),
        "wit-bindgen no longer names the connector's export macro `{CONNECTOR_EXPORT_MACRO}`"
    );
    let source = source.replace(CONNECTOR_EXPORT_MACRO, RENAMED_CONNECTOR_EXPORT_MACRO);

    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("email_world.rs");
    std::fs::write(&out, source).expect("write the email world's bindings");
}
