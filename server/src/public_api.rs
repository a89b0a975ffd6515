//! The routes for customers without an account, who hold a tracking number or a notice card:
//! tracking by S10 number or notice number with the postcode, one choice per notice card written
//! into the item's document through the one write pipeline (so the postman's phone gets it at its
//! next sync), and the pickup points to choose from. Nothing personal is answered: no name, no
//! street address of the addressee, no postman.
//!
//! Why numbers cannot be probed: an unknown number and a wrong postcode are one query and one
//! answer (`ApiError::no_match`: same status, same body), and these routes are counted per client
//! address (`Access::PublicLookup`, `--public-lookups-per-minute`). Answers are in French unless
//! `Accept-Language` prefers English, with dates in words in the service's time zone.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use geo::{Distance, Haversine, Point};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tournee_sync_core::model::{Choice, CustomerChoice, GeoPoint, Requirements};
use tournee_sync_core::rules::{self, Field, Violation};
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::{operations, DocId, S10};

use crate::customer_api::{check_redelivery_date, last_redelivery_day, ChoiceRequest};
use crate::db::pickup_points::PickupPointRow;
use crate::db::UpuCode;
use crate::error::ApiError;
use crate::import::lines::Opening;
use crate::item_view::{item_view, ItemView};
use crate::json_body::JsonBody;
use crate::params::{self, QueryParams};
use crate::words::{self, Lang};
use crate::write::{write_as, Audit};
use crate::AppState;

/// A French postcode: five digits.
const POSTCODE: &str = r"^[0-9]{5}$";
/// `lat,lon` in WGS 84 degrees: a latitude within ±90 and a longitude within ±180.
const NEAR: &str = r"^-?(90(\.0{1,8})?|[1-8]?[0-9](\.[0-9]{1,8})?),-?(180(\.0{1,8})?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]{1,8})?)$";
/// Places a pickup-point search answers at most.
pub const MAX_PLACES: u32 = 50;
/// How long a client may reuse a tracking answer without asking again.
const CACHE_FOR: &str = "private, max-age=60";

/// The postcode that goes with a number.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    /// The postcode of the delivery address, five digits.
    #[schemars(regex(pattern = POSTCODE))]
    pub postcode: String,
}

/// Which pickup points: those of a postcode, those near a position, or those of a postcode
/// sorted by distance from a position.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PickupPointsQuery {
    /// Five digits: the places of this postcode.
    #[schemars(regex(pattern = POSTCODE))]
    pub postcode: Option<String>,
    /// `lat,lon` (WGS 84 degrees): the places nearest to it, with their distance.
    #[schemars(regex(pattern = NEAR))]
    pub near: Option<String>,
    /// How many places at most (1 to 50; 10 unless given).
    #[schemars(range(min = 1, max = 50))]
    pub limit: Option<u32>,
}

/// A choice made with a tracking number or a notice card, and the postcode that proves it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardChoiceRequest {
    /// The postcode of the delivery address, five digits.
    #[schemars(regex(pattern = POSTCODE))]
    pub postcode: String,
    /// Where and when to get the item, as in the customer API.
    pub choice: ChoiceRequest,
}

/// An item as anyone holding its number and postcode sees it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Tracking {
    /// The S10 number.
    pub s10: String,
    /// The language of every text here: `fr` or `en`.
    pub language: Lang,
    /// `arrived_at_office`, `out_for_delivery`, `attempted`, `at_pickup_point`, `delivered`.
    pub status: String,
    /// The status in words.
    pub status_text: String,
    /// The item's UPU events, oldest first.
    pub events: Vec<TrackedEvent>,
    /// Where it waits for collection, and until when.
    pub waits_at: Option<Waiting>,
    /// The choice that stands for the item now, if any.
    pub choice: Option<TrackedChoice>,
    /// What the customer can do next, in words.
    pub next_steps: Vec<String>,
    /// The choices the customer may make now (none once delivered), each allowed or not.
    pub options: Vec<ChoiceOption>,
    /// The first and last days a redelivery may be asked for, `YYYY-MM-DD`.
    pub redeliver_between: Option<(String, String)>,
}

