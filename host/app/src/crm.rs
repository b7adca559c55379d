//! CRM integrations: screen pop and enrichment, and the durable write-back.
//!
//! **Enrichment.** Before a new task is classified (every new conversation, every
//! call), routing asks [`Crm::enrich_within`] for the contact: each enabled CRM plugin
//! is asked for the person by every identity we hold, in the order CRMs search best
//! (e-mail, then phone numbers, then the rest), until one answers with a record. Each
//! lookup has its own deadline; answers (including "unknown") are cached per plugin
//! and identity for a TTL. Routing waits at most a short budget: a slow CRM never
//! holds a task longer than that, and its answer is merged into the contact when it
//! comes (the next task reads it). Routing runs beside the answer to the webhook that
//! brought the message, never before it; the lookups themselves (a fresh Wasm
//! instance each) run on a thread at a lower OS priority (`crate::background`) so
//! their CPU time never delays that answer, and a contact whose every CRM answer is
//! cached and already recorded is settled inline, with no task and no write. The answer is stored per CRM (`contact_crm`: record id,
//! link, name, key fields, the CRM's other identities, which agents are offered but
//! which are never linked on the CRM's word), the CRM's name fills an empty display
//! name, and its attributes are merged into the contact's, where routing policies
//! read them (`vip`).
//!
//! **Write-back.** Activity rows are queued by the store in the transaction of what
//! they describe (see `switchboard_store::CrmActivityRow`). This worker claims due rows
//! with a lease, builds the timeline entry from the database, and calls the plugin's
//! `record-activity` with the row's id as the idempotency key: done; `transient` and
//! `rate-limited` answers and failed calls are retried with exponential backoff;
//! other answers, and the last attempt, make a dead letter, which an admin can
//! re-queue. A provider outage is a plugin *answer* and never counts towards the
//! plugin's quarantine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use switchboard_core::{Direction, EventKind, handoff, retry_delay};
use switchboard_plugin_host::{CallError, PluginError, PluginHost, PluginKind, bindings};
use switchboard_store::{
    ContactView, CrmActivityKind, CrmActivityRow, CrmActivityStatus, CrmLink, CrmSubscription,
    Store, TimelineEvent,
};
use tokio::sync::{Notify, watch};

use crate::background::Background;
use crate::clock::Clock;
use crate::error::{AppError, AppResult, ErrorKind, call_error, plugin_error_text, plugin_reason};
use crate::events::{Audience, EventBus};

/// CRM tuning.
#[derive(Debug, Clone)]
pub struct CrmConfig {
    /// The longest one lookup may take.
    pub lookup_timeout: Duration,
    /// How long an answer (or "unknown") is reused.
    pub cache_ttl: Duration,
    /// The longest routing waits for enrichment before it classifies a task.
    pub routing_budget: Duration,
    /// Delay before the first write-back retry; doubles each attempt.
    pub retry_base: Duration,
    /// Longest delay between write-back attempts.
    pub retry_max: Duration,
    /// Attempts before a write-back becomes a dead letter.
    pub max_attempts: u32,
    /// How long a claimed write-back row is reserved for one worker.
    pub lease: Duration,
    /// Idle polling interval of the worker.
    pub poll: Duration,
    /// How long an answered call's write-back waits for its disposition (wrap-up);
    /// resolving sends it at once.
    pub disposition_wait: Duration,
}

impl Default for CrmConfig {
    fn default() -> Self {
        CrmConfig {
            lookup_timeout: Duration::from_secs(3),
            cache_ttl: Duration::from_secs(600),
            routing_budget: Duration::from_millis(400),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            max_attempts: 10,
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(500),
            disposition_wait: Duration::from_secs(180),
        }
    }
}

/// Most lookups kept in the cache; past it, expired answers go, then all of them.
const CACHE_CAP: usize = 20_000;

/// Key of a cached lookup: plugin, identity kind, identity value.
type CacheKey = (String, String, String);

