//! `switchboard`: the server and its operator CLI.
//!
//! `main` parses arguments, sets up tracing and hands off to the library
//! crates; everything testable lives in them.

mod config;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::replay;
use switchboard_api::AppState;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::plugins as admin;
use switchboard_app::{App, AppConfig};
use switchboard_core::{Role, Skill};
use switchboard_plugin_host::PluginHost;
use switchboard_store::Store;

use crate::config::Settings;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Omnichannel contact-center server"
)]
struct Cli {
    /// Settings file (TOML). Default: ./switchboard.toml when present.
    #[arg(long, global = true, env = "SWITCHBOARD_SETTINGS")]
    settings: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// First-run demo: install the plugins in --plugins-dir with demo
        /// settings and create an admin account, printing its credentials.
        #[arg(long)]
        demo: bool,
        /// Where built plugins are (each a folder with plugin.toml).
        #[arg(long, default_value = "plugins/dist")]
        plugins_dir: PathBuf,
    },
    /// Print the OpenAPI 3.1 document of `/api/v1` (the server also serves it at
    /// `GET /api/v1/openapi.json`).
    Openapi,
    /// Manage users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage plugins (restart a running server to apply; the API applies at once).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Routing tools.
    Routing {
        #[command(subcommand)]
        command: RoutingCommand,
    },
    /// SIP trunks: where outbound calls go and whose INVITEs are accepted.
    Trunk {
        #[command(subcommand)]
        command: TrunkCommand,
    },
    /// Desk phones' SIP accounts (REGISTER and calls with digest authentication).
    Phone {
        #[command(subcommand)]
        command: PhoneCommand,
    },
    /// Reports (definitions in REPORTS.md).
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Recompute every report fact from history (the routing log and the timeline).
    /// Run it with the server stopped, or at a quiet time: on SQLite it holds the
    /// write lock until it is done.
    Rebuild,
}

#[derive(Subcommand)]
enum TrunkCommand {
    /// Add a trunk (or replace the one of that name).
    Add {
        #[arg(long)]
        name: String,
        /// host:port of the trunk.
        #[arg(long)]
        address: String,
        /// Digest username for the trunk's challenges.
        #[arg(long, requires = "password")]
        username: Option<String>,
        /// Digest password (stored encrypted).
        #[arg(long, requires = "username")]
        password: Option<String>,
    },
    /// List trunks (passwords are never shown).
    List,
    /// Remove a trunk.
    Remove { name: String },
}

#[derive(Subcommand)]
enum PhoneCommand {
    /// Add a desk phone account; only the digest HA1 is stored.
    Add {
        /// SIP username (the extension), e.g. 1001.
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// The agent whose phone it is (e-mail).
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand)]
enum RoutingCommand {
    /// Replay a recorded arrival trace through one or two policies on virtual time.
    Replay(replay::ReplayArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an agent, supervisor or admin.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "agent")]
        role: String,
        #[arg(long)]
        name: Option<String>,
        /// Skills with proficiency 1-5: `sales:4,billing:2`.
        #[arg(long)]
        skills: Option<String>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Install or upgrade a plugin from its folder.
    Install {
        path: PathBuf,
        /// `key=value`, repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Extra origin the plugin may call, repeatable.
        #[arg(long = "allow-host", value_name = "URL")]
        allow_hosts: Vec<String>,
        /// Install under this id instead of the manifest's (run one connector
        /// for several accounts: each id has its own config, secrets, kv,
        /// webhook path and health).
        #[arg(long = "id", value_name = "NAME")]
        id: Option<String>,
    },
    /// List installed plugins.
    List,
    /// Enable a plugin (lifts a quarantine).
    Enable { id: String },
    /// Disable a plugin.
    Disable { id: String },
    /// Remove a plugin and its files.
    Remove { id: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.settings.as_deref())?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&settings.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { demo, plugins_dir } => serve(settings, demo, plugins_dir).await,
            Command::Openapi => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&switchboard_api::openapi_document())?
                );
                Ok(())
            }
            Command::Admin { command } => admin_command(settings, command).await,
            Command::Plugin { command } => plugin_command(settings, command).await,
            Command::Routing {
                command: RoutingCommand::Replay(args),
            } => replay::run(args).await,
            Command::Trunk { command } => trunk_command(settings, command).await,
            Command::Phone { command } => phone_command(settings, command).await,
            Command::Reports {
                command: ReportsCommand::Rebuild,
            } => rebuild_reports(settings).await,
        }
    })
}

