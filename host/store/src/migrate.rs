//! Schema migrations: a small runner over numbered SQL files, one file per backend.
//!
//! Why not `sqlx::migrate!`: its migrations are one SQL text for every backend, and
//! ours differ where the engines do (`BLOB` vs `BYTEA`, more to come), and its macro
//! reads the files at compile time from one directory. Here each [`Migration`] carries
//! both texts; the runner applies the missing ones in order, each in its own
//! transaction, and records them in `schema_migrations`. On PostgreSQL an advisory lock
//! keeps two host nodes starting together from migrating twice.
//!
//! A released migration is never edited; add a new one.

use sqlx::{AnyPool, Executor};

use crate::db::{Backend, RowExt, begin_write, pg_xact_lock, wall_clock_ms};
use crate::error::{Result, StoreError};

/// One schema step, with its SQL for each backend.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "routing",
        // Plain TEXT/BIGINT and partial indexes: one text serves both engines.
        sqlite: include_str!("../migrations/common/0002_routing.sql"),
        postgres: include_str!("../migrations/common/0002_routing.sql"),
    },
    Migration {
        version: 3,
        name: "desk",
        sqlite: include_str!("../migrations/common/0003_desk.sql"),
        postgres: include_str!("../migrations/common/0003_desk.sql"),
    },
    Migration {
        version: 4,
        name: "voice",
        sqlite: include_str!("../migrations/common/0004_voice.sql"),
        postgres: include_str!("../migrations/common/0004_voice.sql"),
    },
    Migration {
        version: 5,
        name: "accounts",
        sqlite: include_str!("../migrations/common/0005_accounts.sql"),
        postgres: include_str!("../migrations/common/0005_accounts.sql"),
    },
    Migration {
        version: 6,
        name: "messaging",
        sqlite: include_str!("../migrations/common/0006_messaging.sql"),
        postgres: include_str!("../migrations/common/0006_messaging.sql"),
    },
    Migration {
        version: 7,
        name: "agent_signature",
        sqlite: include_str!("../migrations/common/0007_agent_signature.sql"),
        postgres: include_str!("../migrations/common/0007_agent_signature.sql"),
    },
    Migration {
        version: 8,
        name: "email",
        sqlite: include_str!("../migrations/common/0008_email.sql"),
        postgres: include_str!("../migrations/common/0008_email.sql"),
    },
    Migration {
        version: 9,
        name: "reports",
        sqlite: include_str!("../migrations/common/0009_reports.sql"),
        postgres: include_str!("../migrations/common/0009_reports.sql"),
    },
    Migration {
        version: 10,
        name: "surveys",
        sqlite: include_str!("../migrations/common/0010_surveys.sql"),
        postgres: include_str!("../migrations/common/0010_surveys.sql"),
    },
    Migration {
        version: 11,
        name: "report_rollups",
        sqlite: include_str!("../migrations/common/0011_report_rollups.sql"),
        postgres: include_str!("../migrations/common/0011_report_rollups.sql"),
    },
    Migration {
        version: 12,
        name: "voice_survey",
        sqlite: include_str!("../migrations/common/0012_voice_survey.sql"),
        postgres: include_str!("../migrations/common/0012_voice_survey.sql"),
    },
    Migration {
        version: 13,
        name: "crm",
        sqlite: include_str!("../migrations/common/0013_crm.sql"),
        postgres: include_str!("../migrations/common/0013_crm.sql"),
    },
    Migration {
        version: 14,
        name: "agent_rollup",
        sqlite: include_str!("../migrations/common/0014_agent_rollup.sql"),
        postgres: include_str!("../migrations/common/0014_agent_rollup.sql"),
    },
    Migration {
        version: 15,
        name: "routing_leader",
        sqlite: include_str!("../migrations/common/0015_routing_leader.sql"),
        postgres: include_str!("../migrations/common/0015_routing_leader.sql"),
    },
    Migration {
        version: 16,
        name: "files",
        // BLOB vs BYTEA: one file per backend.
        sqlite: include_str!("../migrations/sqlite/0016_files.sql"),
        postgres: include_str!("../migrations/postgres/0016_files.sql"),
    },
];

/// Brings the schema up to date. Returns the versions it applied.
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<Vec<i64>> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    BIGINT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .await?;
    let supported = MIGRATIONS.last().map_or(0, |m| m.version);
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = begin_write(pool, backend).await?;
        pg_xact_lock(&mut tx, backend, "switchboard-migrations").await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM schema_migrations",
        )
        .fetch_one(&mut *tx)
        .await?;
        let current = row.int("v")?;
        if current > supported {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported,
            });
        }
        if current >= m.version {
            continue;
        }
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let step = async {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(wall_clock_ms())
            .execute(&mut *tx)
            .await
        };
        step.await.map_err(|source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        })?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, %backend, "applied schema migration");
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_differ_only_in_types() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            let normalize = |s: &str| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .replace("BYTEA", "BLOB")
            };
            assert_eq!(
                normalize(m.sqlite),
                normalize(m.postgres),
                "migration {}",
                m.version
            );
        }
    }
}
