//! The back-office page: three files embedded in the binary, so the page needs nothing from the
//! network at build or run time.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;

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
