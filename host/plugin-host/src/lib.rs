//! The sandbox every Switchboard plugin runs in.
//!
//! This crate owns the wasmtime engine, plugin manifests, loading, per-call
//! limits, the capabilities behind the WIT `host` interface and outbound HTTP
//! (`switchboard:http` and wasi:http), and
//! per-plugin health with quarantine. It never touches the database or the
//! network itself: those come through [`HostServices`], which the server backs
//! with its store and real HTTP, and the SDK harness backs with fakes.
//!
//! # Isolation
//!
//! - Every channel and CRM call gets a fresh instance from an
//!   [`wasmtime::component::InstancePre`] on the pooling allocator, so a poisoned
//!   instance never serves another call. Routing policies, called for every
//!   routing decision, reuse a warm instance that is thrown away after any failed
//!   call and after [`WARM_POLICY_CALLS`] calls.
//! - A wall-clock deadline (epoch interruption plus a host-side timeout), a
//!   linear-memory cap and caps on what a plugin hands back bound each call.
//!   A trap, a timeout or a memory blow-up fails that call only.
//! - After [`Limits::quarantine_after`] failures in a row the plugin is
//!   quarantined: calls are refused until an operator re-enables it.
//! - Linked: `switchboard:plugin/host`, WASI clocks/random/stdio (no preopened
//!   directories, sockets disabled), outbound HTTP as `switchboard:http/client`
//!   (the SDK's) and as wasi:http, whose requests pass only to the origins in
//!   the plugin's allow-list (the same checks and limits either way: module
//!   `outbound`), and `switchboard:mail/streams`, whose connections reach
//!   only the mail servers an e-mail connector's operator configured (every
//!   other plugin gets `not-allowed`; see [`StreamsConfig`] for the TLS roots
//!   and budgets).
//!   `switchboard:signing/hmac` checks a webhook's HMAC natively with a secret
//!   from the plugin's own declared config, which the plugin never reads.
//!
//! # E-mail connectors
//!
//! A plugin of one of the [`EMAIL_WORLDS`] is a channel connector: every
//! channel method works on it. It also exports `mailer`, which the server
//! calls instead when [`PluginHost::is_mail`] says so:
//! [`PluginHost::poll_mail`], [`PluginHost::handle_mail_webhook`] and
//! [`PluginHost::send_mail`] carry envelopes (To, Cc, automatic replies,
//! bounces) and copies. One of the current [`EMAIL_WORLD`]
//! (`switchboard:mail@0.2.0`) also writes inbound files into the host's blob
//! store piece by piece through a lent `blob-writer`:
//! [`PluginHost::copy_attachment`] (module `blobs`).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(services: std::sync::Arc<dyn switchboard_plugin_host::HostServices>) -> anyhow::Result<()> {
//! use switchboard_plugin_host::{Limits, LoadSpec, PluginHost};
//! let host = PluginHost::new(Limits::default(), services)?;
//! host.load(LoadSpec::from_dir("plugins/dist/sms-twilio".as_ref())?)?;
//! let info = host.describe_channel("sms-twilio").await?;
//! println!("{} speaks {}", info.display_name, info.channel);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod bindings;
mod blobs;
mod candidates;
mod compat;
mod error;
mod limits;
mod manifest;
mod outbound;
mod services;
mod signing;
mod state;
mod streams;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, HasSelf, InstancePre, Lift, Linker, Lower,
};
use wasmtime::{Engine, Store, Trap};

pub use bindings::{
    Attachment, AttachmentDownload, Automatic, ChannelEvent, ChannelInfo, Copies, Envelope,
    HttpRequest, HttpResponse, MailBatch, OutboundMessage, PluginError, PollOutcome, SendReceipt,
    TemplateInfo, WebhookOutcome,
};
pub use blobs::{BlobSink, Copied};
pub use candidates::{AgentCandidate, CandidateRef, CandidateSet, CandidateTable};
pub use error::{CallError, LoadError, ManifestError};
pub use limits::Limits;
pub use manifest::{
    ApiVersion, Capabilities, ConfigKey, ConnectEntry, EMAIL_WORLD, EMAIL_WORLD_V0_1, EMAIL_WORLDS,
    Manifest, Origin, PluginKind, SUPPORTED_WORLDS,
};
pub use outbound::send_direct;
pub use services::{
    BoxFuture, HostServices, HttpFailure, KvFailure, OutboundRequest, OutboundResponse,
};
pub use streams::{StreamsConfig, StreamsConfigError};
#[doc(hidden)]
pub use wasmtime::component as wasmtime_resource;

use bindings::v0_1::channel::ChannelPre as ChannelPreV1;
use bindings::v0_1::crm::CrmPre as CrmPreV1;
use bindings::v0_1::routing::{Routing as RoutingV1, RoutingPre as RoutingPreV1};
use bindings::v0_2::channel::ChannelPre;
use bindings::v0_2::crm::CrmPre;
use bindings::v0_2::email::EmailPre;
use bindings::v0_2::email_v0_2::EmailPre as EmailPreV0_2;
use bindings::v0_2::routing::{Routing, RoutingPre};
use state::PluginState;
use streams::{Endpoint, StreamsShared};

// The `agents.candidates` host resource, on every store the host makes.
impl_candidate_host!(PluginState);

/// Config key the host sets for every plugin: `{public_url}/hooks/{plugin_id}`.
pub const WEBHOOK_BASE_KEY: &str = "switchboard.webhook-base";

const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of a pooled linear memory or table kept resident between instances
/// (see [`PluginHost::new`]).
const KEEP_RESIDENT: usize = 256 << 10;

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The folder holding `plugin.toml` and the component.
    pub dir: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Operator-set values, secrets included (never logged).
    pub config: HashMap<String, String>,
    /// Origins the operator added to the manifest's allow-list at install.
    pub extra_allowed_hosts: Vec<String>,
    /// Whether calls are allowed.
    pub enabled: bool,
    /// Set when the plugin was quarantined before a restart.
    pub quarantined: Option<String>,
}

impl LoadSpec {
    /// A spec from a plugin folder, enabled, with no config.
    pub fn from_dir(dir: &Path) -> Result<LoadSpec, LoadError> {
        Ok(LoadSpec {
            dir: dir.to_path_buf(),
            manifest: Manifest::load(dir)?,
            config: HashMap::new(),
            extra_allowed_hosts: Vec::new(),
            enabled: true,
            quarantined: None,
        })
    }
}

/// What the host reports about a loaded plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    /// Plugin id.
    pub id: String,
    /// Plugin kind.
    pub kind: PluginKind,
    /// Plugin version.
    pub version: String,
    /// World it implements.
    pub world: String,
    /// Operator switch.
    pub enabled: bool,
    /// Why it is quarantined, if it is.
    pub quarantined: Option<String>,
    /// Calls made since load.
    pub calls: u64,
    /// Failed calls since load.
    pub failures: u64,
    /// Failed calls in a row.
    pub consecutive_failures: u32,
    /// The allow-list in force (manifest plus operator additions).
    pub allowed_hosts: Vec<String>,
    /// The mail servers (`host:port`) an e-mail connector may open streams
    /// to, from its config; empty for every other plugin.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_servers: Vec<String>,
}