/// A cached answer: the profile, or `None` for "the CRM does not know them", and the
/// contacts it is already recorded on (a hit for one of them writes nothing).
#[derive(Clone)]
struct Cached {
    at: Instant,
    answer: Option<bindings::CrmProfile>,
    recorded_on: Vec<String>,
}

/// What looking a contact up in one CRM gave.
enum Looked {
    /// A record.
    Found(Found),
    /// No record for any identity.
    Unknown,
    /// An identity's answer is not cached and the CRM was not asked.
    Unasked,
}

/// What a CRM said about a contact, and whether it is already recorded on them.
struct Found {
    profile: bindings::CrmProfile,
    key: CacheKey,
    recorded: bool,
}

/// The CRM use cases and the write-back worker.
pub struct Crm {
    store: Store,
    plugins: PluginHost,
    events: Arc<dyn EventBus>,
    clock: Clock,
    config: CrmConfig,
    public_url: String,
    /// (plugin, identity kind, identity value) → answer.
    cache: Mutex<HashMap<CacheKey, Cached>>,
    wake: Notify,
    /// Where lookups run (`None` when the thread could not start: then inline).
    lookups: Option<Background>,
}

/// What the CRM service is built from.
pub struct CrmParts {
    /// The database.
    pub store: Store,
    /// The plugin sandbox.
    pub plugins: PluginHost,
    /// Where contact changes are published.
    pub events: Arc<dyn EventBus>,
    /// Stamps.
    pub clock: Clock,
    /// The public URL (recording links).
    pub public_url: String,
}

impl Crm {
    /// The CRM service; call [`Crm::run`] to deliver write-backs.
    pub fn new(parts: CrmParts, config: CrmConfig) -> Crm {
        Crm {
            store: parts.store,
            plugins: parts.plugins,
            events: parts.events,
            clock: parts.clock,
            config,
            public_url: parts.public_url,
            cache: Mutex::default(),
            wake: Notify::new(),
            lookups: Background::start("crm-lookups")
                .inspect_err(|e| {
                    tracing::warn!("CRM lookups run beside requests (no background thread): {e}");
                })
                .ok(),
        }
    }

    /// The enabled CRM plugins that can be called now.
    fn crm_plugins(&self) -> Vec<String> {
        self.plugins
            .list()
            .into_iter()
            .filter(|p| p.kind == PluginKind::Crm && p.enabled && p.quarantined.is_none())
            .map(|p| p.id)
            .collect()
    }

    /// Enriches `contact` (as routing just read it), waiting at most the routing
    /// budget; the lookups go on in the background when the budget runs out, and
    /// their answer is merged then. Returns whether the contact changed within the
    /// budget (then routing reads it again). When every CRM's answer is cached and
    /// already recorded on the contact, nothing is spawned and nothing is written.
    pub async fn enrich_within(self: &Arc<Self>, contact: &ContactView) -> bool {
        let plugins = self.crm_plugins();
        if plugins.is_empty() {
            return false;
        }
        let mut settled = true;
        for plugin in &plugins {
            match self.find(plugin, contact, false).await {
                Looked::Found(hit) if hit.recorded => {}
                Looked::Unknown => {}
                Looked::Found(_) | Looked::Unasked => {
                    settled = false;
                    break;
                }
            }
        }
        if settled {
            return false;
        }
        let me = self.clone();
        let copy = contact.clone();
        let job = tokio::spawn(async move { me.enrich_contact(&copy).await.1 });
        match tokio::time::timeout(self.config.routing_budget, job).await {
            Ok(saved) => saved.unwrap_or(false),
            Err(_) => {
                tracing::info!(
                    contact = %contact.id,
                    budget_ms = self.config.routing_budget.as_millis() as u64,
                    "CRM enrichment still running; routing with what is known"
                );
                false
            }
        }
    }

    /// Asks every enabled CRM about `contact_id` and records what they answer.
    /// Returns the CRMs that found the person.
    pub async fn enrich(&self, contact_id: &str) -> Vec<String> {
        match self.store.contact(contact_id).await {
            Ok(contact) => self.enrich_contact(&contact).await.0,
            Err(e) => {
                tracing::warn!(contact = contact_id, "CRM enrichment: {e}");
                Vec::new()
            }
        }
    }