/// One UPU event, in words.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TrackedEvent {
    /// `EMG`, `EDG`, `EMH`, `EDH` or `EMI`.
    pub code: String,
    /// When, RFC 3339 with the service's time-zone offset.
    pub at: String,
    /// When, in words, in the service's time zone.
    pub when: String,
    /// What happened, in words.
    pub what: String,
}

/// A pickup point or post office.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Place {
    /// Its id, to choose it.
    pub id: String,
    /// `pickup_point` or `post_office`.
    pub kind: String,
    /// The kind in words.
    pub kind_text: String,
    /// Its name.
    pub name: String,
    /// Its address lines.
    pub lines: Vec<String>,
    /// Postcode.
    pub postcode: String,
    /// Town.
    pub city: String,
    /// Where it is.
    pub pin: Option<GeoPoint>,
    /// Opening periods.
    pub opening_hours: Vec<Opening>,
    /// Opening hours in words, one line per day open, Monday first.
    pub opening_hours_text: Vec<String>,
    /// Metres from the position asked about (`near`), when both are known.
    pub distance_m: Option<f64>,
}

/// Where an item waits.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Waiting {
    /// `post_office`, `pickup_point` or `locker`.
    pub kind: String,
    /// The kind in words.
    pub kind_text: String,
    /// The place with its address and opening hours, when the network's data has it.
    pub place: Option<Place>,
    /// The last day it waits there, `YYYY-MM-DD`.
    pub until: Option<String>,
    /// That day in words.
    pub until_text: Option<String>,
}

/// The choice that stands.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TrackedChoice {
    /// `redeliver_on`, `pickup_point`, `neighbour`, `safe_place`, `hold`.
    pub kind: String,
    /// The choice in words (never the neighbour's name or the place written).
    pub text: String,
    /// When it was made, in words.
    pub made: String,
    /// Whether it can be honoured.
    pub applicable: bool,
}

/// A choice the customer may make.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChoiceOption {
    /// `redeliver_on`, `pickup_point`, `neighbour`, `safe_place`, `hold`.
    pub kind: String,
    /// In words.
    pub text: String,
    /// Whether the item's requirements allow it.
    pub allowed: bool,
    /// Why not, in words.
    pub reason: Option<String>,
}

/// The answer to a choice made with a number or a notice card.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CardChoiceMade {
    /// The choice that stands now.
    pub choice_id: String,
    /// False when the same choice stood already: nothing was written.
    pub written: bool,
    /// The item as it stands now.
    pub tracking: Tracking,
}

/// Pickup points and post offices.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PickupPoints {
    /// Nearest first when a position was given, else by name; at most the limit asked.
    pub places: Vec<Place>,
}

/// The language the client asked for (`Accept-Language`), French by default.
#[derive(Debug, Clone, Copy)]
pub struct Language(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for Language {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(Language(Lang::from_accept_language(header)))
    }
}

fn postcode_in_query(raw: &str) -> Result<&str, ApiError> {
    valid_postcode(raw).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_postcode",
            format!("postcode: {raw:?} is not a postcode: five digits"),
        )
        .field("postcode")
    })
}

fn valid_postcode(raw: &str) -> Option<&str> {
    let p = raw.trim();
    (p.len() == 5 && p.bytes().all(|b| b.is_ascii_digit())).then_some(p)
}

fn notice_number(raw: &str) -> Result<String, ApiError> {
    let n = raw.trim();
    rules::notice_number(n).map_err(|v| {
        ApiError::bad_request(
            "invalid_notice_number",
            format!("notice: {raw:?}: {}", v.reason),
        )
        .field("notice")
    })?;
    Ok(n.to_string())
}