/// A linked component, by world and version.
enum Pre {
    ChannelV1(ChannelPreV1<PluginState>),
    Channel(ChannelPre<PluginState>, ConnectorExports),
    RoutingV1(RoutingPreV1<PluginState>),
    Routing(RoutingPre<PluginState>),
    CrmV1(CrmPreV1<PluginState>),
    Crm(CrmPre<PluginState>),
}

/// Where the `connector` exports of a 0.2.0 channel component are, found once
/// at load (after [`ChannelPre::new`] type-checked the whole world), so a call
/// looks up and type-checks only the export it calls.
///
/// An e-mail component ([`EMAIL_WORLDS`]) is a 0.2.0 channel component with
/// one more export: its `mailer` functions are here too.
struct ConnectorExports {
    describe: ComponentExportIndex,
    handle_webhook: ComponentExportIndex,
    send: ComponentExportIndex,
    fetch_attachment: ComponentExportIndex,
    list_templates: ComponentExportIndex,
    poll: ComponentExportIndex,
    /// Boxed: most channels have none.
    mailer: Option<Box<MailerExports>>,
}

/// A lookup of the functions `component` exports in `interface`; fails when
/// the interface itself is not exported.
fn interface_exports<'a>(
    component: &'a Component,
    interface: &'static str,
) -> wasmtime::Result<impl Fn(&str) -> wasmtime::Result<ComponentExportIndex> + 'a> {
    let index = component
        .get_export_index(None, interface)
        .ok_or_else(|| wasmtime::format_err!("no export `{interface}`"))?;
    Ok(move |name: &str| {
        component
            .get_export_index(Some(&index), name)
            .ok_or_else(|| wasmtime::format_err!("no export `{interface}#{name}`"))
    })
}

/// Where the `mailer` exports of an e-mail component are (found at load, after
/// [`EmailPre::new`] type-checked the whole world), and for a
/// `switchboard:mail@0.2.0` component its `attachments` export.
struct MailerExports {
    poll_mail: ComponentExportIndex,
    handle_mail_webhook: ComponentExportIndex,
    send_mail: ComponentExportIndex,
    fetch_attachment_to: Option<ComponentExportIndex>,
}

impl MailerExports {
    /// 0.2.0 exports the same `mailer` as 0.1.0.
    const INTERFACE: &str = "switchboard:mail/mailer@0.1.0";
    const ATTACHMENTS: &str = "switchboard:mail/attachments@0.2.0";

    fn find(component: &Component, writes_blobs: bool) -> wasmtime::Result<MailerExports> {
        let export = interface_exports(component, Self::INTERFACE)?;
        let fetch_attachment_to = if writes_blobs {
            Some(interface_exports(component, Self::ATTACHMENTS)?(
                "fetch-attachment-to",
            )?)
        } else {
            None
        };
        Ok(MailerExports {
            poll_mail: export("poll-mail")?,
            handle_mail_webhook: export("handle-mail-webhook")?,
            send_mail: export("send-mail")?,
            fetch_attachment_to,
        })
    }
}

impl ConnectorExports {
    const INTERFACE: &str = "switchboard:plugin/connector@0.2.0";

    fn find(component: &Component) -> wasmtime::Result<ConnectorExports> {
        let export = interface_exports(component, Self::INTERFACE)?;
        Ok(ConnectorExports {
            describe: export("describe")?,
            handle_webhook: export("handle-webhook")?,
            send: export("send")?,
            fetch_attachment: export("fetch-attachment")?,
            list_templates: export("list-templates")?,
            poll: export("poll")?,
            mailer: None,
        })
    }
}

/// Instantiates a fresh instance into `store` and calls one export of it.
///
/// Only `export` is type-checked here. The generated `instantiate_async` of a
/// world type-checks every export of the world on every instantiation, which
/// for a call that needs one export is most of the type checking a call does.
async fn call_fresh<P, R>(
    pre: &InstancePre<PluginState>,
    export: &ComponentExportIndex,
    store: &mut Store<PluginState>,
    params: P,
) -> wasmtime::Result<R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    let instance = pre.instantiate_async(&mut *store).await?;
    let func = instance.get_typed_func::<P, R>(&mut *store, export)?;
    func.call_async(store, params).await
}

/// An instantiated routing policy of either version.
enum PolicyBindings {
    V1(RoutingV1),
    V2(Routing),
}

struct Loaded {
    manifest: Manifest,
    pre: Pre,
    config: Arc<HashMap<String, String>>,
    /// The config keys the manifest declares.
    declared: Arc<[String]>,
    allowed: Arc<[Origin]>,
    /// The mail servers an e-mail connector may reach; `None` for every other
    /// plugin.
    endpoints: Option<Arc<[Endpoint]>>,
    id: Arc<str>,
    enabled: std::sync::atomic::AtomicBool,
    quarantine: Mutex<Option<String>>,
    calls: AtomicU64,
    failures: AtomicU64,
    consecutive: AtomicU32,
    /// Warm routing-policy instances (see [`WARM_POLICY_CALLS`]).
    warm: Mutex<Vec<WarmPolicy>>,
}

/// A routing-policy instance kept between calls.
struct WarmPolicy {
    store: Store<PluginState>,
    bindings: Option<PolicyBindings>,
    uses: u32,
}

/// Routing policies are called for every routing decision, so their instances
/// are reused: one is discarded after any failed call and after this many calls,
/// and at most [`WARM_POLICY_POOL`] are kept per plugin. A policy only ever
/// sees routing inputs, so reuse shares nothing between plugins or tenants;
/// channel and CRM plugins, which handle provider traffic and secrets, still get
/// a fresh instance per call.
pub const WARM_POLICY_CALLS: u32 = 1000;
/// Warm instances kept per routing plugin.
pub const WARM_POLICY_POOL: usize = 2;