async fn trunk_command(settings: Settings, command: TrunkCommand) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    match command {
        TrunkCommand::Add {
            name,
            address,
            username,
            password,
        } => {
            if tokio::net::lookup_host(address.as_str()).await.is_err() {
                anyhow::bail!("--address {address:?} is not a resolvable host:port");
            }
            let trunk = store
                .upsert_trunk(&name, &address, username.as_deref(), password.as_deref())
                .await?;
            println!("trunk {} → {}", trunk.name, trunk.address);
        }
        TrunkCommand::List => {
            for t in store.trunks().await? {
                let auth = match &t.username {
                    Some(u) => format!(" (digest user {u})"),
                    None => String::new(),
                };
                println!("{}\t{}{auth}", t.name, t.address);
            }
        }
        TrunkCommand::Remove { name } => {
            if !store.remove_trunk(&name).await? {
                anyhow::bail!("no trunk {name:?}");
            }
            println!("removed trunk {name}");
        }
    }
    store.close().await;
    Ok(())
}

async fn rebuild_reports(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let started = std::time::Instant::now();
    let stats = store
        .rebuild_reports()
        .await
        .context("rebuilding the report facts")?;
    println!(
        "rebuilt the report facts from {} routing entries and {} timeline events: {} tasks, \
         {} conversations ({:.1} s)",
        stats.routing_entries,
        stats.events,
        stats.tasks,
        stats.conversations,
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

async fn phone_command(settings: Settings, command: PhoneCommand) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    match command {
        PhoneCommand::Add {
            user,
            password,
            agent,
        } => {
            let agent_id = match agent {
                Some(email) => Some(
                    store
                        .agent_by_email(&email)
                        .await?
                        .with_context(|| format!("no agent {email}"))?
                        .0
                        .id,
                ),
                None => None,
            };
            let realm = settings.voice.realm.clone();
            let ha1 = switchboard_sip::digest::ha1(
                switchboard_sip::digest::Algorithm::Md5,
                &user,
                &realm,
                &password,
            );
            store
                .upsert_sip_account(&switchboard_store::SipAccount {
                    username: user.clone(),
                    realm,
                    ha1,
                    agent_id,
                })
                .await?;
            println!("desk phone {user} can register");
        }
    }
    store.close().await;
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let key = settings.secret_key()?;
    Store::connect(&settings.database_url(), key)
        .await
        .with_context(|| "opening the database".to_string())
}

/// Where this node keeps installed plugins (`[cluster] file_store`).
fn plugin_files(settings: &Settings, store: &Store) -> admin::PluginFiles {
    let blobs = settings.cluster.file_store.blobs(
        settings.data_dir.join("blobs"),
        settings.attachments.max_bytes,
        store,
    );
    admin::PluginFiles::new(settings.data_dir.clone(), &blobs)
}

fn plugin_host(settings: &Settings, store: &Store) -> anyhow::Result<PluginHost> {
    server_plugin_host(store, settings.limits()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn parse_skills(text: &str) -> anyhow::Result<Vec<Skill>> {
    let mut skills = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, level) = part.split_once(':').unwrap_or((part, "3"));
        let level: u8 = level
            .parse()
            .ok()
            .filter(|l| (1..=5).contains(l))
            .with_context(|| format!("skill {part:?}: proficiency must be 1-5"))?;
        skills.push(Skill::new(name, level)?);
    }
    Ok(skills)
}

async fn create_user(
    store: &Store,
    email: &str,
    password: &str,
    role: Role,
    name: Option<String>,
    skills: Vec<Skill>,
) -> anyhow::Result<switchboard_store::Agent> {
    let passwords = switchboard_app::accounts::Passwords::default();
    switchboard_app::accounts::create_user(store, &passwords, email, password, role, name, skills)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn admin_command(settings: Settings, command: AdminCommand) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    match command {
        AdminCommand::CreateUser {
            email,
            password,
            role,
            name,
            skills,
        } => {
            let role: Role = role
                .parse()
                .map_err(|_| anyhow::anyhow!("role must be agent, supervisor or admin"))?;
            let skills = skills
                .as_deref()
                .map(parse_skills)
                .transpose()?
                .unwrap_or_default();
            let agent = create_user(&store, &email, &password, role, name, skills).await?;
            println!(
                "created {} {} ({})",
                agent.role.as_str(),
                agent.email,
                agent.id
            );
        }
    }
    store.close().await;
    Ok(())
}

fn parse_config(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .with_context(|| format!("--config {p:?} must be key=value"))
        })
        .collect()
}

