//! `/survey/{token}`: the small public page an e-mailed survey link opens. No login:
//! the signed, expiring token in the address is the key (`Surveys::page`). The page is
//! plain HTML with one stylesheet from the host and no script, under a policy that
//! allows nothing else; its form posts back to the same address.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_app::ErrorKind;
use switchboard_app::surveys::SurveyPage;

use crate::state::AppState;

/// The page's policy: its own stylesheet, a form back to the host, nothing else.
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /survey/{token}`.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.surveys.page(&token).await {
        Ok(page) => html(StatusCode::OK, &render(&page, None)),
        Err(e) => failure(&e),
    }
}

/// `POST /survey/{token}`: the form (`csat=4&ces=6&comment=…`).
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match state.surveys.answer_page(&token, &form).await {
        Ok(page) => html(StatusCode::OK, &render(&page, None)),
        Err(e) if e.kind() == ErrorKind::BadRequest => match state.surveys.page(&token).await {
            Ok(page) => html(StatusCode::BAD_REQUEST, &render(&page, Some(e.message()))),
            Err(e) => failure(&e),
        },
        Err(e) => failure(&e),
    }
}

fn failure(e: &switchboard_app::AppError) -> Response {
    let status = match e.kind() {
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ => {
            tracing::error!("survey page failed: {}", e.message());
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        "Something went wrong on our side; please try again later."
    } else {
        e.message()
    };
    html(
        status,
        &document(&format!("<p class=\"notice\">{}</p>", escape(message))),
    )
}

fn html(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn document(main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>How did we do?</title><link rel=\"stylesheet\" href=\"/survey.css\"></head>\
         <body><main class=\"survey\"><h1>How did we do?</h1>{main}</main></body></html>\n"
    )
}

fn render(page: &SurveyPage, problem: Option<&str>) -> String {
    if page.done {
        return document(
            "<p class=\"thanks\" role=\"status\">Thank you! Your answer was recorded.</p>",
        );
    }
    let mut main = String::new();
    if let Some(problem) = problem {
        main.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(problem)
        ));
    }
    main.push_str("<form method=\"post\">");
    for q in &page.questions {
        let name = q.kind.as_str();
        let (low, high) = q.kind.scale();
        let (low_label, high_label) = q.kind.ends();
        main.push_str(&format!(
            "<fieldset class=\"question\" id=\"q-{name}\"><legend>{}</legend>",
            escape(q.kind.prompt())
        ));
        if let Some(score) = q.score {
            main.push_str(&format!(
                "<p class=\"answered\">Answered: {score}</p></fieldset>"
            ));
            continue;
        }
        main.push_str("<div class=\"scale\">");
        for n in low..=high {
            main.push_str(&format!(
                "<label class=\"point\"><input type=\"radio\" name=\"{name}\" value=\"{n}\" \
                 required><span>{n}</span></label>"
            ));
        }
        main.push_str(&format!(
            "</div><p class=\"ends\"><span>{low} = {low_label}</span>\
             <span>{high} = {high_label}</span></p></fieldset>"
        ));
    }
    main.push_str(
        "<label class=\"comment\" for=\"comment\">Anything you want to add? (optional)</label>\
         <textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"4000\"></textarea>\
         <button type=\"submit\">Send</button></form>",
    );
    document(&main)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_app::surveys::PageQuestion;
    use switchboard_core::SurveyKind;

    #[test]
    fn the_page_has_a_radio_per_point_and_no_script() {
        let page = SurveyPage {
            questions: vec![
                PageQuestion {
                    kind: SurveyKind::Csat,
                    score: None,
                },
                PageQuestion {
                    kind: SurveyKind::Ces,
                    score: Some(6),
                },
            ],
            done: false,
        };
        let text = render(&page, Some("CSAT: choose <b>"));
        assert_eq!(text.matches("name=\"csat\"").count(), 5);
        assert!(
            !text.contains("name=\"ces\""),
            "answered questions are not asked again"
        );
        assert!(text.contains("Answered: 6"));
        assert!(text.contains("CSAT: choose &lt;b&gt;"));
        assert!(!text.contains("<script") && !text.contains("style="));
        let done = render(
            &SurveyPage {
                questions: vec![],
                done: true,
            },
            None,
        );
        assert!(done.contains("Thank you"));
    }
}
