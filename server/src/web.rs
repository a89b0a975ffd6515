//! The pages: the back office's and the public tracking page, three files each embedded in the
//! binary, with Leaflet (vendored by `server/web-vendor/vendor.sh`) for the back office's map,
//! so neither needs anything from the network at build or run time. The only thing a page may
//! fetch from elsewhere is the map's tiles, from the tile server the operator configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY,
};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use crate::settings::MapSettings;
use crate::words::{self, Lang};
use crate::AppState;

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

/// The tile server of the back-office page's map (`--map-tiles-url`), checked at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTiles {
    /// The URL template, with `{z}`, `{x}` and `{y}`.
    pub template: String,
    /// Its origin (`https://tile.example:8443`), the one other origin the page may load
    /// images from.
    pub origin: String,
    /// What the map credits, as plain text.
    pub attribution: String,
}

impl MapTiles {
    /// The configured tile server, `None` when there is none; refused when the template is not
    /// an absolute http(s) URL with `{z}`, `{x}` and `{y}` on one host.
    pub fn from_settings(settings: &MapSettings) -> Result<Option<MapTiles>, String> {
        let Some(template) = settings.tiles_url.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let rest = template
            .strip_prefix("https://")
            .or_else(|| template.strip_prefix("http://"))
            .ok_or_else(|| format!("{template:?} is not an http:// or https:// URL"))?;
        let host = rest.split('/').next().unwrap_or_default();
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(format!(
                "{template:?}: the host must be one name or address (no {{s}} subdomains)"
            ));
        }
        for part in ["{z}", "{x}", "{y}"] {
            if !template.contains(part) {
                return Err(format!("{template:?} has no {part}"));
            }
        }
        if template.chars().any(|c| c.is_whitespace() || c == '"') {
            return Err(format!("{template:?} contains spaces or quotes"));
        }
        let origin = template[..template.len() - rest.len() + host.len()].to_string();
        Ok(Some(MapTiles {
            template: template.to_string(),
            origin,
            attribution: settings
                .tiles_attribution
                .clone()
                .unwrap_or_default()
                .trim()
                .to_string(),
        }))
    }
}

/// Text made safe inside an HTML attribute's double quotes.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /backoffice`: the page, told the tile server when there is one (its origin is then
/// the one other place it may load images from).
pub async fn page(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let page = include_str!("web/backoffice.html");
    let (body, policy) = match &app.map {
        None => (page.to_string(), POLICY.to_string()),
        Some(tiles) => (
            page.replacen(
                "<body>",
                &format!(
                    "<body data-map-tiles=\"{}\" data-map-attribution=\"{}\">",
                    attribute(&tiles.template),
                    attribute(&tiles.attribution)
                ),
                1,
            ),
            POLICY.replacen(
                "img-src 'self' data:",
                &format!("img-src 'self' data: {}", tiles.origin),
                1,
            ),
        ),
    };
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (CONTENT_SECURITY_POLICY, policy),
            (CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
}

/// The words of the back-office page, in both languages, and the time zone its dates are in.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PageWords {
    /// The service's time zone (IANA), in which the page writes dates.
    pub time_zone: String,
    /// French: by group (`outcomes`, `events`, `statuses`…) and code.
    pub fr: BTreeMap<String, BTreeMap<String, String>>,
    /// English, the same groups and codes.
    pub en: BTreeMap<String, BTreeMap<String, String>>,
}

/// `GET /backoffice/words.json`: every word the page shows for a code, from [`words::catalogue`].
pub async fn page_words(State(app): State<Arc<AppState>>) -> Json<PageWords> {
    let of = |lang| {
        words::catalogue(lang)
            .into_iter()
            .map(|(group, words)| {
                let words = words.into_iter().map(|(c, w)| (c.to_string(), w)).collect();
                (group.to_string(), words)
            })
            .collect()
    };
    Json(PageWords {
        time_zone: app.clock.zone().iana_name().unwrap_or("UTC").to_string(),
        fr: of(Lang::Fr),
        en: of(Lang::En),
    })
}

/// `GET /assets/leaflet/leaflet.js`: Leaflet 1.9.4, vendored.
pub async fn leaflet_script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("web/vendor/leaflet/leaflet.js"),
    )
}

/// `GET /assets/leaflet/leaflet.css`.
pub async fn leaflet_style() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("web/vendor/leaflet/leaflet.css"),
    )
}

/// `GET /assets/leaflet/LICENSE`: Leaflet's licence (BSD-2-Clause), shipped with it.
pub async fn leaflet_licence() -> impl IntoResponse {
    asset(
        "text/plain; charset=utf-8",
        include_str!("web/vendor/leaflet/LICENSE"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(url: &str) -> Result<Option<MapTiles>, String> {
        MapTiles::from_settings(&MapSettings {
            tiles_url: Some(url.into()),
            tiles_attribution: Some("© tiles".into()),
        })
    }

    #[test]
    fn a_tile_server_is_one_origin_with_z_x_and_y() {
        let t = tiles("https://tile.example:8443/osm/{z}/{x}/{y}.png")
            .unwrap()
            .unwrap();
        assert_eq!(t.origin, "https://tile.example:8443");
        assert_eq!(t.attribution, "© tiles");
        assert_eq!(MapTiles::from_settings(&MapSettings::default()), Ok(None));
        for bad in [
            "ftp://tile.example/{z}/{x}/{y}.png",
            "https://{s}.tile.example/{z}/{x}/{y}.png",
            "https://tile.example/{z}/{x}.png",
            "tile.example/{z}/{x}/{y}.png",
            "https://tile.example/{z}/{x}/{y}.png\" onload=\"x",
        ] {
            assert!(tiles(bad).is_err(), "{bad}");
        }
    }
}