/// The item a number and postcode name; [`ApiError::no_match`] whatever is wrong.
async fn item_by_s10(app: &AppState, s10: &S10, postcode: &str) -> Result<S10, ApiError> {
    app.db
        .track_item(s10.as_str(), postcode)
        .await?
        .and_then(|id| S10::parse(&id).ok())
        .ok_or_else(ApiError::no_match)
}

async fn item_by_notice(app: &AppState, notice: &str, postcode: &str) -> Result<S10, ApiError> {
    app.db
        .item_of_notice(notice, postcode)
        .await?
        .and_then(|id| S10::parse(&id).ok())
        .ok_or_else(ApiError::no_match)
}

/// The item's view; an item whose document is missing answers as an unknown one.
async fn view_of(app: &AppState, s10: &S10) -> Result<ItemView, ApiError> {
    item_view(app, s10).await.map_err(|e| {
        if e.status() == StatusCode::NOT_FOUND {
            ApiError::no_match()
        } else {
            e
        }
    })
}

fn place(lang: Lang, row: PickupPointRow, from: Option<(f64, f64)>) -> Place {
    let opening_hours: Vec<Opening> = serde_json::from_str(&row.opening_hours).unwrap_or_default();
    let pin = row.lat.zip(row.lon);
    Place {
        kind_text: words::place_kind(lang, &row.kind).to_string(),
        opening_hours_text: opening_text(lang, &opening_hours),
        opening_hours,
        lines: serde_json::from_str(&row.lines).unwrap_or_default(),
        distance_m: from.zip(pin).map(|(a, b)| distance_m(a, b)),
        pin: pin.map(|(lat, lon)| GeoPoint { lat, lon }),
        id: row.id,
        kind: row.kind,
        name: row.name,
        postcode: row.postcode,
        city: row.city,
    }
}

/// Metres between two `(lat, lon)` positions, to the metre.
fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    Haversine
        .distance(Point::new(a.1, a.0), Point::new(b.1, b.0))
        .round()
}

/// One line per day open, Monday first: "lundi : 09:00–12:00, 14:00–19:00".
fn opening_text(lang: Lang, hours: &[Opening]) -> Vec<String> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    DAYS.iter()
        .filter_map(|day| {
            let periods: Vec<String> = hours
                .iter()
                .filter(|o| {
                    serde_json::to_value(o.day)
                        .ok()
                        .as_ref()
                        .and_then(|v| v.as_str())
                        == Some(day)
                })
                .map(|o| format!("{}–{}", o.opens, o.closes))
                .collect();
            let name = words::opening_day(lang, day);
            let separator = match lang {
                Lang::Fr => " : ",
                Lang::En => ": ",
            };
            (!periods.is_empty()).then(|| format!("{name}{separator}{}", periods.join(", ")))
        })
        .collect()
}

const KINDS: [&str; 5] = [
    "redeliver_on",
    "pickup_point",
    "neighbour",
    "safe_place",
    "hold",
];

fn left_unattended(kind: &str) -> bool {
    matches!(kind, "neighbour" | "safe_place")
}

