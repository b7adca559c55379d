//! The browser side of Switchboard, served by the host: the agent desk and supervisor
//! wallboard at `/`, the embeddable webchat widget at `/widget.js`, the chat page it
//! frames at `/webchat/`, and the demo page at `/demo`.
//!
//! The files in `assets/` are plain HTML, CSS and JavaScript modules, embedded in the
//! binary at build time (so running the product needs no Node toolchain and no files
//! beside the binary). With `SWITCHBOARD_WEB_DIR` set, they are read from that folder
//! instead, which makes working on them a matter of reloading the page.
//!
//! Every page is sent with a strict Content-Security-Policy: scripts and styles only
//! from the host itself, nothing inline, no plugins, and no framing — except the webchat
//! page, which exists to be framed by customers' sites. See `README.md` beside this
//! crate for the rules the client code follows and the API it uses.
#![deny(missing_docs)]

use std::borrow::Cow;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, Uri, header};
use axum::routing::get;

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// The policy of the desk, the wallboard and the demo page. `blob:` in `img-src` and
/// `media-src` is for timeline files and call recordings: they need the bearer token,
/// so the desk fetches them and shows or plays an object URL (the softphone's live
/// audio is a MediaStream, which no directive governs).
pub const CSP_APP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; font-src 'self'; media-src 'self' blob:; connect-src 'self'; \
    frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The policy of the webchat page, which customers' sites frame.
pub const CSP_WEBCHAT: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors *";

/// Where the assets come from.
#[derive(Debug, Clone, Default)]
pub struct WebAssets {
    dir: Option<PathBuf>,
}

impl WebAssets {
    /// The embedded assets, or the folder named by `SWITCHBOARD_WEB_DIR`.
    pub fn from_env() -> WebAssets {
        WebAssets {
            dir: std::env::var_os("SWITCHBOARD_WEB_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        }
    }

    /// The bytes of `path` (relative, e.g. `webchat/index.html`), if it exists.
    pub fn get(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        if path
            .split('/')
            .any(|part| part == ".." || part.starts_with('.'))
        {
            return None;
        }
        match &self.dir {
            Some(dir) => std::fs::read(dir.join(path)).ok().map(Cow::Owned),
            None => Assets::get(path).map(|f| f.data),
        }
    }

    fn response(&self, path: &str) -> Response<Body> {
        let Some(bytes) = self.get(path) else {
            return not_found();
        };
        let content_type = content_type(path);
        let csp = if path.starts_with("webchat/") {
            CSP_WEBCHAT
        } else {
            CSP_APP
        };
        let mut response = Response::new(Body::from(bytes.into_owned()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        // Pages must pick up a new version at once; they are small.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if path.starts_with("webchat/") || path == "widget.js" {
            // The widget and its frame live on customers' sites.
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        response
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response<Body> {
    let mut r = Response::new(Body::from(
        r#"{"error":{"code":"not_found","message":"no such page"}}"#,
    ));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The pages and files, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>(assets: WebAssets) -> Router<S> {
    let page = |file: &'static str| {
        let assets = assets.clone();
        get(move || {
            let assets = assets.clone();
            async move { assets.response(file) }
        })
    };
    let files = assets.clone();
    Router::new()
        .route("/", page("index.html"))
        .route("/demo", page("demo.html"))
        .route("/webchat", get(|| async { redirect("/webchat/") }))
        .route("/webchat/", page("webchat/index.html"))
        .fallback(get(move |uri: Uri| {
            let files = files.clone();
            async move { files.response(uri.path().trim_start_matches('/')) }
        }))
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn fetch(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let app: Router = routes(WebAssets::default());
        let response = app
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn pages_are_embedded_with_a_strict_policy() {
        let (status, headers, body) = fetch("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<html"), "{body}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(
            csp.contains("media-src 'self' blob:"),
            "recordings play from blob URLs"
        );
        assert!(
            csp.contains("img-src 'self' data: blob:"),
            "timeline images show from blob URLs"
        );
        let (status, headers, _) = fetch("/webchat/").await;
        assert_eq!(status, StatusCode::OK);
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors *"),
            "the webchat page is meant to be framed"
        );
        let (status, headers, _) = fetch("/widget.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
    }

    #[tokio::test]
    async fn no_page_means_404_and_paths_cannot_climb_out() {
        assert_eq!(fetch("/nope.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(fetch("/../Cargo.toml").await.0, StatusCode::NOT_FOUND);
        assert_eq!(fetch("/.hidden").await.0, StatusCode::NOT_FOUND);
        let disk = WebAssets {
            dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")),
        };
        assert!(disk.get("index.html").is_some());
        assert!(disk.get("../Cargo.toml").is_none());
    }

    #[test]
    fn no_asset_uses_inline_html_injection() {
        // Customer text must never become markup: the client builds every element
        // with textContent. Guard the rule on the shipped files.
        for name in Assets::iter() {
            let text = String::from_utf8_lossy(&Assets::get(&name).unwrap().data).into_owned();
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(banned), "{name} uses {banned}");
            }
            if name.ends_with(".html") {
                assert!(
                    !text.contains("<script>") && !text.contains(" onclick="),
                    "{name} has inline script"
                );
                assert!(!text.contains("style="), "{name} has an inline style");
            }
        }
    }
}