    /// Asks every enabled CRM about `contact`: the CRMs that found the person, and
    /// whether anything new was recorded on the contact.
    async fn enrich_contact(&self, contact: &ContactView) -> (Vec<String>, bool) {
        let lookups = self.crm_plugins().into_iter().map(|plugin| async move {
            let looked = self.find(&plugin, contact, true).await;
            (plugin, looked)
        });
        let mut found = Vec::new();
        let mut saved = false;
        for (plugin, looked) in futures::future::join_all(lookups).await {
            let Looked::Found(hit) = looked else { continue };
            if hit.recorded {
                found.push(plugin);
                continue;
            }
            match self.save(contact, &plugin, hit.profile).await {
                Ok(()) => {
                    self.recorded(&hit.key, &contact.id);
                    found.push(plugin);
                    saved = true;
                }
                Err(e) => {
                    tracing::warn!(contact = %contact.id, plugin, "CRM answer not saved: {e}");
                }
            }
        }
        (found, saved)
    }

    /// The first record `plugin` finds for any of the contact's identities, asking
    /// the CRM about those not in the cache when `ask` (else `Unasked` at the first
    /// of them).
    async fn find(&self, plugin: &str, contact: &ContactView, ask: bool) -> Looked {
        let mut identities: Vec<_> = contact.identities.iter().collect();
        identities.sort_by_key(|i| search_rank(&i.kind));
        for identity in identities {
            let key = (
                plugin.to_string(),
                identity.kind.clone(),
                identity.value.clone(),
            );
            if let Some(hit) = self.cached(&key) {
                match hit.answer {
                    Some(profile) => {
                        let recorded = hit.recorded_on.contains(&contact.id);
                        return Looked::Found(Found {
                            profile,
                            key,
                            recorded,
                        });
                    }
                    None => continue,
                }
            }
            if !ask {
                return Looked::Unasked;
            }
            let asked = bindings::Identity {
                kind: identity.kind.clone(),
                value: identity.value.clone(),
            };
            let answer = match self.lookup(plugin, asked).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => {
                    tracing::warn!(
                        plugin,
                        kind = %identity.kind,
                        "CRM lookup refused: {}",
                        plugin_error_text(&e)
                    );
                    continue;
                }
                Err(e) => {
                    tracing::warn!(plugin, kind = %identity.kind, "CRM lookup failed: {e}");
                    continue;
                }
            };
            self.remember(key.clone(), answer.clone());
            if let Some(profile) = answer {
                return Looked::Found(Found {
                    profile,
                    key,
                    recorded: false,
                });
            }
        }
        Looked::Unknown
    }

    /// One `lookup-contact` call, on the low-priority lookup thread.
    async fn lookup(
        &self,
        plugin: &str,
        identity: bindings::Identity,
    ) -> Result<Result<Option<bindings::CrmProfile>, PluginError>, String> {
        let plugins = self.plugins.clone();
        let id = plugin.to_string();
        let timeout = self.config.lookup_timeout;
        let call = async move { plugins.crm_lookup(&id, &identity, timeout).await };
        match &self.lookups {
            Some(background) => match background.spawn(call).await {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(e) => Err(format!("the lookup thread dropped the call: {e}")),
            },
            None => call.await.map_err(|e| e.to_string()),
        }
    }

    /// The cached answer for `key`, if it is fresh.
    fn cached(&self, key: &CacheKey) -> Option<Cached> {
        let cache = self.cache.lock().expect("crm cache");
        cache
            .get(key)
            .filter(|c| c.at.elapsed() < self.config.cache_ttl)
            .cloned()
    }

    /// Keeps an answer, making room when the cache is full.
    fn remember(&self, key: CacheKey, answer: Option<bindings::CrmProfile>) {
        let mut cache = self.cache.lock().expect("crm cache");
        if cache.len() >= CACHE_CAP {
            let ttl = self.config.cache_ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                at: Instant::now(),
                answer,
                recorded_on: Vec::new(),
            },
        );
    }

    /// Drops the cached answers about `contact`'s identities.
    fn forget(&self, contact: &ContactView) {
        self.cache
            .lock()
            .expect("crm cache")
            .retain(|(_, kind, value), _| {
                !contact
                    .identities
                    .iter()
                    .any(|i| &i.kind == kind && &i.value == value)
            });
    }

    /// Notes that the cached answer under `key` is recorded on `contact_id`.
    fn recorded(&self, key: &CacheKey, contact_id: &str) {
        if let Some(c) = self.cache.lock().expect("crm cache").get_mut(key)
            && !c.recorded_on.iter().any(|id| id == contact_id)
        {
            c.recorded_on.push(contact_id.to_string());
        }
    }

    async fn save(
        &self,
        contact: &ContactView,
        plugin: &str,
        profile: bindings::CrmProfile,
    ) -> AppResult<()> {
        let link = link_of(plugin, profile, self.clock.now_ms());
        let changed = self.store.save_crm_link(&contact.id, &link).await?;
        self.events.publish(
            "contact.updated",
            Audience::Everyone,
            json!({"contact_id": contact.id, "crm": plugin, "changed": changed}),
        );
        Ok(())
    }

    /// What each CRM said about `contact_id`: an object keyed by plugin id whose
    /// entries have `external_id`, `url`, `display_name`, `attributes`,
    /// `identities` (the CRM's identities this contact does not have yet, offered)
    /// and `fetched_at`.
    pub async fn links(&self, contact: &ContactView) -> AppResult<Value> {
        let mut out = Map::new();
        for link in self.store.crm_links(&contact.id).await? {
            let offered: Vec<Value> = link
                .identities
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| {
                    !contact.identities.iter().any(|mine| {
                        i["kind"] == mine.kind.as_str() && i["value"] == mine.value.as_str()
                    })
                })
                .cloned()
                .collect();
            out.insert(
                link.plugin_id.clone(),
                json!({
                    "external_id": link.external_id,
                    "url": link.url,
                    "display_name": link.display_name,
                    "attributes": link.attributes,
                    "identities": offered,
                    "fetched_at": link.fetched_at,
                }),
            );
        }
        Ok(Value::Object(out))
    }

    /// The CRM plugins an agent can use on a contact, given its [`Crm::links`]:
    /// `[{plugin_id, linked}]`.
    pub fn available(&self, links: &Value) -> Value {
        let all: Vec<Value> = self
            .crm_plugins()
            .into_iter()
            .map(|p| json!({"plugin_id": p, "linked": links.get(&p).is_some()}))
            .collect();
        json!(all)
    }

    /// Looks the contact up again in every CRM now, past the cache.
    pub async fn refresh(&self, contact_id: &str) -> AppResult<Value> {
        let contact = self.store.contact(contact_id).await?;
        self.forget(&contact);
        let found = self.enrich(contact_id).await;
        Ok(json!({"found": found}))
    }

    /// "Create in CRM": asks `plugin_id` to create the person and records the link.
    pub async fn create(&self, contact_id: &str, plugin_id: &str) -> AppResult<Value> {
        let contact = self.store.contact(contact_id).await?;
        if !self.crm_plugins().iter().any(|p| p == plugin_id) {
            return Err(AppError::not_found(format!(
                "no enabled CRM plugin {plugin_id:?}"
            )));
        }
        if self
            .store
            .crm_links(contact_id)
            .await?
            .iter()
            .any(|l| l.plugin_id == plugin_id)
        {
            return Err(AppError::new(
                ErrorKind::Conflict,
                "crm_linked",
                format!("the contact is already linked to a record in {plugin_id}"),
            ));
        }
        let summary = contact_summary(&contact);
        let profile = self
            .plugins
            .crm_create_contact(plugin_id, &summary)
            .await
            .map_err(call_error)?
            .map_err(|e| crm_refusal(plugin_id, &e))?;
        self.save(&contact, plugin_id, profile).await?;
        self.forget(&contact);
        Ok(self.links(&self.store.contact(contact_id).await?).await?[plugin_id].clone())
    }

    /// What each installed CRM receives.
    pub async fn subscriptions(&self) -> AppResult<Vec<CrmSubscription>> {
        Ok(self.store.crm_subscriptions().await?)
    }

    /// Sets what a CRM receives.
    pub async fn set_subscription(&self, s: &CrmSubscription) -> AppResult<()> {
        Ok(self.store.set_crm_subscription(s).await?)
    }

    /// Write-back rows, newest first (`status` filters).
    pub async fn activities(
        &self,
        status: Option<CrmActivityStatus>,
        limit: u32,
    ) -> AppResult<Vec<CrmActivityRow>> {
        Ok(self.store.list_crm_activities(status, limit).await?)
    }

    /// Re-queues a dead write-back row.
    pub async fn requeue(&self, id: &str) -> AppResult<CrmActivityRow> {
        let row = self
            .store
            .crm_activity_requeue(id, self.clock.now_ms())
            .await?;
        self.wake.notify_one();
        Ok(row)
    }

    /// Delivers due write-backs until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let worked = match self.store.crm_installed().await {
                Ok(true) => self.deliver_due().await,
                Ok(false) => 0,
                Err(e) => {
                    tracing::warn!("CRM write-back: {e}");
                    0
                }
            };
            if worked > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// One round of the worker: claims due rows and delivers them. Returns how many.
    pub async fn deliver_due(&self) -> usize {
        let now = self.clock.now_ms();
        let lease = self.config.lease.as_millis() as i64;
        let rows = match self.store.claim_crm_activities(now, 20, lease).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("CRM write-back: claim failed: {e}");
                return 0;
            }
        };
        let n = rows.len();
        for row in rows {
            self.deliver(row).await;
        }
        n
    }

    async fn deliver(&self, row: CrmActivityRow) {
        let event = self.store.event(&row.event_id).await;
        if let Some(at) = event
            .as_ref()
            .ok()
            .and_then(|e| self.hold_for_disposition(&row, e))
        {
            if let Err(e) = self
                .store
                .crm_activity_outcome(
                    &row.id,
                    CrmActivityStatus::Pending,
                    (row.attempts, at),
                    None,
                    row.lease_until,
                )
                .await
            {
                tracing::error!(activity = %row.id, "CRM write-back not rescheduled: {e}");
            }
            return;
        }
        let attempt = u32::try_from(row.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let entry = match event {
            Ok(event) => self.entry(&row, event).await,
            Err(e) => Err(e.into()),
        };
        let outcome = match entry {
            Ok(entry) => {
                let call = self
                    .plugins
                    .crm_record_activity(&row.plugin_id, &entry)
                    .await;
                match call {
                    Ok(Ok(())) => Outcome::Done,
                    Ok(Err(e)) => match e {
                        PluginError::Transient(_) | PluginError::RateLimited(_) => {
                            Outcome::Retry(plugin_error_text(&e))
                        }
                        other => Outcome::Dead(plugin_error_text(&other)),
                    },
                    // Switched off or quarantined: kept, untouched, until an admin
                    // enables the plugin again.
                    Err(e @ (CallError::Disabled(_) | CallError::Quarantined { .. })) => {
                        Outcome::Hold(e.to_string())
                    }
                    Err(CallError::NotFound(id)) => {
                        Outcome::Dead(format!("the CRM plugin {id} is not installed"))
                    }
                    Err(e) => Outcome::Retry(e.to_string()),
                }
            }
            Err(e) => Outcome::Dead(format!("cannot build the activity: {e}")),
        };
        let now = self.clock.now_ms();
        let (status, attempts, next, error) = match outcome {
            Outcome::Done => (CrmActivityStatus::Done, row.attempts, now, None),
            Outcome::Hold(e) => (
                CrmActivityStatus::Pending,
                row.attempts,
                now + self.config.retry_max.as_millis() as i64,
                Some(e),
            ),
            Outcome::Retry(e) if attempt < self.config.max_attempts => {
                let delay = retry_delay(attempt, self.config.retry_base, self.config.retry_max);
                (
                    CrmActivityStatus::Pending,
                    i64::from(attempt),
                    now + delay.as_millis() as i64,
                    Some(e),
                )
            }
            Outcome::Retry(e) | Outcome::Dead(e) => {
                (CrmActivityStatus::Dead, i64::from(attempt), now, Some(e))
            }
        };
        if status == CrmActivityStatus::Dead
            || (status == CrmActivityStatus::Pending && attempts > row.attempts)
        {
            tracing::warn!(
                activity = %row.id,
                attempt,
                status = status.as_str(),
                "CRM write-back failed: {}",
                error.as_deref().unwrap_or_default()
            );
        }
        if let Err(e) = self
            .store
            .crm_activity_outcome(
                &row.id,
                status,
                (attempts, next),
                error.as_deref(),
                row.lease_until,
            )
            .await
        {
            tracing::error!(activity = %row.id, "CRM write-back outcome not saved: {e}");
        }
    }

    /// When an answered call's write-back should be tried again because its
    /// disposition may still come (the agent is wrapping up): `None` to send now.
    fn hold_for_disposition(&self, row: &CrmActivityRow, event: &TimelineEvent) -> Option<i64> {
        if row.kind != CrmActivityKind::Call {
            return None;
        }
        let answered = event.data["outcome"] == "answered";
        let has_disposition = event.data["disposition"].is_string();
        let now = self.clock.now_ms();
        let until = row.created_at + self.config.disposition_wait.as_millis() as i64;
        (answered && !has_disposition && now < until).then(|| until.min(now + 10_000))
    }

    /// The timeline entry a write-back row stands for, built from the database now.
    async fn entry(
        &self,
        row: &CrmActivityRow,
        event: TimelineEvent,
    ) -> AppResult<bindings::TimelineEntry> {
        let contact = self.store.contact(&event.contact_id).await?;
        let mut summary = contact_summary(&contact);
        // The record this CRM already matched, so the plugin need not search again.
        if let Some(link) = self
            .store
            .crm_links(&contact.id)
            .await?
            .into_iter()
            .find(|l| l.plugin_id == row.plugin_id)
        {
            summary
                .attributes
                .push((format!("{}.external-id", row.plugin_id), link.external_id));
        }
        let mut entry = bindings::TimelineEntry {
            id: row.id.clone(),
            conversation_id: event.conversation_id.clone().unwrap_or_default(),
            contact: summary,
            channel: event.channel.clone().unwrap_or_else(|| "internal".into()),
            direction: match event.direction {
                Direction::In => bindings::CrmDirection::Inbound,
                Direction::Out => bindings::CrmDirection::Outbound,
                Direction::Internal => bindings::CrmDirection::Internal,
            },
            kind: event.kind.as_str().to_string(),
            body: event.body.clone(),
            author: event.author_agent_id.clone(),
            occurred_at_ms: event.occurred_at.max(0) as u64,
            disposition: None,
            duration_ms: None,
        };
        match row.kind {
            CrmActivityKind::Call => call_entry(&self.public_url, &event.data, &mut entry),
            CrmActivityKind::Summary => self.summary_entry(&event, &contact, &mut entry).await?,
            CrmActivityKind::Note | CrmActivityKind::Message => {}
        }
        Ok(entry)
    }

    /// A resolve: the disposition and the conversation's summary.
    async fn summary_entry(
        &self,
        event: &TimelineEvent,
        contact: &ContactView,
        entry: &mut bindings::TimelineEntry,
    ) -> AppResult<()> {
        entry.kind = "summary".into();
        entry.disposition = event.data["code"].as_str().map(str::to_string);
        let Some(conversation) = &event.conversation_id else {
            return Ok(());
        };
        let timeline = self.store.conversation_timeline(conversation).await?;
        let timeline: Vec<_> = timeline
            .into_iter()
            .filter(|e| e.occurred_at <= event.occurred_at)
            .collect();
        let draft = handoff::draft(
            &crate::text::utterances(&timeline),
            contact.display_name.as_deref(),
        );
        let mut body = format!("Resolved: {}", event.body);
        if !draft.reason.trim().is_empty() {
            body.push_str(&format!("\nReason: {}", draft.reason));
        }
        if !draft.summary.trim().is_empty() {
            body.push_str(&format!("\nSummary: {}", draft.summary));
        }
        let channels: Vec<&str> = {
            let mut c: Vec<&str> = timeline
                .iter()
                .filter(|e| e.kind == EventKind::Message || e.kind == EventKind::Call)
                .filter_map(|e| e.channel.as_deref())
                .collect();
            c.dedup();
            c
        };
        if !channels.is_empty() {
            body.push_str(&format!("\nChannels: {}", channels.join(" → ")));
        }
        entry.body = body;
        Ok(())
    }
}

