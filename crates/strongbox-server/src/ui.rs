//! The web pages: the login page at `/`, and the privacy portal, admin console and
//! shared-record viewer under `/site/` (Databunker's paths, so its links work).
//!
//! Plain HTML, CSS and JavaScript modules, compiled into the binary (no CDN, no build
//! step). Every page is served with a Content-Security-Policy that allows scripts,
//! styles, images and API calls from this origin only, and no inline script or
//! style; the pages keep tokens in `sessionStorage` (gone with the tab) and send
//! them as `X-Bunker-Token`, so there is no cookie for a cross-site request to ride.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the pages may load: their own scripts, styles and images, API calls to
/// this origin; nothing inline, no frames, forms only to here.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// One embedded file: its path under `/site/`, its type and its bytes.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:literal) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!("../ui/", $path)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("portal.html", "text/html; charset=utf-8"),
    asset!("admin.html", "text/html; charset=utf-8"),
    asset!("shared.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("login.js", "text/javascript; charset=utf-8"),
    asset!("portal.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("shared.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The routes of the pages (no state: they read nothing from the vault).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/site", get(|| async { page("index.html") }))
        .route("/site/", get(|| async { page("index.html") }))
        // Databunker's page for the code step: here the login page does both steps.
        .route("/site/login.html", get(|| async { page("index.html") }))
        .route("/site/{*path}", get(site))
}

async fn site(Path(path): Path<String>) -> Response {
    page(&path)
}

fn page(path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        // Databunker's answer for a missing file, as its tests expect.
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "url not found",
        )
            .into_response();
    };
    let mut resp = (StatusCode::OK, asset.body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    resp
}
