//! [`App`]: the application's use cases, built once and shared by the edges (the HTTP
//! API, the SIP user agent, the CLI).
//!
//! Each service is built from the parts it needs — store, plugin host, event bus,
//! routing, settings — and nothing else; `App` only holds them together so an edge can
//! reach the use case a request names.

use std::path::PathBuf;
use std::sync::Arc;

use switchboard_plugin_host::PluginHost;
use switchboard_routing::EngineConfig;
use switchboard_store::Store;
use tokio::sync::watch;

use crate::accounts::Passwords;
use crate::attachments::{AttachmentConfig, Attachments};
use crate::blobs::FileStore;
use crate::channels::Channels;
use crate::clock::Clock;
use crate::contacts::Contacts;
use crate::crm::{Crm, CrmConfig, CrmParts};
use crate::desk::{Desk, Disposition};
use crate::email_view::EmailViews;
use crate::error::AppResult;
use crate::events::{EventBus, LocalBus};
use crate::ingest::{Ingest, IngestConfig, IngestParts};
use crate::login::{Logins, ThrottleConfig};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::outbox::{Outbox, OutboxConfig, OutboxParts};
use crate::plugins::{PluginAdmin, PluginFiles};
use crate::recordings::Recordings;
use crate::relay::Relay;
use crate::reports::{ReportConfig, Reports};
use crate::routing::{NodeConfig, RoutingParts, RoutingService};
use crate::supervisor::Supervision;
use crate::surveys::Surveys;
use crate::tasks::Tasks;
use crate::webchat::{Webchat, WebchatLimits};

/// What the application needs to know about the deployment.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The URL providers call, without a trailing slash; connectors verify
    /// signatures against it.
    pub public_url: String,
    /// Where installed plugins (and recordings, prompts) are kept.
    pub data_dir: PathBuf,
    /// A resolved conversation reopens if the customer writes again within this.
    pub reopen_window_ms: i64,
    /// Region for phone numbers written without a country code (e.g. `US`).
    pub default_region: Option<String>,
    /// The outcomes agents choose from when resolving.
    pub dispositions: Vec<Disposition>,
    /// Outbox tuning.
    pub outbox: OutboxConfig,
    /// Routing's settings; `None` runs without routing (no tasks, no offers).
    pub routing: Option<EngineConfig>,
    /// Login throttling.
    pub login: ThrottleConfig,
    /// What webchat visitors may do.
    pub webchat: WebchatLimits,
    /// Attachment limits and retries.
    pub attachments: AttachmentConfig,
    /// CRM lookups and write-back.
    pub crm: CrmConfig,
    /// Where attachments, recordings and installed plugin components live: the
    /// data directory (one node), or the database with the data directory as this
    /// node's cache (several nodes on one database).
    pub file_store: FileStore,
    /// This node's name and its part in routing leadership.
    pub node: NodeConfig,
}

/// The application layer, ready to serve. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The database (read-only lookups go straight to it).
    pub store: Store,
    /// The plugin sandbox.
    pub plugins: PluginHost,
    /// Deployment settings.
    pub config: Arc<AppConfig>,
    /// Where domain events are published and subscribed to.
    pub events: Arc<dyn EventBus>,
    /// Publishing with routing's audiences.
    pub notifier: Notifier,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Commands and API requests between nodes (several nodes with NATS).
    pub relay: Option<Arc<Relay>>,
    /// The channels a conversation can use.
    pub channels: Arc<Channels>,
    /// The routing service, when routing runs.
    pub routing: Option<Arc<RoutingService>>,
    /// Provider webhooks into the store and routing.
    pub ingest: Arc<Ingest>,
    /// Replies and their delivery.
    pub outbox: Arc<Outbox>,
    /// The webchat channel.
    pub webchat: Arc<Webchat>,
    /// The agent desk.
    pub desk: Arc<Desk>,
    /// Routing on behalf of people: queues, presence, offers, tasks, transfers.
    pub tasks: Arc<Tasks>,
    /// Wallboard, reports and the roster.
    pub supervision: Arc<Supervision>,
    /// Contacts and conversations.
    pub contacts: Arc<Contacts>,
    /// E-mail as the desk shows it, and its frames.
    pub email: Arc<EmailViews>,
    /// Plugin administration.
    pub plugin_admin: Arc<PluginAdmin>,
    /// Logging in, throttled.
    pub logins: Arc<Logins>,
    /// Attachments: the blob store, uploads, the copy worker, signed URLs.
    pub attachments: Arc<Attachments>,
    /// Call recordings, served by any node.
    pub recordings: Arc<Recordings>,
    /// Surveys after a resolve, and their answers.
    pub surveys: Arc<Surveys>,
    /// CRM enrichment, "create in CRM" and the write-back queue.
    pub crm: Arc<Crm>,
    /// Reports, drill-downs and exports (UTC until [`App::with_reports`]).
    pub reports: Arc<Reports>,
    /// The clock use cases stamp what they record with.
    pub clock: Clock,
}