/// A call's entry: direction, duration, outcome, recording link and disposition (an
/// abandoned, missed or failed call without one carries its outcome as disposition).
fn call_entry(public_url: &str, data: &Value, entry: &mut bindings::TimelineEntry) {
    entry.channel = "voice".into();
    match data["direction"].as_str() {
        Some("outbound") => entry.direction = bindings::CrmDirection::Outbound,
        Some("inbound") => entry.direction = bindings::CrmDirection::Inbound,
        _ => {}
    }
    entry.duration_ms = data["duration_ms"].as_u64();
    let outcome = data["outcome"].as_str();
    entry.disposition = data["disposition"]
        .as_str()
        .or(outcome.filter(|o| matches!(*o, "abandoned" | "missed" | "failed")))
        .map(str::to_string);
    if let Some(outcome) = outcome {
        entry.body.push_str(&format!("\nOutcome: {outcome}"));
    }
    if let Some(path) = data["recording_url"].as_str() {
        entry
            .body
            .push_str(&format!("\nRecording: {public_url}{path}"));
    }
}

enum Outcome {
    Done,
    /// The plugin cannot be called now (disabled, quarantined): try again later
    /// without spending an attempt.
    Hold(String),
    Retry(String),
    Dead(String),
}

/// CRMs search e-mail and phone numbers best; other handles last.
fn search_rank(kind: &str) -> u8 {
    match kind {
        "email" => 0,
        "phone" => 1,
        "whatsapp" => 2,
        _ => 3,
    }
}