/// The item as the public sees it, in `lang`.
async fn tracking(app: &AppState, view: &ItemView, lang: Lang) -> Result<Tracking, ApiError> {
    let zone = app.clock.zone();
    let instant = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let events = view
        .events
        .iter()
        .map(|e| {
            let at = instant(e.at_ms);
            TrackedEvent {
                code: e.code.to_string(),
                at: at
                    .to_zoned_datetime(zone.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string(),
                when: words::instant(lang, at, zone),
                what: words::event(
                    lang,
                    e.code.as_str(),
                    e.reason.as_deref(),
                    e.action.as_deref(),
                ),
            }
        })
        .collect();
    let waits_at = match &view.waits_at {
        None => None,
        Some(w) => {
            let kind = serde_json::to_value(w.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let row = app.db.pickup_point(&w.place_id).await?;
            Some(Waiting {
                kind_text: words::place_kind(lang, &kind).to_string(),
                kind,
                place: row.map(|r| place(lang, r, None)),
                until_text: w.until.as_deref().map(|u| words::day_text(lang, u)),
                until: w.until.clone(),
            })
        }
    };
    let choice = match &view.choice {
        None => None,
        Some(c) => Some(TrackedChoice {
            text: choice_text(app, lang, &c.kind, &c.record).await?,
            kind: c.kind.clone(),
            made: words::instant(lang, instant(c.made_at_ms), zone),
            applicable: c.applicable,
        }),
    };
    let delivered = view.status_code == UpuCode::Delivered;
    let in_person = words::in_person_reason(lang, &view.requirements);
    let options = if delivered {
        Vec::new()
    } else {
        KINDS
            .iter()
            .map(|kind| {
                let forbidden = left_unattended(kind) && in_person.is_some();
                ChoiceOption {
                    kind: (*kind).to_string(),
                    text: words::choice_kind(lang, kind).to_string(),
                    allowed: !forbidden,
                    reason: forbidden.then(|| in_person.clone()).flatten(),
                }
            })
            .collect()
    };
    let redeliver_between = (!delivered).then(|| {
        (
            app.clock.today().to_string(),
            last_redelivery_day(app, view).to_string(),
        )
    });
    let next_steps = next_steps(
        lang,
        view,
        waits_at.as_ref(),
        choice.as_ref(),
        &view.requirements,
    );
    Ok(Tracking {
        s10: view.id.clone(),
        language: lang,
        status_text: words::status(lang, &view.status).to_string(),
        status: view.status.clone(),
        events,
        waits_at,
        choice,
        next_steps,
        options,
        redeliver_between,
    })
}

/// A choice in words, without what the customer wrote (a neighbour's name, a hiding place).
async fn choice_text(
    app: &AppState,
    lang: Lang,
    kind: &str,
    record: &serde_json::Value,
) -> Result<String, ApiError> {
    let choice = serde_json::from_value::<CustomerChoice>(record.clone())
        .ok()
        .map(|c| c.choice);
    Ok(match choice {
        Some(Choice::RedeliverOn { date }) => {
            let day = words::day_text(lang, &date);
            match lang {
                Lang::Fr => format!("Nouvelle livraison le {day}"),
                Lang::En => format!("Delivery again on {day}"),
            }
        }
        Some(Choice::PickupPoint { pickup_point }) => {
            match app.db.pickup_point(&pickup_point).await? {
                Some(p) => match lang {
                    Lang::Fr => format!("Livraison au point de retrait {}", p.name),
                    Lang::En => format!("Delivery to the pickup point {}", p.name),
                },
                None => words::choice_kind(lang, kind).to_string(),
            }
        }
        _ => words::choice_kind(lang, kind).to_string(),
    })
}

fn next_steps(
    lang: Lang,
    view: &ItemView,
    waits_at: Option<&Waiting>,
    choice: Option<&TrackedChoice>,
    requirements: &Requirements,
) -> Vec<String> {
    let mut steps = Vec::new();
    if view.status_code == UpuCode::Delivered {
        steps.push(
            match lang {
                Lang::Fr => "Il n'y a plus rien à faire. Une question ? Gardez ce numéro pour contacter le service client.",
                Lang::En => "There is nothing left to do. A question? Keep this number to contact customer service.",
            }
            .to_string(),
        );
        return steps;
    }
    if let Some(w) = waits_at {
        let at = w.place.as_ref().map_or_else(
            || w.kind_text.clone(),
            |p| {
                let mut at = vec![p.name.as_str()];
                at.extend(p.lines.iter().map(String::as_str).filter(|l| *l != p.name));
                at.join(", ")
            },
        );
        let until = w.until_text.as_deref();
        steps.push(match (lang, until) {
            (Lang::Fr, Some(u)) => format!("Retirez-le à : {at}, jusqu'au {u} inclus, avec l'avis de passage et une pièce d'identité."),
            (Lang::Fr, None) => format!("Retirez-le à : {at}, avec l'avis de passage et une pièce d'identité."),
            (Lang::En, Some(u)) => format!("Collect it at {at} until {u}, with the notice card and an identity document."),
            (Lang::En, None) => format!("Collect it at {at}, with the notice card and an identity document."),
        });
    } else if view.status_code == UpuCode::OutForDelivery {
        steps.push(
            match lang {
                Lang::Fr => "Le facteur vous le remettra au cours de sa tournée d'aujourd'hui.",
                Lang::En => "The postman will bring it on today's round.",
            }
            .to_string(),
        );
    }
    if let Some(c) = choice {
        steps.push(match lang {
            Lang::Fr => format!(
                "Votre choix est enregistré : {}. Le facteur le reçoit sur son téléphone.",
                c.text
            ),
            Lang::En => format!(
                "Your choice is recorded: {}. The postman receives it on their phone.",
                c.text
            ),
        });
    }
    steps.push(
        match lang {
            Lang::Fr => "Vous pouvez choisir une autre livraison : un autre jour, en point de retrait, chez un voisin, en lieu sûr, ou le garder au bureau de poste.",
            Lang::En => "You can choose another delivery: another day, a pickup point, a neighbour, a safe place, or keep it at the post office.",
        }
        .to_string(),
    );
    if let Some(reason) = words::in_person_reason(lang, requirements) {
        steps.push(reason);
    }
    steps
}

/// A JSON answer that clients may keep a minute and revalidate by its ETag (304 when unchanged).
fn cacheable<T: Serialize>(headers: &HeaderMap, value: &T) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(e) => {
            return ApiError::internal(format!("answer not serialisable: {e}")).into_response()
        }
    };
    let digest = Sha256::digest(&body);
    let tag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let matches = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let common = [
        (
            ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
        (CACHE_CONTROL, HeaderValue::from_static(CACHE_FOR)),
        (VARY, HeaderValue::from_static("Accept-Language")),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// `GET /v1/track/{s10}?postcode=…`: an item by its number and postcode.
pub async fn track(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    QueryParams(query): QueryParams<TrackQuery>,
    Language(lang): Language,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let postcode = postcode_in_query(&query.postcode)?;
    let s10 = params::s10(&raw)?;
    let item = item_by_s10(&app, &s10, postcode).await?;
    let view = view_of(&app, &item).await?;
    Ok(cacheable(&headers, &tracking(&app, &view, lang).await?))
}

/// `GET /v1/notices/{notice}?postcode=…`: the item a notice card was left for.
pub async fn notice(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    QueryParams(query): QueryParams<TrackQuery>,
    Language(lang): Language,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let postcode = postcode_in_query(&query.postcode)?;
    let notice = notice_number(&raw)?;
    let item = item_by_notice(&app, &notice, postcode).await?;
    let view = view_of(&app, &item).await?;
    Ok(cacheable(&headers, &tracking(&app, &view, lang).await?))
}

/// `POST /v1/track/{s10}/choice`: a choice made with the item's number and postcode.
pub async fn choose_by_s10(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    Language(lang): Language,
    JsonBody(request): JsonBody<CardChoiceRequest>,
) -> Result<Json<CardChoiceMade>, ApiError> {
    let postcode = postcode_in_body(&request.postcode)?;
    let s10 = params::s10(&raw)?;
    let item = item_by_s10(&app, &s10, postcode).await?;
    choose_from_card(&app, &item, request.choice, lang).await
}

/// `POST /v1/notices/{notice}/choice`: a choice made with the notice card and the postcode.
pub async fn choose_by_notice(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    Language(lang): Language,
    JsonBody(request): JsonBody<CardChoiceRequest>,
) -> Result<Json<CardChoiceMade>, ApiError> {
    let postcode = postcode_in_body(&request.postcode)?;
    let notice = notice_number(&raw)?;
    let item = item_by_notice(&app, &notice, postcode).await?;
    choose_from_card(&app, &item, request.choice, lang).await
}

fn postcode_in_body(raw: &str) -> Result<&str, ApiError> {
    valid_postcode(raw).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_postcode",
            format!("postcode: {raw:?} is not a postcode: five digits"),
        )
        .field("postcode")
    })
}