async fn plugin_command(settings: Settings, command: PluginCommand) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    match command {
        PluginCommand::Install {
            path,
            config,
            allow_hosts,
            id,
        } => {
            let host = plugin_host(&settings, &store)?;
            let manifest = admin::install(
                &store,
                &host,
                &plugin_files(&settings, &store),
                admin::InstallRequest {
                    source: path,
                    config: parse_config(&config)?,
                    allow_hosts,
                    id,
                },
            )
            .await?;
            store
                .audit(
                    "cli",
                    "plugin.install",
                    Some(&manifest.id),
                    serde_json::json!(manifest.version),
                )
                .await?;
            println!(
                "installed {} {} ({}); restart a running server to load it",
                manifest.id, manifest.version, manifest.kind
            );
        }
        PluginCommand::List => {
            for p in store.list_plugins().await? {
                let state = match (&p.quarantine_reason, p.enabled) {
                    (Some(reason), _) => format!("quarantined: {reason}"),
                    (None, true) => "enabled".to_string(),
                    (None, false) => "disabled".to_string(),
                };
                println!("{}\t{}\t{}\t{}", p.id, p.version, p.kind, state);
            }
        }
        PluginCommand::Enable { id } => {
            admin::record_enabled(&store, "cli", &id, true).await?;
            println!("enabled {id}");
        }
        PluginCommand::Disable { id } => {
            admin::record_enabled(&store, "cli", &id, false).await?;
            println!("disabled {id}");
        }
        PluginCommand::Remove { id } => {
            admin::record_removed(&store, "cli", &id).await?;
            println!("removed {id}");
        }
    }
    store.close().await;
    Ok(())
}

