//! The server's metrics, encoded in Prometheus text format for `/metrics`.
//!
//! Counters and histograms live in a prometheus-client registry; gauges that
//! the database already knows (open conversations, outbox depth) are read at
//! scrape time so they are right after a restart.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    plugin: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    outcome: String,
}

/// The server's metrics.
pub struct Metrics {
    logins: Family<LoginLabels, Counter>,
    registry: Mutex<Registry>,
    webhooks: Family<WebhookLabels, Counter>,
    webhook_seconds: Histogram,
    ingest_seconds: Histogram,
    outbox: Family<OutboxLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhooks",
            "Provider webhooks by plugin and outcome",
            webhooks.clone(),
        );
        let webhook_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "webhook_duration_seconds",
            "Webhook handling time, plugin call and commit included",
            webhook_seconds.clone(),
        );
        let ingest_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "ingest_commit_seconds",
            "Time from handing a batch to the store until it is committed",
            ingest_seconds.clone(),
        );
        let outbox = Family::<OutboxLabels, Counter>::default();
        registry.register(
            "outbox_sends",
            "Outbox delivery attempts by result",
            outbox.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Login attempts by outcome: ok, failed (wrong e-mail or password), throttled",
            logins.clone(),
        );
        Metrics {
            logins,
            registry: Mutex::new(registry),
            webhooks,
            webhook_seconds,
            ingest_seconds,
            outbox,
        }
    }
}

impl Metrics {
    pub(crate) fn webhook(&self, plugin: &str, outcome: &str, took: Duration) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                plugin: plugin.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.webhook_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn ingest(&self, took: Duration) {
        self.ingest_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub(crate) fn outbox(&self, result: &str) {
        self.outbox
            .get_or_create(&OutboxLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// The registry in text format, without the final `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics lock");
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            return String::new();
        }
        out.trim_end().trim_end_matches("# EOF").to_string()
    }
}

/// Database-derived gauges in Prometheus text format.
pub fn encode_counts(out: &mut String, counts: &switchboard_store::MetricsCounts) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP switchboard_contacts Contacts in the database.");
    let _ = writeln!(out, "# TYPE switchboard_contacts gauge");
    let _ = writeln!(out, "switchboard_contacts {}", counts.contacts);
    let _ = writeln!(
        out,
        "# HELP switchboard_conversations Conversations by status."
    );
    let _ = writeln!(out, "# TYPE switchboard_conversations gauge");
    for (status, n) in &counts.conversations {
        let _ = writeln!(
            out,
            "switchboard_conversations{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP switchboard_timeline_events Timeline events stored."
    );
    let _ = writeln!(out, "# TYPE switchboard_timeline_events gauge");
    let _ = writeln!(
        out,
        "switchboard_timeline_events {}",
        counts.timeline_events
    );
    let _ = writeln!(out, "# HELP switchboard_outbox Outbox rows by status.");
    let _ = writeln!(out, "# TYPE switchboard_outbox gauge");
    for (status, n) in &counts.outbox {
        let _ = writeln!(
            out,
            "switchboard_outbox{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
}