/// 422 for a rule the choice breaks, naming the field as the body spells it (`choice.date`).
fn choice_violation(v: &Violation) -> ApiError {
    let field = match v.field {
        Field::Choice => "choice".to_string(),
        other => format!("choice.{}", other.as_str()),
    };
    ApiError::violation(v, &field)
}

/// The one choice of whoever holds the item's card: the same rules as the customer API (409 once
/// delivered, 422 for what the requirements forbid, a date out of the holding period, a pickup
/// point the network does not have), written through the one write pipeline as a choice of the
/// card (`notice.<number>`, or `track.<S10>` before any notice), so the phone gets it at its next
/// sync. A new choice replaces the card's last one (the latest choice stands); the same choice
/// again, while it stands, writes nothing.
async fn choose_from_card(
    app: &AppState,
    item: &S10,
    request: ChoiceRequest,
    lang: Lang,
) -> Result<Json<CardChoiceMade>, ApiError> {
    let view = view_of(app, item).await?;
    if view.status_code == UpuCode::Delivered {
        return Err(ApiError::conflict(
            "already_delivered",
            format!("item {item} has already been delivered"),
        ));
    }
    let card = match app.db.latest_notice(item.as_str()).await? {
        Some(number) => format!("notice.{number}"),
        None => format!("track.{item}"),
    };
    let record = CustomerChoice {
        choice: Choice::from(request),
        made_at_ms: app.clock.now_ms(),
        made_by: card.clone(),
    };
    rules::customer_choice(&record).map_err(|v| choice_violation(&v))?;
    if let Choice::RedeliverOn { date } = &record.choice {
        check_redelivery_date(app, &view, date).map_err(|e| e.field("choice.date"))?;
    }
    if let Choice::PickupPoint { pickup_point } = &record.choice {
        if app.db.pickup_point(pickup_point).await?.is_none() {
            return Err(ApiError::unprocessable(
                "unknown_pickup_point",
                format!("choice.pickup_point: {pickup_point:?} is not a pickup point of the network; see /v1/pickup-points"),
            )
            .field("choice.pickup_point"));
        }
    }
    rules::choice_allowed(&record.choice, &view.requirements).map_err(|v| choice_violation(&v))?;
    let id = DocId::item(item);
    let doc = app
        .docs
        .load(&app.db, &id)
        .await?
        .ok_or_else(ApiError::no_match)?;
    let current =
        operations::read_item(&doc).map_err(|e| ApiError::internal(format!("{id}: {e}")))?;
    if let Some((choice_id, stands)) = current.current_choice() {
        if stands.made_by == card && stands.choice == record.choice {
            return Ok(Json(CardChoiceMade {
                choice_id: choice_id.clone(),
                written: false,
                tracking: tracking(app, &view, lang).await?,
            }));
        }
    }
    // The same request made twice at once gets the same key: the second writes nothing.
    let earlier = current
        .choices
        .values()
        .filter(|c| c.made_by == card)
        .count();
    let choice_id = card_choice_id(item, &card, earlier, &record.choice);
    let sender = Sender {
        role: Role::Customer,
        principal: card.clone(),
        device: None,
        scope: Scope::Documents(HashSet::from([id.clone()])),
    };
    let entry = choice_id.clone();
    write_as(
        app,
        &sender,
        &id,
        Audit {
            action: "choice.made_with_card",
            detail: json!({ "choice": choice_id }),
        },
        move |doc, _| {
            operations::choose_for_item(doc, &entry, &record).map(|_| serde_json::Value::Null)
        },
    )
    .await?;
    let view = view_of(app, item).await?;
    Ok(Json(CardChoiceMade {
        choice_id,
        written: true,
        tracking: tracking(app, &view, lang).await?,
    }))
}

