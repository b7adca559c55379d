//! Copies the tables the reports read from the SQLite database the history was
//! generated and rebuilt in to a PostgreSQL database with the same schema, in bulk, so
//! both engines answer over the same rows (the facts the product's rebuild derived).

use anyhow::Context;
use futures::StreamExt;
use sqlx::{AnyConnection, Connection, Row};

/// The tables the reports, drill-downs and the export read, parents first.
pub const TABLES: &[&str] = &[
    "contact",
    "agent",
    "conversation",
    "task_fact",
    "task_leg",
    "agent_state",
    "agent_segment",
    "conversation_fact",
    "journey_arrival",
    "task_rollup",
    "journey_rollup",
    "agent_rollup",
];

const ROWS_PER_INSERT: usize = 500;

/// Copies [`TABLES`] from `sqlite` to `postgres`; the row count copied.
pub async fn copy_tables(sqlite: &str, postgres: &str) -> anyhow::Result<u64> {
    let mut from = AnyConnection::connect(sqlite).await?;
    let mut to = AnyConnection::connect(postgres).await?;
    let mut total = 0;
    for table in TABLES {
        let columns: Vec<(String, bool)> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(&mut from)
        .await?
        .iter()
        .map(|r| {
            let ty: String = r.get("type");
            (
                r.get::<String, _>("name"),
                ty.eq_ignore_ascii_case("BIGINT"),
            )
        })
        .collect();
        let names: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
        let head = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
        sqlx::raw_sql("BEGIN").execute(&mut to).await?;
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut from);
        let mut batch: Vec<String> = Vec::with_capacity(ROWS_PER_INSERT);
        while let Some(row) = rows.next().await {
            let row = row?;
            let mut values = Vec::with_capacity(columns.len());
            for (i, (_, int)) in columns.iter().enumerate() {
                values.push(if *int {
                    row.try_get::<Option<i64>, _>(i)?
                        .map_or_else(|| "NULL".into(), |v| v.to_string())
                } else {
                    row.try_get::<Option<String>, _>(i)?
                        .map_or_else(|| "NULL".into(), |v| format!("'{}'", v.replace('\'', "''")))
                });
            }
            batch.push(format!("({})", values.join(", ")));
            total += 1;
            if batch.len() == ROWS_PER_INSERT {
                let sql = format!("{head}{}", batch.join(","));
                batch.clear();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut to)
                    .await
                    .with_context(|| format!("copying {table}"))?;
            }
        }
        drop(rows);
        if !batch.is_empty() {
            let sql = format!("{head}{}", batch.join(","));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut to)
                .await
                .with_context(|| format!("copying {table}"))?;
        }
        sqlx::raw_sql("COMMIT").execute(&mut to).await?;
    }
    // What autovacuum would do on a live database: statistics and the visibility map
    // (index-only scans).
    for table in TABLES {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&mut to)
            .await?;
    }
    from.close().await?;
    to.close().await?;
    Ok(total)
}
