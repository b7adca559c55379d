//! What the tests of several nodes share: one fresh PostgreSQL database, one NATS
//! JetStream stream of the test's own (so parallel tests never meet), the secret key
//! every node of a cluster must share, and each node's options.

use crate::{Options, PgDatabase};

/// Every node of a cluster shares the key that seals plugin secrets.
pub const CLUSTER_SECRET_KEY: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The test NATS server (`SWITCHBOARD_TEST_NATS_URL`, default 127.0.0.1:4222).
pub fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

/// A cluster's shared parts.
pub struct Cluster {
    /// The database every node uses.
    pub db: PgDatabase,
    /// The cluster's stream (and the first token of its relay subjects).
    pub stream: String,
}

impl Cluster {
    /// A fresh database and a stream name no other test uses.
    pub async fn new(kind: &str) -> Cluster {
        Cluster {
            db: PgDatabase::create().await,
            stream: format!("sb{kind}-{}", hex::encode(rand::random::<[u8; 6]>())),
        }
    }

    /// The options every node shares, with `extra` environment (each node's name is
    /// then its host name and bound HTTP port).
    pub fn options(&self, extra: &[(&str, &str)]) -> Options {
        let mut env: Vec<(String, String)> = [
            ("SWITCHBOARD_NATS_URL", nats_url().as_str()),
            ("SWITCHBOARD_NATS_STREAM", self.stream.as_str()),
            ("SWITCHBOARD_SECRET_KEY", CLUSTER_SECRET_KEY),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Options {
            database_url: Some(self.db.url.clone()),
            env,
        }
    }

    /// The options of node `id` (`SWITCHBOARD_NODE_ID`), with `extra` environment.
    pub fn node(&self, id: &str, extra: &[(&str, &str)]) -> Options {
        let mut options = self.options(extra);
        options
            .env
            .push(("SWITCHBOARD_NODE_ID".into(), id.to_string()));
        options
    }

    /// Deletes the stream (after the nodes stopped, or they would make it again).
    pub async fn delete_stream(&self) {
        delete_stream(&self.stream).await;
    }
}

/// Deletes the JetStream stream `stream` on the test NATS server, if it is there.
pub async fn delete_stream(stream: &str) {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    }
}
