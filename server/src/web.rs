//! The pages: the back office's and the public tracking page, three files each embedded in the
//! binary, so neither needs anything from the network at build or run time.

use axum::http::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY,
};
use axum::http::HeaderMap;
use axum::response::IntoResponse;

use crate::words::Lang;

/// Only the server's own origin: no CDN, no inline script, no third-party request.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

fn asset(media: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, media),
            (CONTENT_SECURITY_POLICY, POLICY),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `GET /backoffice`.
pub async fn page() -> impl IntoResponse {
    asset(
        "text/html; charset=utf-8",
        include_str!("web/backoffice.html"),
    )
}

/// `GET /backoffice/app.js`.
pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", include_str!("web/app.js"))
}

/// `GET /backoffice/app.css`.
pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("web/app.css"))
}

/// `GET /track`: the public tracking page, in French unless `Accept-Language` prefers English
/// (its switch changes the language afterwards).
pub async fn track_page(headers: HeaderMap) -> impl IntoResponse {
    let lang =
        Lang::from_accept_language(headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let page = include_str!("web/track.html");
    let body = match lang {
        Lang::Fr => page.to_string(),
        Lang::En => page.replacen("<html lang=\"fr\">", "<html lang=\"en\">", 1),
    };
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, POLICY),
            (CACHE_CONTROL, "no-cache"),
            (VARY, "Accept-Language"),
        ],
        body,
    )
}

/// `GET /track/track.js`.
pub async fn track_script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("web/track.js"),
    )
}

/// `GET /track/track.css`.
pub async fn track_style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("web/track.css"))
}