impl App {
    /// Builds every service over `store` and `plugins` with the in-process event bus;
    /// restores and starts routing when `config.routing` asks for it.
    pub async fn start(store: Store, plugins: PluginHost, config: AppConfig) -> AppResult<App> {
        App::start_with_bus(store, plugins, config, Arc::new(LocalBus::default())).await
    }

    /// [`App::start`] with another event bus.
    pub async fn start_with_bus(
        store: Store,
        plugins: PluginHost,
        config: AppConfig,
        events: Arc<dyn EventBus>,
    ) -> AppResult<App> {
        App::start_with_clock(store, plugins, config, events, Clock::system()).await
    }

    /// [`App::start_with_bus`] on another clock (scenario tests move a manual one).
    pub async fn start_with_clock(
        store: Store,
        plugins: PluginHost,
        config: AppConfig,
        events: Arc<dyn EventBus>,
        clock: Clock,
    ) -> AppResult<App> {
        let routing = match config.routing.clone() {
            Some(engine) => Some(
                RoutingService::start_on_node(
                    RoutingParts {
                        store: store.clone(),
                        plugins: plugins.clone(),
                        hub: events.clone(),
                        clock: clock.clone(),
                    },
                    engine,
                    config.node.clone(),
                )
                .await?,
            ),
            None => None,
        };
        let notifier = Notifier::new(events.clone(), routing.clone());
        let metrics = Arc::new(Metrics::default());
        let channels = Arc::new(Channels::new(plugins.clone()));
        let blobs = config.file_store.blobs(
            config.data_dir.join("blobs"),
            config.attachments.max_bytes,
            &store,
        );
        let recordings = Arc::new(Recordings::new(store.clone(), &blobs));
        let plugin_files = PluginFiles::new(config.data_dir.clone(), &blobs);
        let attachments = Arc::new(Attachments::new(
            store.clone(),
            plugins.clone(),
            blobs,
            notifier.clone(),
            config.attachments.clone(),
            config.public_url.clone(),
        ));
        let ingest = Arc::new(Ingest::new(
            IngestParts {
                store: store.clone(),
                plugins: plugins.clone(),
                channels: channels.clone(),
                notifier: notifier.clone(),
                routing: routing.clone(),
                metrics: metrics.clone(),
                attachments: attachments.clone(),
                clock: clock.clone(),
            },
            IngestConfig {
                public_url: config.public_url.clone(),
                default_region: config.default_region.clone(),
                reopen_window_ms: config.reopen_window_ms,
            },
        ));
        let webchat = Arc::new(Webchat::new(
            store.clone(),
            ingest.clone(),
            notifier.clone(),
            routing.clone(),
            &config.webchat,
            clock.clone(),
        ));
        let outbox = Arc::new(Outbox::new(
            OutboxParts {
                store: store.clone(),
                plugins: plugins.clone(),
                channels: channels.clone(),
                notifier: notifier.clone(),
                metrics: metrics.clone(),
                webchat: webchat.clone(),
                attachments: attachments.clone(),
                clock: clock.clone(),
            },
            config.outbox.clone(),
        ));
        let desk = Arc::new(Desk::new(
            store.clone(),
            channels.clone(),
            notifier.clone(),
            routing.clone(),
            config.dispositions.clone(),
            clock.clone(),
        ));
        let surveys = Arc::new(Surveys::new(
            store.clone(),
            channels.clone(),
            outbox.clone(),
            notifier.clone(),
            clock.clone(),
            config.public_url.clone(),
        ));
        desk.observe_resolves(surveys.clone());
        ingest.catch_answers(surveys.clone());
        let tasks = Arc::new(Tasks::new(
            store.clone(),
            routing.clone(),
            notifier.clone(),
            clock.clone(),
        ));
        let relay = match (&routing, &config.node.nats_url) {
            (Some(_), Some(url)) => {
                let relay = Relay::connect(
                    url,
                    &config.node.nats_prefix,
                    &config.node.id,
                    store.clone(),
                )
                .await?;
                let relay = Arc::new(relay);
                tasks.set_relay(relay.clone());
                tokio::spawn(relay.clone().serve(tasks.clone()));
                Some(relay)
            }
            _ => None,
        };
        let passwords = Passwords::default();
        let supervision = Arc::new(Supervision::new(
            store.clone(),
            routing.clone(),
            passwords.clone(),
            events.clone(),
        ));
        let logins = Arc::new(
            Logins::new(
                store.clone(),
                passwords,
                config.login.clone(),
                metrics.clone(),
                events.clone(),
            )
            .await?,
        );
        let email = Arc::new(EmailViews::new(store.clone()));
        let crm = Arc::new(Crm::new(
            CrmParts {
                store: store.clone(),
                plugins: plugins.clone(),
                events: events.clone(),
                clock: clock.clone(),
                public_url: config.public_url.clone(),
            },
            config.crm.clone(),
        ));
        store.crm_installed().await?;
        if let Some(routing) = &routing {
            routing.set_crm(crm.clone());
        }
        let store_for_reports = store.clone();
        let contacts = Arc::new(Contacts::new(
            store.clone(),
            config.default_region.clone(),
            email.clone(),
            clock.clone(),
        ));
        let mut plugin_admin = PluginAdmin::new(
            store.clone(),
            plugins.clone(),
            channels.clone(),
            config.public_url.clone(),
            plugin_files,
        );
        if config.node.nats_url.is_some() {
            plugin_admin = plugin_admin.on_cluster(events.clone(), &config.node.id);
        }
        let plugin_admin = Arc::new(plugin_admin);
        Ok(App {
            store,
            plugins,
            config: Arc::new(config),
            events,
            notifier,
            metrics,
            relay,
            channels,
            routing,
            ingest,
            outbox,
            webchat,
            desk,
            tasks,
            supervision,
            contacts,
            email,
            plugin_admin,
            logins,
            attachments,
            recordings,
            surveys,
            crm,
            reports: Arc::new(Reports::new(
                store_for_reports,
                ReportConfig::default(),
                clock.clone(),
            )),
            clock,
        })
    }

    /// The app with these report settings (the operator's time zone, default
    /// thresholds).
    pub fn with_reports(mut self, config: ReportConfig) -> App {
        self.reports = Arc::new(Reports::new(self.store.clone(), config, self.clock.clone()));
        self
    }

    /// Runs the background work (the outbox worker, the attachment copier, the
    /// pollers, survey reminders, CRM write-back and, on a cluster, other nodes'
    /// plugin changes) until `shutdown` turns true.
    pub async fn run_workers(&self, shutdown: watch::Receiver<bool>) {
        tokio::join!(
            self.plugin_admin.follow_other_nodes(shutdown.clone()),
            self.outbox.run(shutdown.clone()),
            self.attachments.run(shutdown.clone()),
            self.surveys.run(shutdown.clone()),
            self.crm.run(shutdown.clone()),
            self.ingest.run_pollers(shutdown),
        );
    }
}