fn random_password() -> String {
    let mut bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// Demo set-up: the first-party plugins with demo settings and an admin.
async fn demo_setup(
    settings: &Settings,
    store: &Store,
    host: &PluginHost,
    plugins_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let demo_config: &[(&str, &[(&str, &str)])] = &[
        (
            "sms-twilio",
            &[
                ("account_sid", "ACdemo0000000000000000000000000000"),
                ("auth_token", "demo-auth-token"),
                ("from_number", "+15005550006"),
            ],
        ),
        (
            "telegram-bot",
            &[
                ("bot_token", "demo-bot-token"),
                ("webhook_secret", "demo-webhook-secret"),
            ],
        ),
        ("routing-default", &[]),
    ];
    for (id, config) in demo_config {
        let dir = plugins_dir.join(id);
        if !dir.exists() {
            eprintln!(
                "demo: {} not built (run plugins/build.sh); skipping",
                dir.display()
            );
            continue;
        }
        if store.plugin(id).await.is_ok() {
            continue;
        }
        admin::install(
            store,
            host,
            &plugin_files(settings, store),
            admin::InstallRequest {
                source: dir,
                config: config
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                allow_hosts: Vec::new(),
                id: None,
            },
        )
        .await?;
        println!("demo: installed plugin {id}");
    }
    if store.list_agents().await?.is_empty() {
        let password = random_password();
        create_user(
            store,
            "admin@switchboard.local",
            &password,
            Role::Admin,
            Some("Admin".into()),
            Vec::new(),
        )
        .await?;
        println!("demo: admin account  email: admin@switchboard.local  password: {password}");
    }
    if settings.voice.enabled && store.trunks().await?.is_empty() {
        // Calls from this machine count as the trunk, so a local softphone or sipp
        // can ring the demo: `sipp -sn uac -s +15550001000 127.0.0.1:5060 -m 1`.
        store
            .upsert_trunk("local", "127.0.0.1:5080", None, None)
            .await?;
        println!("demo: SIP trunk 'local' (127.0.0.1): calls from this machine are accepted");
    }
    Ok(())
}

/// The event bus: in this process, or across the nodes through NATS JetStream when
/// `[cluster] nats_url` is set. An unreachable NATS does not stop the node: it is
/// said, and the bus connects when NATS answers.
async fn event_bus(settings: &Settings) -> std::sync::Arc<dyn switchboard_app::EventBus> {
    let Some(config) = settings.cluster.bus() else {
        return std::sync::Arc::new(switchboard_app::LocalBus::default());
    };
    let (url, stream) = (config.url.clone(), config.stream.clone());
    let bus = switchboard_app::NatsBus::start(config);
    if bus.ready(std::time::Duration::from_secs(10)).await {
        println!("event bus: NATS JetStream stream {stream} at {url}");
    } else {
        tracing::error!(
            "event bus: NATS at {url} (stream {stream}) does not answer yet; this node \
             serves, and sees other nodes' events once it does"
        );
    }
    std::sync::Arc::new(bus)
}

async fn serve(settings: Settings, demo: bool, plugins_dir: PathBuf) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let host = plugin_host(&settings, &store)?;
    if demo {
        demo_setup(&settings, &store, &host, &plugins_dir).await?;
    }
    let listener = tokio::net::TcpListener::bind(&settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    let addr = listener.local_addr()?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();
    let failed =
        admin::load_installed_from(&store, &host, &public_url, &plugin_files(&settings, &store))
            .await?;
    for (id, why) in failed {
        eprintln!("plugin {id} not loaded: {why}");
    }
    let app = App::start_with_bus(
        store.clone(),
        host,
        AppConfig {
            public_url: public_url.clone(),
            data_dir: settings.data_dir.clone(),
            reopen_window_ms: (settings.reopen_window_secs * 1000) as i64,
            default_region: settings.default_region.clone(),
            dispositions: settings.dispositions.clone(),
            outbox: settings.outbox(),
            routing: Some(settings.routing()),
            login: settings.login(),
            webchat: settings.webchat(),
            attachments: settings.attachments(),
            crm: settings.crm(),
            file_store: settings.cluster.file_store,
            node: settings.node(addr.port()),
        },
        event_bus(&settings).await,
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting routing: {e}"))?
    .with_reports(settings.reports());
    let voice = if settings.voice.enabled {
        Some(
            switchboard_voice::VoiceService::start(app.clone(), settings.voice.config()?)
                .await
                .context("starting voice (SWITCHBOARD_VOICE=off runs without it)")?,
        )
    } else {
        None
    };
    let state = AppState::new(app, voice)
        .with_socket_limits(settings.sockets())
        .with_body_limits(settings.bodies())
        .with_connection_limits(settings.connections())
        .with_webhook_limits(&settings.webhooks());
    if let Some(voice) = &state.voice {
        println!(
            "voice: SIP on {} (UDP and TCP), WebRTC on {}",
            voice.sip_addr(),
            voice.webrtc_addr()
        );
    }
    println!(
        "switchboard listening on http://{addr} (public URL {public_url}, database {})",
        store.backend().as_str()
    );
    if demo {
        println!(
            "demo: chat as a customer at http://{addr}/demo, answer as an agent at http://{addr}/"
        );
    }
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    };
    switchboard_api::serve(listener, state, shutdown).await?;
    store.close().await;
    Ok(())
}