/// The contact as plugins see it.
pub(crate) fn contact_summary(c: &ContactView) -> bindings::ContactSummary {
    bindings::ContactSummary {
        id: c.id.clone(),
        display_name: c.display_name.clone(),
        identities: c
            .identities
            .iter()
            .map(|i| bindings::Identity {
                kind: i.kind.clone(),
                value: i.value.clone(),
            })
            .collect(),
        attributes: flatten(&c.attributes),
    }
}

/// A JSON object's fields as text pairs (strings as they are, other values as JSON).
pub(crate) fn flatten(attributes: &Value) -> Vec<(String, String)> {
    attributes
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The stored form of a CRM's answer.
fn link_of(plugin: &str, profile: bindings::CrmProfile, now_ms: i64) -> CrmLink {
    let attributes: Map<String, Value> = profile
        .attributes
        .into_iter()
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let identities: Vec<Value> = profile
        .identities
        .into_iter()
        .map(|i| json!({"kind": i.kind, "value": i.value}))
        .collect();
    CrmLink {
        plugin_id: plugin.to_string(),
        external_id: profile.external_id,
        url: profile
            .url
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        display_name: profile.display_name,
        attributes: Value::Object(attributes),
        identities: Value::Array(identities),
        fetched_at: now_ms,
    }
}

/// A CRM's refusal of an agent's request, as the API answers it.
fn crm_refusal(plugin: &str, e: &PluginError) -> AppError {
    match e {
        PluginError::Unsupported(m) => AppError::new(
            ErrorKind::Unprocessable,
            "crm_unsupported",
            format!("{plugin} cannot do that: {m}"),
        ),
        PluginError::Transient(_) | PluginError::RateLimited(_) => AppError::new(
            ErrorKind::Unavailable,
            "crm_unavailable",
            format!(
                "{plugin} is not answering now; try again: {}",
                plugin_reason(e)
            ),
        ),
        other => AppError::new(
            ErrorKind::Unprocessable,
            "crm_refused",
            format!("{plugin} refused: {}", plugin_error_text(other)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &str) -> bindings::TimelineEntry {
        bindings::TimelineEntry {
            id: "crm-hubspot:e1".into(),
            conversation_id: "c1".into(),
            contact: bindings::ContactSummary {
                id: "k1".into(),
                display_name: None,
                identities: vec![],
                attributes: vec![],
            },
            channel: "voice".into(),
            direction: bindings::CrmDirection::Internal,
            kind: "call".into(),
            body: body.into(),
            author: None,
            occurred_at_ms: 0,
            disposition: None,
            duration_ms: None,
        }
    }

    #[test]
    fn an_answered_call_carries_duration_disposition_and_recording_link() {
        let mut e = entry("Call from +14155550100 · 1:35");
        let data = json!({
            "direction": "inbound", "outcome": "answered", "duration_ms": 95_000,
            "disposition": "resolved", "recording_url": "/api/v1/calls/c9/recording",
        });
        call_entry("https://cc.example", &data, &mut e);
        assert_eq!(e.direction, bindings::CrmDirection::Inbound);
        assert_eq!(e.duration_ms, Some(95_000));
        assert_eq!(e.disposition.as_deref(), Some("resolved"));
        assert_eq!(
            e.body,
            "Call from +14155550100 · 1:35\nOutcome: answered\n\
             Recording: https://cc.example/api/v1/calls/c9/recording"
        );
    }

    #[test]
    fn an_abandoned_call_says_so_in_its_disposition() {
        let mut e = entry("Call from +14155550100 · abandoned in queue");
        let data = json!({"direction": "inbound", "outcome": "abandoned", "duration_ms": 0});
        call_entry("https://cc.example", &data, &mut e);
        assert_eq!(e.disposition.as_deref(), Some("abandoned"));
        assert_eq!(e.duration_ms, Some(0));
        let mut out = entry("Call to +14155550100");
        call_entry(
            "https://cc.example",
            &json!({"direction": "outbound", "outcome": "missed"}),
            &mut out,
        );
        assert_eq!(out.direction, bindings::CrmDirection::Outbound);
        assert_eq!(out.disposition.as_deref(), Some("missed"));
        assert!(!out.body.contains("Recording"));
    }

    #[test]
    fn identities_are_asked_email_first_then_numbers() {
        let mut kinds = vec!["telegram", "phone", "whatsapp", "email"];
        kinds.sort_by_key(|k| search_rank(k));
        assert_eq!(kinds, ["email", "phone", "whatsapp", "telegram"]);
    }

    #[test]
    fn a_profile_keeps_only_web_links_and_named_attributes() {
        let link = link_of(
            "crm-zoho",
            bindings::CrmProfile {
                external_id: "42".into(),
                display_name: Some("Ada".into()),
                identities: vec![bindings::Identity {
                    kind: "email".into(),
                    value: "ada@example.com".into(),
                }],
                attributes: vec![("vip".into(), "true".into()), (" ".into(), "x".into())],
                url: Some("javascript:alert(1)".into()),
            },
            7,
        );
        assert_eq!(link.url, None);
        assert_eq!(link.attributes, json!({"vip": "true"}));
        assert_eq!(
            link.identities,
            json!([{"kind": "email", "value": "ada@example.com"}])
        );
        assert_eq!(link.fetched_at, 7);
    }
}