struct Inner {
    engine: Engine,
    linker: Linker<PluginState>,
    limits: Limits,
    services: Arc<dyn HostServices>,
    streams: Arc<StreamsShared>,
    plugins: RwLock<HashMap<String, Arc<Loaded>>>,
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl PluginHost {
    /// Builds the engine (pooling allocator, epoch deadlines) and the linker,
    /// with the default [`StreamsConfig`] (public TLS roots only).
    pub fn new(limits: Limits, services: Arc<dyn HostServices>) -> wasmtime::Result<PluginHost> {
        PluginHost::with_streams(limits, services, StreamsConfig::default())
    }

    /// [`PluginHost::new`] with the settings of e-mail connectors' streams:
    /// the server passes the public roots plus `SWITCHBOARD_EXTRA_CA_FILE`,
    /// tests their own CA and shorter timeouts.
    pub fn with_streams(
        limits: Limits,
        services: Arc<dyn HostServices>,
        streams: StreamsConfig,
    ) -> wasmtime::Result<PluginHost> {
        let streams = streams.build()?;
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // Plugins are called one export at a time and their host functions are
        // plain async functions: none of the component-model async machinery
        // (tasks, streams, futures, `run_concurrent`) is used. With it on, every
        // store carries its concurrent state, every call goes through the
        // concurrent call path, and every store drop tears that state down (and
        // builds an error with a captured backtrace when RUST_BACKTRACE is set).
        config.concurrency_support(false);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances * 4)
            .total_memories(limits.max_instances * 2)
            .total_tables(limits.max_instances * 4)
            .total_stacks(limits.max_instances)
            .max_memory_size(limits.memory_bytes);
        // A store dropped after a call resets its linear memory and tables for
        // the next instance. By default that is `madvise(MADV_DONTNEED)` over the
        // whole memory, and the next call page-faults every page it touches back
        // in. With Linux's PAGEMAP_SCAN, only the pages the call wrote are found
        // and copied back from the memory image (or zeroed): the same contents
        // for the next instance, without the syscall's TLB shootdown or the page
        // faults. A channel call writes well under 64 KiB; up to KEEP_RESIDENT
        // stays resident per pool slot, anything beyond is still given back.
        // Without PAGEMAP_SCAN (Linux < 6.7) the reset stays `madvise`: keeping
        // memory resident there means resetting it all with `memset`.
        if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT);
        }
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        // Compiled components are cached on disk, so a restart loads in milliseconds.
        match wasmtime::Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::debug!("wasmtime compilation cache unavailable: {e}"),
        }
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // Every released version side by side: a component links against the
        // interfaces of the version it was built for.
        bindings::v0_1::channel::Channel::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::v0_2::channel::Channel::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::v0_2::routing::switchboard::plugin::agents::add_to_linker::<
            PluginState,
            HasSelf<PluginState>,
        >(&mut linker, |s| s)?;
        // Linked for every plugin so any component links; only an e-mail
        // connector with configured servers gets past `not-allowed`.
        bindings::v0_2::email::switchboard::mail::streams::add_to_linker::<
            PluginState,
            HasSelf<PluginState>,
        >(&mut linker, |s| s)?;
        // `switchboard:mail@0.2.0` adds only `blobs`; its writers exist only
        // while the host lends one to `fetch-attachment-to`.
        bindings::v0_2::email_v0_2::switchboard::mail0_2_0::blobs::add_to_linker::<
            PluginState,
            HasSelf<PluginState>,
        >(&mut linker, |s| s)?;
        // `switchboard:signing@0.1.0` is for any plugin: webhook signatures
        // checked natively with a secret the plugin never reads.
        bindings::signing::switchboard::signing::hmac::add_to_linker::<
            PluginState,
            HasSelf<PluginState>,
        >(&mut linker, |s| s)?;
        // `switchboard:http@0.1.0` is for any plugin too: outbound HTTP in
        // one call, with the checks `wasi:http` above gets (`outbound`).
        bindings::http_client::switchboard::http::client::add_to_linker::<
            PluginState,
            HasSelf<PluginState>,
        >(&mut linker, |s| s)?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        Ok(PluginHost {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                services,
                streams,
                plugins: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Fills defaults and checks that every required key is set and no unknown
    /// key is given.
    pub fn resolve_config(
        manifest: &Manifest,
        given: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>, LoadError> {
        if let Some(key) = given
            .keys()
            .find(|k| manifest.config_key(k).is_none() && !k.starts_with("switchboard."))
        {
            return Err(LoadError::UnknownConfig {
                plugin: manifest.id.clone(),
                key: key.clone(),
            });
        }
        let mut config = given.clone();
        let mut missing = Vec::new();
        for key in &manifest.config {
            if !config.contains_key(&key.key) {
                match &key.default {
                    Some(d) => {
                        config.insert(key.key.clone(), d.clone());
                    }
                    None if key.required => missing.push(key.key.clone()),
                    None => {}
                }
            }
        }
        if missing.is_empty() {
            Ok(config)
        } else {
            Err(LoadError::MissingConfig {
                plugin: manifest.id.clone(),
                keys: missing,
            })
        }
    }

    /// Compiles and links a plugin, replacing any loaded one with the same id.
    pub fn load(&self, spec: LoadSpec) -> Result<(), LoadError> {
        let id = spec.manifest.id.clone();
        let config = Self::resolve_config(&spec.manifest, &spec.config)?;
        let mut allowed = Vec::new();
        for host in spec
            .manifest
            .capabilities
            .allowed_hosts
            .iter()
            .chain(&spec.extra_allowed_hosts)
        {
            allowed.push(Origin::parse(host).map_err(|message| LoadError::AllowHost {
                plugin: id.clone(),
                message,
            })?);
        }
        let endpoints = if spec.manifest.is_mail() {
            let endpoints =
                streams::approved_endpoints(&spec.manifest, &config).map_err(|message| {
                    LoadError::Connect {
                        plugin: id.clone(),
                        message,
                    }
                })?;
            Some(Arc::from(endpoints))
        } else {
            None
        };
        let component_err = |e: wasmtime::Error| LoadError::Component {
            plugin: id.clone(),
            message: format!("{e:#}"),
        };
        let path = spec.dir.join(&spec.manifest.component);
        let component = Component::from_file(&self.inner.engine, &path)
            .map_err(|e| component_err(e.context(format!("loading {}", path.display()))))?;
        let instance_pre: InstancePre<PluginState> = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(component_err)?;
        let pre = match (spec.manifest.kind, spec.manifest.api_version()) {
            (PluginKind::Channel, ApiVersion::V0_1) => {
                Pre::ChannelV1(ChannelPreV1::new(instance_pre).map_err(component_err)?)
            }
            (PluginKind::Channel, ApiVersion::V0_2) if spec.manifest.is_mail() => {
                // The whole e-mail world is type-checked once here; calls then
                // go through the channel instance-pre like any 0.2.0 channel.
                let writes_blobs = spec.manifest.writes_blobs();
                if writes_blobs {
                    EmailPreV0_2::new(instance_pre.clone()).map_err(component_err)?;
                } else {
                    EmailPre::new(instance_pre.clone()).map_err(component_err)?;
                }
                let pre = ChannelPre::new(instance_pre).map_err(component_err)?;
                let mut exports = ConnectorExports::find(&component).map_err(component_err)?;
                exports.mailer = Some(Box::new(
                    MailerExports::find(&component, writes_blobs).map_err(component_err)?,
                ));
                Pre::Channel(pre, exports)
            }
            (PluginKind::Channel, ApiVersion::V0_2) => {
                let pre = ChannelPre::new(instance_pre).map_err(component_err)?;
                Pre::Channel(
                    pre,
                    ConnectorExports::find(&component).map_err(component_err)?,
                )
            }
            (PluginKind::Routing, ApiVersion::V0_1) => {
                Pre::RoutingV1(RoutingPreV1::new(instance_pre).map_err(component_err)?)
            }
            (PluginKind::Routing, ApiVersion::V0_2) => {
                Pre::Routing(RoutingPre::new(instance_pre).map_err(component_err)?)
            }
            (PluginKind::Crm, ApiVersion::V0_1) => {
                Pre::CrmV1(CrmPreV1::new(instance_pre).map_err(component_err)?)
            }
            (PluginKind::Crm, ApiVersion::V0_2) => {
                Pre::Crm(CrmPre::new(instance_pre).map_err(component_err)?)
            }
        };
        let loaded = Arc::new(Loaded {
            id: Arc::from(id.as_str()),
            declared: spec.manifest.config.iter().map(|k| k.key.clone()).collect(),
            manifest: spec.manifest,
            pre,
            config: Arc::new(config),
            allowed: allowed.into(),
            endpoints,
            enabled: spec.enabled.into(),
            quarantine: Mutex::new(spec.quarantined),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            warm: Mutex::new(Vec::new()),
        });
        self.inner
            .plugins
            .write()
            .expect("plugin registry lock")
            .insert(id, loaded);
        Ok(())
    }

    /// Forgets a plugin. Calls in flight finish on their own instance.
    pub fn unload(&self, id: &str) -> bool {
        self.inner
            .plugins
            .write()
            .expect("plugin registry lock")
            .remove(id)
            .is_some()
    }

    /// Enables or disables a plugin; enabling lifts a quarantine.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        let Some(p) = self.get(id) else {
            return false;
        };
        p.enabled.store(enabled, Ordering::SeqCst);
        if enabled {
            *p.quarantine.lock().expect("quarantine lock") = None;
            p.consecutive.store(0, Ordering::SeqCst);
        }
        true
    }

    /// The status of one plugin.
    pub fn status(&self, id: &str) -> Option<PluginStatus> {
        self.get(id).map(|p| status_of(&p))
    }

    /// The status of every loaded plugin, by id.
    pub fn list(&self) -> Vec<PluginStatus> {
        let mut all: Vec<_> = self
            .inner
            .plugins
            .read()
            .expect("plugin registry lock")
            .values()
            .map(|p| status_of(p))
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// The manifest of a loaded plugin.
    pub fn manifest(&self, id: &str) -> Option<Manifest> {
        self.get(id).map(|p| p.manifest.clone())
    }

    fn get(&self, id: &str) -> Option<Arc<Loaded>> {
        self.inner
            .plugins
            .read()
            .expect("plugin registry lock")
            .get(id)
            .cloned()
    }

    /// The loaded plugin `id`, if it is of the `wanted` kind and may be called.
    fn callable(&self, id: &str, wanted: PluginKind) -> Result<Arc<Loaded>, CallError> {
        let p = self
            .get(id)
            .ok_or_else(|| CallError::NotFound(id.to_string()))?;
        if p.manifest.kind != wanted {
            return Err(CallError::WrongKind {
                plugin: id.to_string(),
                kind: p.manifest.kind.to_string(),
                wanted: wanted.to_string(),
            });
        }
        if !p.enabled.load(Ordering::SeqCst) {
            return Err(CallError::Disabled(id.to_string()));
        }
        if let Some(reason) = p.quarantine.lock().expect("quarantine lock").clone() {
            return Err(CallError::Quarantined {
                plugin: id.to_string(),
                reason,
            });
        }
        Ok(p)
    }

    /// A fresh store for one instance of `p`: its own state, the memory cap,
    /// and a deadline that traps (armed per call by [`Self::arm`]).
    fn new_store(&self, p: &Loaded) -> Store<PluginState> {
        let state = PluginState::new(
            p.id.clone(),
            p.config.clone(),
            p.declared.clone(),
            p.allowed.clone(),
            p.manifest.capabilities.kv,
            self.inner.services.clone(),
            self.inner.limits.clone(),
        );
        let mut store = Store::new(&self.inner.engine, state);
        if let Some(endpoints) = &p.endpoints {
            store.data_mut().streams = Some(streams::StreamsCtx::new(
                p.id.clone(),
                self.inner.streams.clone(),
                endpoints.clone(),
            ));
        }
        store.limiter(|s| &mut s.memory);
        store
    }

    fn checkout(
        &self,
        id: &str,
        wanted: PluginKind,
    ) -> Result<(Arc<Loaded>, Store<PluginState>), CallError> {
        let p = self.callable(id, wanted)?;
        let store = self.new_store(&p);
        Ok((p, store))
    }

    /// A pooled policy instance, or a fresh store to instantiate into.
    fn checkout_policy(&self, id: &str) -> Result<(Arc<Loaded>, WarmPolicy), CallError> {
        let p = self.callable(id, PluginKind::Routing)?;
        let pooled = p.warm.lock().expect("warm pool lock").pop();
        let warm = match pooled {
            Some(warm) => warm,
            None => WarmPolicy {
                store: self.new_store(&p),
                bindings: None,
                uses: 0,
            },
        };
        Ok((p, warm))
    }

    /// Sets the call's wall-clock deadline. A call still running at an epoch tick
    /// (every [`EPOCH_TICK`]) yields to the async runtime, so a plugin that spins
    /// never holds a runtime thread for longer than a tick and other calls, webhooks
    /// and sockets go on; past the deadline it traps (`Trap::Interrupt`).
    fn arm(store: &mut Store<PluginState>, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        store.data_mut().hooks.deadline = Some(deadline);
        store.epoch_deadline_callback(move |_| {
            Ok(if std::time::Instant::now() >= deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
    }

    /// Turns the raw outcome of a call into the caller's answer, updating the
    /// plugin's health and quarantining it when it keeps failing.
    async fn settle<R>(
        &self,
        p: &Loaded,
        call: &'static str,
        timeout: Duration,
        memory_hit: bool,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        p.calls.fetch_add(1, Ordering::Relaxed);
        let plugin = p.id.to_string();
        let result = match outcome {
            Err(_) => Err(CallError::Timeout {
                plugin,
                call,
                millis: timeout.as_millis() as u64,
            }),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(if memory_hit {
                CallError::MemoryLimit {
                    plugin,
                    call,
                    limit_bytes: self.inner.limits.memory_bytes,
                }
            } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                CallError::Timeout {
                    plugin,
                    call,
                    millis: timeout.as_millis() as u64,
                }
            } else {
                CallError::Trap {
                    plugin,
                    call,
                    message: trap_message(&e),
                }
            }),
        };
        match &result {
            Ok(_) => {
                p.consecutive.store(0, Ordering::SeqCst);
            }
            Err(e) => self.record_failure(p, e).await,
        }
        result
    }

    async fn record_failure(&self, p: &Loaded, e: &CallError) {
        p.failures.fetch_add(1, Ordering::Relaxed);
        let n = p.consecutive.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::warn!(plugin = &*p.id, failures_in_a_row = n, "{e}");
        if n >= self.inner.limits.quarantine_after {
            let reason = format!("{n} failed calls in a row; last: {e}");
            let newly = {
                let mut q = p.quarantine.lock().expect("quarantine lock");
                let newly = q.is_none();
                *q = Some(reason.clone());
                newly
            };
            if newly {
                tracing::error!(plugin = &*p.id, "plugin quarantined: {reason}");
                self.inner
                    .services
                    .plugin_quarantined(p.id.to_string(), reason)
                    .await;
            }
        }
    }

    /// Runs one export on a fresh instance of plugin `id` under the deadline
    /// and memory cap, and settles the outcome (health, quarantine).
    async fn call<R>(
        &self,
        id: &str,
        kind: PluginKind,
        call: &'static str,
        timeout: Duration,
        f: impl AsyncFnOnce(&Pre, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let (p, mut store) = self.checkout(id, kind)?;
        Self::arm(&mut store, timeout);
        let outcome = tokio::time::timeout(timeout, f(&p.pre, &mut store)).await;
        let hit = store.data().memory.hit;
        self.settle(&p, call, timeout, hit, outcome).await
    }

    /// Runs one routing-policy export on a warm instance (or a fresh one when
    /// none is pooled) under the same deadline and memory cap as every other
    /// call.
    async fn call_policy<R>(
        &self,
        id: &str,
        call: &'static str,
        f: impl AsyncFnOnce(&PolicyBindings, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let timeout = self.inner.limits.call_timeout;
        let (p, mut warm) = self.checkout_policy(id)?;
        warm.store.data_mut().memory.hit = false;
        Self::arm(&mut warm.store, timeout);
        let outcome = tokio::time::timeout(timeout, async {
            let WarmPolicy {
                store, bindings, ..
            } = &mut warm;
            if bindings.is_none() {
                *bindings = Some(match &p.pre {
                    Pre::RoutingV1(pre) => {
                        PolicyBindings::V1(pre.instantiate_async(&mut *store).await?)
                    }
                    Pre::Routing(pre) => {
                        PolicyBindings::V2(pre.instantiate_async(&mut *store).await?)
                    }
                    _ => unreachable!("kind checked in checkout"),
                });
            }
            f(bindings.as_ref().expect("instantiated above"), store).await
        })
        .await;
        let hit = warm.store.data().memory.hit;
        let reusable = matches!(outcome, Ok(Ok(_)));
        let result = self.settle(&p, call, timeout, hit, outcome).await;
        warm.uses += 1;
        if reusable && warm.uses < WARM_POLICY_CALLS {
            let mut pool = p.warm.lock().expect("warm pool lock");
            if pool.len() < WARM_POLICY_POOL {
                pool.push(warm);
            }
        }
        result
    }

    /// The package version a loaded plugin was built against.
    pub fn api_version(&self, id: &str) -> Option<ApiVersion> {
        self.get(id).map(|p| p.manifest.api_version())
    }

    /// Asks a channel connector what it is and what it can do.
    pub async fn describe_channel(&self, id: &str) -> Result<ChannelInfo, CallError> {
        let timeout = self.inner.limits.call_timeout;
        self.call(
            id,
            PluginKind::Channel,
            "describe",
            timeout,
            async |pre, store| match pre {
                Pre::Channel(pre, exports) => {
                    let (info,) = call_fresh::<(), (ChannelInfo,)>(
                        pre.instance_pre(),
                        &exports.describe,
                        store,
                        (),
                    )
                    .await?;
                    Ok(info)
                }
                Pre::ChannelV1(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    let info = b
                        .switchboard_plugin_connector()
                        .call_describe(store)
                        .await?;
                    Ok(compat::channel_info_in(info))
                }
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }

    /// Hands one provider webhook to a connector.
    pub async fn handle_webhook(
        &self,
        id: &str,
        request: &HttpRequest,
    ) -> Result<Result<WebhookOutcome, PluginError>, CallError> {
        let timeout = self.inner.limits.call_timeout;
        let result = self
            .call(
                id,
                PluginKind::Channel,
                "handle-webhook",
                timeout,
                async |pre, store| match pre {
                    Pre::Channel(pre, exports) => {
                        let (outcome,) =
                            call_fresh::<(&HttpRequest,), (Result<WebhookOutcome, PluginError>,)>(
                                pre.instance_pre(),
                                &exports.handle_webhook,
                                store,
                                (request,),
                            )
                            .await?;
                        Ok(outcome)
                    }
                    Pre::ChannelV1(pre) => {
                        let b = pre.instantiate_async(&mut *store).await?;
                        let r = b
                            .switchboard_plugin_connector()
                            .call_handle_webhook(store, &compat::request_out(request))
                            .await?;
                        Ok(compat::result_in(r, compat::outcome_in))
                    }
                    _ => unreachable!("kind checked in checkout"),
                },
            )
            .await?;
        if let Ok(out) = &result {
            self.check_events(id, "handle-webhook", &out.events, outcome_size(out))
                .await?;
        }
        Ok(result)
    }

    /// Refuses a webhook or poll answer over the event-count or size caps, and
    /// counts it against the plugin.
    async fn check_events(
        &self,
        id: &str,
        call: &'static str,
        events: &[ChannelEvent],
        size: usize,
    ) -> Result<(), CallError> {
        let limits = &self.inner.limits;
        let too_large = if events.len() > limits.max_events {
            Some(format!(
                "{} events (limit {})",
                events.len(),
                limits.max_events
            ))
        } else {
            (size > limits.max_output_bytes)
                .then(|| format!("{size} bytes (limit {})", limits.max_output_bytes))
        };
        let Some(message) = too_large else {
            return Ok(());
        };
        let e = CallError::OutputTooLarge {
            plugin: id.to_string(),
            call,
            message,
        };
        if let Some(p) = self.get(id) {
            self.record_failure(&p, &e).await;
        }
        Err(e)
    }

    /// Asks a connector to deliver one message.
    pub async fn send(
        &self,
        id: &str,
        message: &OutboundMessage,
    ) -> Result<Result<SendReceipt, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        self.call(
            id,
            PluginKind::Channel,
            "send",
            timeout,
            async |pre, store| match pre {
                Pre::Channel(pre, exports) => {
                    let (receipt,) = call_fresh::<
                        (&OutboundMessage,),
                        (Result<SendReceipt, PluginError>,),
                    >(
                        pre.instance_pre(), &exports.send, store, (message,)
                    )
                    .await?;
                    Ok(receipt)
                }
                Pre::ChannelV1(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    let r = b
                        .switchboard_plugin_connector()
                        .call_send(store, &compat::message_out(message))
                        .await?;
                    Ok(compat::result_in(r, compat::send_receipt_in))
                }
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }

    /// Asks a connector how to download an inbound attachment. A 0.1.0
    /// connector has no such export: its attachment URL is fetched as it is,
    /// still only from its allowed hosts.
    pub async fn fetch_attachment(
        &self,
        id: &str,
        attachment: &Attachment,
    ) -> Result<Result<AttachmentDownload, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        self.call(
            id,
            PluginKind::Channel,
            "fetch-attachment",
            timeout,
            async |pre, store| match pre {
                Pre::Channel(pre, exports) => {
                    let (download,) =
                        call_fresh::<(&Attachment,), (Result<AttachmentDownload, PluginError>,)>(
                            pre.instance_pre(),
                            &exports.fetch_attachment,
                            store,
                            (attachment,),
                        )
                        .await?;
                    Ok(download)
                }
                Pre::ChannelV1(_) => {
                    Ok(Ok(AttachmentDownload::Request(bindings::DownloadRequest {
                        url: attachment.url.clone(),
                        headers: Vec::new(),
                    })))
                }
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }

    /// Downloads an inbound attachment: asks the connector how, then makes
    /// the request itself (only to the connector's allowed hosts, at most
    /// `max_bytes`), so large files never pass through the sandbox.
    pub async fn download_attachment(
        &self,
        id: &str,
        attachment: &Attachment,
        max_bytes: usize,
    ) -> Result<Downloaded, DownloadError> {
        if let Some(content) = &attachment.content {
            return Ok(Downloaded {
                content: content.clone().into(),
                content_type: attachment.content_type.clone(),
            });
        }
        let how = self
            .fetch_attachment(id, attachment)
            .await
            .map_err(DownloadError::Plugin)?
            .map_err(DownloadError::Refused)?;
        let request = match how {
            AttachmentDownload::Bytes(file) => {
                if file.content.len() > max_bytes {
                    return Err(DownloadError::TooLarge { max_bytes });
                }
                return Ok(Downloaded {
                    content: file.content.into(),
                    content_type: file
                        .content_type
                        .or_else(|| attachment.content_type.clone()),
                });
            }
            AttachmentDownload::Request(r) => r,
        };
        let p = self
            .get(id)
            .ok_or_else(|| DownloadError::Plugin(CallError::NotFound(id.to_string())))?;
        let allowed = |uri: &hyper::Uri| Origin::allows(&p.allowed, uri);
        let mut url = request.url;
        let mut headers = request.headers;
        let mut redirects = 0;
        let response = loop {
            let uri: hyper::Uri = url
                .parse()
                .map_err(|_| DownloadError::Denied(format!("`{url}` is not a URL")))?;
            if !allowed(&uri) {
                return Err(DownloadError::Denied(format!(
                    "{}://{} is not on the plugin's allow-list",
                    uri.scheme_str().unwrap_or(""),
                    uri.host().unwrap_or("")
                )));
            }
            let response = self
                .inner
                .services
                .fetch_file(
                    OutboundRequest {
                        plugin: id.to_string(),
                        method: "GET".into(),
                        uri: url.clone(),
                        headers: headers.clone(),
                        body: Default::default(),
                    },
                    max_bytes,
                )
                .await
                .map_err(|e| match e {
                    HttpFailure::ResponseTooLarge => DownloadError::TooLarge { max_bytes },
                    other => DownloadError::Http(format!("{other:?}")),
                })?;
            let location = response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.clone());
            match location {
                // Providers hand media out through redirects to their CDNs
                // (Twilio): follow a few, each hop checked against the
                // allow-list, credentials kept only on the same origin.
                Some(next) if matches!(response.status, 301 | 302 | 303 | 307 | 308) => {
                    redirects += 1;
                    if redirects > MAX_DOWNLOAD_REDIRECTS {
                        return Err(DownloadError::Http("too many redirects".into()));
                    }
                    let base = url::Url::parse(&url)
                        .map_err(|_| DownloadError::Denied(format!("`{url}` is not a URL")))?;
                    let target = base.join(&next).map_err(|_| {
                        DownloadError::Http("the provider redirected to a bad URL".into())
                    })?;
                    if target.origin() != base.origin() {
                        headers.retain(|(k, _)| {
                            !k.eq_ignore_ascii_case("authorization")
                                && !k.eq_ignore_ascii_case("cookie")
                        });
                    }
                    url = target.to_string();
                }
                _ => break response,
            }
        };
        if !(200..300).contains(&response.status) {
            return Err(DownloadError::Status(response.status));
        }
        let header_type = response
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone());
        Ok(Downloaded {
            content: response.body,
            content_type: header_type.or_else(|| attachment.content_type.clone()),
        })
    }

    /// The templates a connector's provider approved; a connector without
    /// templates has none.
    pub async fn list_templates(
        &self,
        id: &str,
    ) -> Result<Result<Vec<TemplateInfo>, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        self.call(
            id,
            PluginKind::Channel,
            "list-templates",
            timeout,
            async |pre, store| match pre {
                Pre::Channel(pre, exports) => {
                    let (templates,) = call_fresh::<(), (Result<Vec<TemplateInfo>, PluginError>,)>(
                        pre.instance_pre(),
                        &exports.list_templates,
                        store,
                        (),
                    )
                    .await?;
                    Ok(templates)
                }
                Pre::ChannelV1(_) => Ok(Ok(Vec::new())),
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }

    /// Pulls new events from a connector that polls.
    pub async fn poll(
        &self,
        id: &str,
        cursor: Option<&str>,
    ) -> Result<Result<PollOutcome, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        let cursor = cursor.map(str::to_string);
        let result = self
            .call(
                id,
                PluginKind::Channel,
                "poll",
                timeout,
                async |pre, store| match pre {
                    Pre::Channel(pre, exports) => {
                        let (outcome,) =
                            call_fresh::<(Option<&str>,), (Result<PollOutcome, PluginError>,)>(
                                pre.instance_pre(),
                                &exports.poll,
                                store,
                                (cursor.as_deref(),),
                            )
                            .await?;
                        Ok(outcome)
                    }
                    Pre::ChannelV1(_) => Ok(Err(PluginError::Unsupported(
                        "plugin API 0.1.0 has no poll".into(),
                    ))),
                    _ => unreachable!("kind checked in checkout"),
                },
            )
            .await?;
        if let Ok(out) = &result {
            let size = events_size(&out.events) + out.cursor.as_ref().map_or(0, String::len);
            self.check_events(id, "poll", &out.events, size).await?;
        }
        Ok(result)
    }

    /// Whether a loaded plugin is an e-mail connector ([`EMAIL_WORLDS`]): the
    /// server then polls it with [`Self::poll_mail`], hands its webhooks to
    /// [`Self::handle_mail_webhook`] and sends with [`Self::send_mail`]. Its
    /// plain channel methods work as well.
    pub fn is_mail(&self, id: &str) -> bool {
        self.get(id).is_some_and(|p| p.manifest.is_mail())
    }

    /// `poll` of an e-mail connector, with envelopes. It talks to the IMAP
    /// server, so it gets the send deadline.
    pub async fn poll_mail(
        &self,
        id: &str,
        cursor: Option<&str>,
    ) -> Result<Result<MailBatch, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        let result = self
            .call(
                id,
                PluginKind::Channel,
                "poll-mail",
                timeout,
                async |pre, store| {
                    let Some((pre, mailer)) = mailer_of(pre) else {
                        return Ok(Err(not_mail(id)));
                    };
                    let (batch,) =
                        call_fresh::<(Option<&str>,), (Result<MailBatch, PluginError>,)>(
                            pre,
                            &mailer.poll_mail,
                            store,
                            (cursor,),
                        )
                        .await?;
                    Ok(batch)
                },
            )
            .await?;
        if let Ok(batch) = &result {
            self.check_mail_batch(id, "poll-mail", batch).await?;
        }
        Ok(result)
    }

    /// `handle-webhook` of an e-mail connector (a provider's inbound-mail
    /// webhook), with envelopes and the answer for the provider.
    pub async fn handle_mail_webhook(
        &self,
        id: &str,
        request: &HttpRequest,
    ) -> Result<Result<MailBatch, PluginError>, CallError> {
        let timeout = self.inner.limits.call_timeout;
        let result = self
            .call(
                id,
                PluginKind::Channel,
                "handle-mail-webhook",
                timeout,
                async |pre, store| {
                    let Some((pre, mailer)) = mailer_of(pre) else {
                        return Ok(Err(not_mail(id)));
                    };
                    let (batch,) =
                        call_fresh::<(&HttpRequest,), (Result<MailBatch, PluginError>,)>(
                            pre,
                            &mailer.handle_mail_webhook,
                            store,
                            (request,),
                        )
                        .await?;
                    Ok(batch)
                },
            )
            .await?;
        if let Ok(batch) = &result {
            self.check_mail_batch(id, "handle-mail-webhook", batch)
                .await?;
        }
        Ok(result)
    }

    /// `send` of an e-mail connector, with copies. It talks to the SMTP
    /// server, so it gets the send deadline.
    pub async fn send_mail(
        &self,
        id: &str,
        message: &OutboundMessage,
        copies: &Copies,
    ) -> Result<Result<SendReceipt, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        self.call(
            id,
            PluginKind::Channel,
            "send-mail",
            timeout,
            async |pre, store| {
                let Some((pre, mailer)) = mailer_of(pre) else {
                    return Ok(Err(not_mail(id)));
                };
                let (receipt,) = call_fresh::<
                    (&OutboundMessage, &Copies),
                    (Result<SendReceipt, PluginError>,),
                >(pre, &mailer.send_mail, store, (message, copies))
                .await?;
                Ok(receipt)
            },
        )
        .await
    }

    /// [`Self::check_events`] for a mail batch: its envelopes count as
    /// events, and everything it carries counts towards the output cap.
    async fn check_mail_batch(
        &self,
        id: &str,
        call: &'static str,
        batch: &MailBatch,
    ) -> Result<(), CallError> {
        let max = self.inner.limits.max_events;
        if batch.envelopes.len() > max {
            let e = CallError::OutputTooLarge {
                plugin: id.to_string(),
                call,
                message: format!("{} envelopes (limit {max})", batch.envelopes.len()),
            };
            if let Some(p) = self.get(id) {
                self.record_failure(&p, &e).await;
            }
            return Err(e);
        }
        self.check_events(id, call, &batch.events, mail_batch_size(batch))
            .await
    }

    /// Asks a routing policy to classify a task.
    pub async fn classify(
        &self,
        id: &str,
        task: &bindings::TaskInfo,
    ) -> Result<Result<bindings::Classification, PluginError>, CallError> {
        self.call_policy(id, "classify", async |b, store| match b {
            PolicyBindings::V2(b) => {
                b.switchboard_plugin_policy()
                    .call_classify(store, task)
                    .await
            }
            PolicyBindings::V1(b) => {
                let r = b
                    .switchboard_plugin_policy()
                    .call_classify(store, &compat::task_out(task))
                    .await?;
                Ok(compat::result_in(r, compat::classification_in))
            }
        })
        .await
    }

    /// Asks a routing policy to rank eligible agents. A 0.2.0 policy reads
    /// the candidates as a resource, column by column; a 0.1.0 policy gets
    /// them as a list of records.
    pub async fn rank(
        &self,
        id: &str,
        task: &bindings::TaskInfo,
        candidates: &CandidateSet,
    ) -> Result<Result<Vec<u32>, PluginError>, CallError> {
        self.call_policy(id, "rank", async |b, store| match b {
            PolicyBindings::V2(b) => {
                let handle = store.data_mut().table_mut().push(candidates.clone())?;
                let borrowed = wasmtime::component::Resource::new_borrow(handle.rep());
                let result = b
                    .switchboard_plugin_policy()
                    .call_rank(&mut *store, task, borrowed)
                    .await;
                store.data_mut().table_mut().delete(handle)?;
                result
            }
            PolicyBindings::V1(b) => {
                let rows: Vec<_> = candidates
                    .to_rows()
                    .into_iter()
                    .map(compat::candidate_out)
                    .collect();
                let r = b
                    .switchboard_plugin_policy()
                    .call_rank(store, &compat::task_out(task), &rows)
                    .await?;
                Ok(r.map_err(compat::error_in))
            }
        })
        .await
    }

    /// Asks a CRM plugin about a person, within `timeout` (at most the send
    /// deadline): a lookup that runs past it is a failed call like any other, and
    /// counts towards the plugin's quarantine.
    pub async fn crm_lookup(
        &self,
        id: &str,
        identity: &bindings::Identity,
        timeout: Duration,
    ) -> Result<Result<Option<bindings::CrmProfile>, PluginError>, CallError> {
        let timeout = timeout.min(self.inner.limits.send_timeout);
        self.call(
            id,
            PluginKind::Crm,
            "lookup-contact",
            timeout,
            async |pre, store| match pre {
                Pre::Crm(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.switchboard_plugin_crm_sync()
                        .call_lookup_contact(store, identity)
                        .await
                }
                Pre::CrmV1(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    let r = b
                        .switchboard_plugin_crm_sync()
                        .call_lookup_contact(store, &compat::identity_out(identity))
                        .await?;
                    Ok(compat::result_in(r, |p| p.map(compat::profile_in)))
                }
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }

    /// Asks a CRM plugin to create the person ("create in CRM"). A 0.1.0 CRM
    /// plugin cannot: it answers `unsupported`.
    pub async fn crm_create_contact(
        &self,
        id: &str,
        contact: &bindings::ContactSummary,
    ) -> Result<Result<bindings::CrmProfile, PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        self.call(
            id,
            PluginKind::Crm,
            "create-contact",
            timeout,
            async |pre, store| match pre {
                Pre::Crm(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.switchboard_plugin_crm_sync()
                        .call_create_contact(store, contact)
                        .await
                }
                Pre::CrmV1(_) => Ok(Err(PluginError::Unsupported(
                    "a switchboard:plugin/crm@0.1.0 plugin cannot create contacts".to_string(),
                ))),
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }

    /// Hands a timeline entry to a CRM plugin to write back.
    pub async fn crm_record_activity(
        &self,
        id: &str,
        entry: &bindings::TimelineEntry,
    ) -> Result<Result<(), PluginError>, CallError> {
        let timeout = self.inner.limits.send_timeout;
        self.call(
            id,
            PluginKind::Crm,
            "record-activity",
            timeout,
            async |pre, store| match pre {
                Pre::Crm(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.switchboard_plugin_crm_sync()
                        .call_record_activity(store, entry)
                        .await
                }
                Pre::CrmV1(pre) => {
                    let b = pre.instantiate_async(&mut *store).await?;
                    let r = b
                        .switchboard_plugin_crm_sync()
                        .call_record_activity(store, &compat::entry_out(entry))
                        .await?;
                    Ok(r.map_err(compat::error_in))
                }
                _ => unreachable!("kind checked in checkout"),
            },
        )
        .await
    }
}

/// The channel instance-pre and `mailer` exports of an e-mail component.
fn mailer_of(pre: &Pre) -> Option<(&InstancePre<PluginState>, &MailerExports)> {
    match pre {
        Pre::Channel(pre, exports) => exports.mailer.as_deref().map(|m| (pre.instance_pre(), m)),
        _ => None,
    }
}

/// The answer of a mail call to a plugin that is no e-mail connector.
fn not_mail(id: &str) -> PluginError {
    PluginError::Unsupported(format!(
        "plugin `{id}` is not an e-mail connector (world `{EMAIL_WORLD}`)"
    ))
}

/// Redirects an attachment download follows.
pub const MAX_DOWNLOAD_REDIRECTS: usize = 3;

/// A downloaded inbound attachment.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The file.
    pub content: bytes::Bytes,
    /// What the provider said it is (the host sniffs the bytes as well).
    pub content_type: Option<String>,
}

/// Why an attachment could not be downloaded or copied. Every one is worth
/// retrying later except [`DownloadError::TooLarge`] and
/// [`DownloadError::Denied`].
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The plugin call failed.
    #[error("{0}")]
    Plugin(CallError),
    /// The plugin answered with an error.
    #[error("the connector refused: {0:?}")]
    Refused(PluginError),
    /// The download URL is not on the plugin's allow-list.
    #[error("download denied: {0}")]
    Denied(String),
    /// The file is larger than the host accepts.
    #[error("the file is larger than {max_bytes} bytes")]
    TooLarge {
        /// The cap.
        max_bytes: usize,
    },
    /// The provider answered with an error status.
    #[error("the provider answered HTTP {0}")]
    Status(u16),
    /// No answer.
    #[error("download failed: {0}")]
    Http(String),
    /// The caller's sink (the blob store) could not take the file.
    #[error("the file could not be written: {0}")]
    Storage(String),
}

impl DownloadError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DownloadError::TooLarge { .. } | DownloadError::Denied(_) => false,
            DownloadError::Refused(e) => !matches!(
                e,
                PluginError::Permanent(_) | PluginError::Unsupported(_) | PluginError::Config(_)
            ),
            DownloadError::Status(s) => *s >= 500 || *s == 429 || *s == 408,
            _ => true,
        }
    }
}

fn status_of(p: &Loaded) -> PluginStatus {
    PluginStatus {
        id: p.id.to_string(),
        kind: p.manifest.kind,
        version: p.manifest.version.clone(),
        world: p.manifest.world.clone(),
        enabled: p.enabled.load(Ordering::SeqCst),
        quarantined: p.quarantine.lock().expect("quarantine lock").clone(),
        calls: p.calls.load(Ordering::Relaxed),
        failures: p.failures.load(Ordering::Relaxed),
        consecutive_failures: p.consecutive.load(Ordering::SeqCst),
        allowed_hosts: p.allowed.iter().map(|o| o.to_string()).collect(),
        approved_servers: p
            .endpoints
            .iter()
            .flat_map(|e| e.iter().map(|e| e.to_string()))
            .collect(),
    }
}

/// The first line of a trap, which names the trap kind without guest data.
fn trap_message(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return trap.to_string();
    }
    e.to_string()
        .lines()
        .next()
        .unwrap_or("unknown failure")
        .to_string()
}

fn identity_size(i: &bindings::Identity) -> usize {
    i.kind.len() + i.value.len()
}

fn outcome_size(out: &WebhookOutcome) -> usize {
    let headers: usize = out
        .response
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    out.response.body.len() + headers + events_size(&out.events)
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

fn attachment_size(a: &Attachment) -> usize {
    a.url.len()
        + opt_len(&a.content_type)
        + opt_len(&a.filename)
        + opt_len(&a.content_id)
        + a.content.as_ref().map_or(0, Vec::len)
}

fn metadata_size(m: &bindings::MessageMetadata) -> usize {
    opt_len(&m.subject)
        + opt_len(&m.thread_id)
        + opt_len(&m.in_reply_to)
        + m.references.iter().map(String::len).sum::<usize>()
        + m.interactive_reply
            .as_ref()
            .map_or(0, |r| r.id.len() + r.title.len())
        + m.reaction
            .as_ref()
            .map_or(0, |r| r.provider_id.len() + r.emoji.len())
        + m.location
            .as_ref()
            .map_or(0, |l| 16 + opt_len(&l.name) + opt_len(&l.address))
        + m.contacts
            .iter()
            .map(|c| opt_len(&c.name) + c.identities.iter().map(identity_size).sum::<usize>())
            .sum::<usize>()
        + m.shared_identities.iter().map(identity_size).sum::<usize>()
}

fn mail_batch_size(batch: &MailBatch) -> usize {
    let envelopes: usize = batch
        .envelopes
        .iter()
        .map(|e| {
            e.provider_id.len()
                + e.to.iter().map(identity_size).sum::<usize>()
                + e.cc.iter().map(identity_size).sum::<usize>()
                + opt_len(&e.problem)
                + 1
        })
        .sum();
    let response = batch.response.as_ref().map_or(0, |r| {
        r.body.len()
            + r.headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    });
    events_size(&batch.events) + envelopes + opt_len(&batch.cursor) + response
}

fn events_size(events: &[ChannelEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            ChannelEvent::Message(m) => {
                m.provider_id.len()
                    + identity_size(&m.sender)
                    + m.recipient.as_ref().map_or(0, identity_size)
                    + opt_len(&m.sender_name)
                    + m.body.len()
                    + opt_len(&m.html_body)
                    + m.attachments.iter().map(attachment_size).sum::<usize>()
                    + metadata_size(&m.metadata)
            }
            ChannelEvent::Receipt(r) => {
                r.provider_id.len() + opt_len(&r.error_code) + opt_len(&r.error_message)
            }
            ChannelEvent::Consent(c) => {
                c.provider_id.len() + identity_size(&c.identity) + c.keyword.len()
            }
        })
        .sum()
}