/// A card's `n`th choice's key: derived from the item, the card, `n` and the choice.
fn card_choice_id(item: &S10, card: &str, n: usize, choice: &Choice) -> String {
    let mut digest = Sha256::new();
    digest.update(item.as_str());
    digest.update([0]);
    digest.update(card);
    digest.update([0]);
    digest.update(n.to_string());
    digest.update([0]);
    digest.update(serde_json::to_vec(choice).unwrap_or_default());
    let hex: String = digest.finalize()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("card-{hex}")
}

fn near(raw: &str) -> Result<(f64, f64), ApiError> {
    let refuse = || {
        ApiError::bad_request(
            "invalid_parameter",
            format!("near: {raw:?} is not a position: lat,lon in degrees, latitude within ±90, longitude within ±180"),
        )
        .field("near")
    };
    let (lat, lon) = raw.split_once(',').ok_or_else(refuse)?;
    let lat: f64 = lat.trim().parse().map_err(|_| refuse())?;
    let lon: f64 = lon.trim().parse().map_err(|_| refuse())?;
    if !(lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0) {
        return Err(refuse());
    }
    Ok((lat, lon))
}

/// `GET /v1/pickup-points?postcode=…&near=lat,lon&limit=…`: places to choose from.
pub async fn pickup_points(
    State(app): State<Arc<AppState>>,
    QueryParams(query): QueryParams<PickupPointsQuery>,
    Language(lang): Language,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let postcode = query
        .postcode
        .as_deref()
        .map(postcode_in_query)
        .transpose()?;
    let from = query.near.as_deref().map(near).transpose()?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=MAX_PLACES).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit: {limit} is not between 1 and {MAX_PLACES}"),
        )
        .field("limit"));
    }
    let limit = usize::try_from(limit).unwrap_or(10);
    let rows = match (postcode, from) {
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing_parameter",
                "give a postcode, a position (near=lat,lon), or both",
            )
            .field("postcode"))
        }
        // A postcode holds few places: all of them, then the nearest first.
        (Some(p), _) => app.db.pickup_points_in_postcode(p, 1_000).await?,
        (None, Some((lat, lon))) => {
            // Boxes of growing size around the position, until enough places are in one.
            let mut rows = Vec::new();
            for degrees in [0.05, 0.2, 1.0] {
                let widen = degrees / lat.to_radians().cos().abs().max(0.01);
                rows = app
                    .db
                    .pickup_points_in_box(
                        (lat - degrees, lat + degrees),
                        (lon - widen, lon + widen),
                        1_000,
                    )
                    .await?;
                if rows.len() >= limit {
                    break;
                }
            }
            rows
        }
    };
    let mut places: Vec<Place> = rows.into_iter().map(|r| place(lang, r, from)).collect();
    if from.is_some() {
        places.sort_by(|a, b| {
            a.distance_m
                .unwrap_or(f64::MAX)
                .total_cmp(&b.distance_m.unwrap_or(f64::MAX))
                .then_with(|| a.id.cmp(&b.id))
        });
    }
    places.truncate(limit);
    Ok(cacheable(&headers, &PickupPoints { places }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_checked_for_range() {
        assert_eq!(near("48.85,2.37").ok(), Some((48.85, 2.37)));
        assert_eq!(near("-90,180").ok(), Some((-90.0, 180.0)));
        for bad in ["91,0", "0,181", "NaN,0", "48.85", "a,b", "inf,0"] {
            assert!(near(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cards_choice_keys_differ_by_turn_and_choice() {
        let item = tournee_sync_core::fixtures::s10(1);
        let hold = card_choice_id(&item, "notice.AV1", 0, &Choice::Hold);
        assert_eq!(hold, card_choice_id(&item, "notice.AV1", 0, &Choice::Hold));
        assert_ne!(hold, card_choice_id(&item, "notice.AV1", 1, &Choice::Hold));
        assert!(rules::identifier(Field::EntryId, &hold).is_ok(), "{hold}");
    }
}
