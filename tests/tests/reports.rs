//! The reports API end to end, on SQLite and PostgreSQL: an SMS is answered and
//! resolved through the API, then the reports show it as JSON and CSV (by `Accept`
//! and by the `.csv` route), the drill-down lists it, the export streams it, agents are
//! refused, and `switchboard reports rebuild` leaves the numbers as they were. Exact
//! figures on known journeys are in `host/app/tests/reports.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::*;

async fn get_text(
    server: &Server,
    token: &str,
    path: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    let mut req = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, r.text().await.unwrap())
}

async fn reports_over_http(options: Options) {
    let twilio = FakeTwilio::start().await;
    let data = provision(&options, &twilio).await;
    cli(
        data.path(),
        &options,
        &[
            "admin",
            "create-user",
            "--email",
            "ann@e2e.test",
            "--password",
            "ann-password-123",
            "--role",
            "agent",
        ],
    )
    .await;
    let server = Server::start_in(Arc::new(data), options.clone()).await;
    let admin = server.token.clone();
    let (status, v) = server
        .call(
            &admin,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    server
        .sms("SMreport01", "+15554440077", "Where is my parcel?")
        .await;
    let offer = server
        .eventually(Duration::from_secs(10), || async {
            let (_, v) = server
                .call(&admin, "GET", "/api/v1/agents/me/offers", json!(null))
                .await;
            v["offers"].as_array()?.first().cloned()
        })
        .await
        .expect("an offer");
    let reservation = offer["reservation"]["id"].as_str().unwrap().to_string();
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    let (status, v) = server
        .call(
            &admin,
            "POST",
            &format!("/api/v1/reservations/{reservation}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = server
        .call(
            &admin,
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    let range = switchboard_e2e::report_range_around_today();
    let path = format!("/api/v1/reports/operations?{range}&group_by=total&by=channel");
    let (status, ops) = server.call(&admin, "GET", &path, json!(null)).await;
    assert_eq!(status, 200, "{ops}");
    assert_eq!(ops["report"], "operations");
    assert_eq!(ops["zone"], "UTC");
    let sms = ops["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["channel"] == "sms")
        .unwrap_or_else(|| panic!("{ops}"))
        .clone();
    assert_eq!(sms["arrived"], 1);
    assert_eq!(sms["handled"], 1);
    assert_eq!(sms["abandoned"], 0);

    // CSV by Accept and by route: the same table.
    let (status, kind, by_accept) = get_text(&server, &admin, &path, Some("text/csv")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let csv_path = path.replacen("/operations?", "/operations.csv?", 1);
    let (status, _, by_route) = get_text(&server, &admin, &csv_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(by_accept, by_route);
    let lines: Vec<&str> = by_route.lines().collect();
    assert!(lines[0].starts_with("period,from,to,channel,arrived,handled"));
    assert!(
        lines.iter().any(|l| l.contains(",sms,1,1,0,")),
        "{by_route}"
    );

    // The number drills down to the conversation.
    let (status, drill) = server
        .call(
            &admin,
            "GET",
            &format!("/api/v1/reports/drill?metric=handled&{range}&by=channel&key=sms"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{drill}");
    assert_eq!(drill["count"], 1);
    assert_eq!(drill["conversations"][0]["conversation_id"], conversation);

    // The export streams one row per conversation.
    let export = format!("/api/v1/reports/conversations.csv?{range}");
    let (status, kind, text) = get_text(&server, &admin, &export, None).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"));
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].starts_with("conversation_id,"));
    assert!(rows[1].starts_with(&conversation), "{text}");
    assert!(rows[1].contains(",sms,"), "{text}");

    // Agents may not read reports; bad requests are 400.
    let (ann, _) = server.login("ann@e2e.test", "ann-password-123").await;
    let (status, v) = server.call(&ann, "GET", &path, json!(null)).await;
    assert_eq!(status, 403, "{v}");
    let (status, _, _) = get_text(&server, &ann, &export, None).await;
    assert_eq!(status, 403);
    let (status, v) = server
        .call(
            &admin,
            "GET",
            "/api/v1/reports/journeys?from=2025-13-01&to=2025-12-31",
            json!(null),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = server
        .call(&admin, "GET", "/api/v1/reports/journeys", json!(null))
        .await;
    assert_eq!(status, 400);
    let (status, v) = server
        .call(
            &admin,
            "GET",
            &format!("/api/v1/reports/queues?{range}"),
            json!(null),
        )
        .await;
    assert_eq!(status, 404, "an unknown report: {v}");
    let (status, v) = server
        .call(
            &admin,
            "GET",
            &format!("/api/v1/reports/drill?metric=nonsense&{range}"),
            json!(null),
        )
        .await;
    assert_eq!(status, 400, "{v}");

    // A rebuild from history gives the same numbers.
    let journeys = format!("/api/v1/reports/journeys?{range}&group_by=total");
    let (_, before_j) = server.call(&admin, "GET", &journeys, json!(null)).await;
    let (_, before_o) = server.call(&admin, "GET", &path, json!(null)).await;
    let out = cli(server.data.path(), &options, &["reports", "rebuild"]).await;
    assert!(out.contains("rebuilt the report facts"), "{out}");
    let (_, after_j) = server.call(&admin, "GET", &journeys, json!(null)).await;
    let (_, after_o) = server.call(&admin, "GET", &path, json!(null)).await;
    let strip = |mut v: Value| {
        v["at"] = Value::Null;
        v
    };
    assert_eq!(strip(before_o), strip(after_o));
    assert_eq!(before_j["rows"][0]["journeys"], 1);
    assert_eq!(before_j["rows"][0]["resolved"], 1);
    assert_eq!(before_j["rows"][0]["fcr_pending"], 1);
    assert_eq!(strip(before_j), strip(after_j));
}

#[tokio::test]
async fn reports_over_http_on_sqlite() {
    reports_over_http(Options::default()).await;
}

#[tokio::test]
async fn reports_over_http_on_postgres() {
    let db = PgDatabase::create().await;
    reports_over_http(Options {
        database_url: Some(db.url.clone()),
        ..Options::default()
    })
    .await;
}
