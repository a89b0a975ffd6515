//! The customer's API: their parcels and where they stand, delivery choices and standing
//! preferences written into the documents as the customer's own changes (so the postman's
//! phone receives them at its next sync), and disputes of an attempt.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tournee_sync_core::model::{
    AccessNotes, Choice, CustomerChoice, DeliveryPointDoc, Preferences, ReferenceAddress,
};
use tournee_sync_core::rules::patterns;
use tournee_sync_core::{operations, rules, DocId, DocKind, S10};

use crate::auth::AuthUser;
use crate::clock::plus_days;
use crate::db::{AuditRow, UpuCode};
use crate::error::ApiError;
use crate::events::{DisputeOpened, NewEvent, Payload, SubjectKind};
use crate::item_view::{item_view, AttemptView, ItemView};
use crate::json_body::JsonBody;
use crate::params;
use crate::scope;
use crate::write::{write_as, Audit};
use crate::AppState;

/// A delivery point of the customer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeliveryPointView {
    /// Its id.
    pub id: String,
    /// The reference address.
    pub address: ReferenceAddress,
    /// Door code, floor, mailbox.
    pub access: AccessNotes,
    /// The customer's standing preferences.
    pub preferences: Preferences,
}

/// Everything of one customer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MyParcels {
    /// Their delivery points.
    pub delivery_points: Vec<DeliveryPointView>,
    /// The items addressed there.
    pub items: Vec<ItemView>,
}

/// Where and when the customer wants an item, tagged by `kind`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChoiceRequest {
    /// Present it again on `date` (`YYYY-MM-DD`).
    RedeliverOn {
        /// The day, from today to the end of the holding period (in the service's time zone).
        #[schemars(regex(pattern = patterns::DATE), extend("format" = "date"))]
        date: String,
    },
    /// Take it to a pickup point.
    PickupPoint {
        /// The pickup point's id.
        #[schemars(regex(pattern = patterns::IDENTIFIER))]
        pickup_point: String,
    },
    /// Leave it with a neighbour.
    Neighbour {
        /// Who and where.
        #[schemars(length(max = 120), regex(pattern = patterns::REQUIRED_TEXT))]
        neighbour: String,
    },
    /// Leave it in a safe place.
    SafePlace {
        /// Where.
        #[schemars(length(max = 120), regex(pattern = patterns::REQUIRED_TEXT))]
        place: String,
    },
    /// Keep it at the office.
    // A struct variant, not a unit one: serde ignores `deny_unknown_fields` for the unit
    // variants of an internally tagged enum, and an unknown field must be refused here too.
    Hold {},
}

impl From<ChoiceRequest> for Choice {
    fn from(c: ChoiceRequest) -> Self {
        match c {
            ChoiceRequest::RedeliverOn { date } => Choice::RedeliverOn { date },
            ChoiceRequest::PickupPoint { pickup_point } => Choice::PickupPoint { pickup_point },
            ChoiceRequest::Neighbour { neighbour } => Choice::Neighbour { neighbour },
            ChoiceRequest::SafePlace { place } => Choice::SafePlace { place },
            ChoiceRequest::Hold {} => Choice::Hold,
        }
    }
}

/// The answer to a choice.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChoiceMade {
    /// The new choice's id.
    pub choice_id: String,
    /// The item as it stands now.
    pub item: ItemView,
}

/// "I was at home."
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeRequest {
    /// What the customer says happened.
    #[schemars(length(min = 1, max = 500), regex(pattern = patterns::REQUIRED_TEXT))]
    pub comment: String,
}

/// The queued dispute.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DisputeQueued {
    /// Its review-queue entry.
    pub queue_id: i64,
}

async fn owned_item(app: &AppState, customer: &str, raw: &str) -> Result<S10, ApiError> {
    let item = params::s10(raw)?;
    match app.db.owner_of_item(&item.to_string()).await? {
        Some(owner) if owner == customer => Ok(item),
        // Someone else's item is reported like a missing one: S10 numbers are not secrets,
        // but whose parcel it is must not leak.
        _ => Err(
            ApiError::not_found("item_not_found", format!("item {item} not found")).field("s10"),
        ),
    }
}

async fn point_view(app: &AppState, id: &DocId) -> Result<DeliveryPointView, ApiError> {
    let doc = app.docs.load(&app.db, id).await?.ok_or_else(|| {
        ApiError::not_found("delivery_point_not_found", format!("{id} not found"))
    })?;
    let point: DeliveryPointDoc = operations::read_delivery_point(&doc)
        .map_err(|e| ApiError::internal(format!("{id}: {e}")))?;
    Ok(DeliveryPointView {
        id: point.id,
        address: point.reference,
        access: point.access,
        preferences: point.preferences,
    })
}

/// `GET /v1/customer/items`: the customer's delivery points and items.
#[tracing::instrument(name = "customer.parcels", level = "info", skip_all)]
pub async fn my_parcels(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
) -> Result<Json<MyParcels>, ApiError> {
    let mut docs = app.db.customer_documents(&claims.sub).await?;
    docs.sort();
    let mut parcels = MyParcels {
        delivery_points: Vec::new(),
        items: Vec::new(),
    };
    for id in docs {
        match id.kind() {
            DocKind::DeliveryPoint => parcels.delivery_points.push(point_view(&app, &id).await?),
            DocKind::Item => {
                let s10 =
                    S10::parse(id.key()).map_err(|v| ApiError::internal(format!("{id}: {v}")))?;
                parcels.items.push(item_view(&app, &s10).await?);
            }
        }
    }
    Ok(Json(parcels))
}

/// `GET /v1/customer/items/{s10}`: one item, its status and history.
#[tracing::instrument(name = "customer.item", level = "info", skip_all)]
pub async fn my_item(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    Path(s10): Path<String>,
) -> Result<Json<ItemView>, ApiError> {
    let item = owned_item(&app, &claims.sub, &s10).await?;
    Ok(Json(item_view(&app, &item).await?))
}

/// `POST /v1/customer/items/{s10}/choice`: where and when the customer wants the item.
#[tracing::instrument(name = "customer.choose", level = "info", skip_all)]
pub async fn choose(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    Path(s10): Path<String>,
    JsonBody(request): JsonBody<ChoiceRequest>,
) -> Result<(StatusCode, Json<ChoiceMade>), ApiError> {
    let customer = claims.sub.as_str();
    let item = owned_item(&app, customer, &s10).await?;
    let view = item_view(&app, &item).await?;
    if view.status_code == UpuCode::Delivered {
        return Err(ApiError::conflict(
            "already_delivered",
            format!("item {item} has already been delivered"),
        ));
    }
    let choice = Choice::from(request);
    if let Choice::RedeliverOn { date } = &choice {
        check_redelivery_date(&app, &view, date)?;
    }
    let choice_id = operations::new_entry_id();
    let record = CustomerChoice {
        choice,
        made_at_ms: app.clock.now_ms(),
        made_by: customer.to_string(),
    };
    let sender = scope::sender(&app.db, &app.clock, &claims).await?;
    let entry = choice_id.clone();
    write_as(
        &app,
        &sender,
        &DocId::item(&item),
        Audit {
            action: "choice.made",
            detail: json!({ "choice": choice_id }),
        },
        move |doc, _| operations::choose_for_item(doc, &entry, &record).map(|_| Value::Null),
    )
    .await?;
    let item = item_view(&app, &item).await?;
    Ok((StatusCode::CREATED, Json(ChoiceMade { choice_id, item })))
}

/// A redelivery day must be today or later, and within the item's holding period: until the
/// day the notice says it waits, or else the configured number of days from the day the item
/// began to wait (its first unsuccessful delivery; today if it has not been presented yet).
pub(crate) fn check_redelivery_date(
    app: &AppState,
    item: &ItemView,
    date: &str,
) -> Result<(), ApiError> {
    rules::date(rules::Field::Date, date).map_err(|v| ApiError::violation(&v, "date"))?;
    let day: Date = date.parse().map_err(|_| {
        ApiError::unprocessable(
            "rule_violation",
            format!("date: {date} is not a day of the calendar"),
        )
        .field("date")
    })?;
    let today = app.clock.today();
    if day < today {
        return Err(ApiError::unprocessable(
            "date_in_the_past",
            format!("date: {date} is in the past (today is {today})"),
        )
        .field("date"));
    }
    let last = last_redelivery_day(app, item);
    if day > last {
        return Err(ApiError::unprocessable(
            "beyond_holding_period",
            format!("date: {date} is beyond the holding period, which ends on {last}"),
        )
        .field("date"));
    }
    Ok(())
}

/// The last day an item may be presented again: the day its notice says it waits until, or else
/// the configured number of days from the day it began to wait (its first unsuccessful
/// delivery; today if it has not been presented yet).
pub(crate) fn last_redelivery_day(app: &AppState, item: &ItemView) -> Date {
    let today = app.clock.today();
    item.waits_at
        .as_ref()
        .and_then(|w| w.until.as_deref())
        .and_then(|until| until.parse::<Date>().ok())
        .unwrap_or_else(|| {
            let waiting_since = item
                .events
                .iter()
                .filter(|e| e.code == UpuCode::NotDelivered)
                .map(|e| app.clock.day_of_ms(e.at_ms))
                .min()
                .map_or(today, |first| first.min(today));
            plus_days(waiting_since, i64::from(app.holding_days))
        })
}

/// `PUT /v1/customer/delivery-points/{id}/preferences`: standing preferences.
#[tracing::instrument(name = "customer.preferences", level = "info", skip_all)]
pub async fn set_preferences(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    Path(point): Path<String>,
    JsonBody(preferences): JsonBody<Preferences>,
) -> Result<Json<DeliveryPointView>, ApiError> {
    let not_found = || {
        ApiError::not_found(
            "delivery_point_not_found",
            format!("delivery point {point} not found among yours"),
        )
        .field("id")
    };
    let id = DocId::delivery_point(&point).map_err(|_| not_found())?;
    let sender = scope::sender(&app.db, &app.clock, &claims).await?;
    if !sender.scope.contains(&id) {
        return Err(not_found());
    }
    write_as(
        &app,
        &sender,
        &id,
        Audit::action("preferences.set"),
        move |doc, _| operations::set_preferences(doc, &preferences).map(|_| Value::Null),
    )
    .await?;
    Ok(Json(point_view(&app, &id).await?))
}

/// `POST /v1/customer/items/{s10}/attempts/{attempt}/dispute`: "I was at home".
#[tracing::instrument(name = "customer.dispute", level = "info", skip_all)]
pub async fn dispute(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    Path((s10, attempt_id)): Path<(String, String)>,
    JsonBody(request): JsonBody<DisputeRequest>,
) -> Result<(StatusCode, Json<DisputeQueued>), ApiError> {
    let customer = claims.sub.as_str();
    let item = owned_item(&app, customer, &s10).await?;
    if request.comment.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "rule_violation",
            "comment: say what happened, e.g. \"I was at home\"",
        )
        .field("comment"));
    }
    rules::required_text(
        rules::Field::Note,
        &request.comment,
        rules::MAX_FREE_TEXT_CHARS,
    )
    .map_err(|v| ApiError::violation(&v, "comment"))?;
    let attempt = app
        .db
        .attempt(&attempt_id)
        .await?
        .filter(|a| a.item_id == item.to_string())
        .ok_or_else(|| {
            ApiError::not_found(
                "attempt_not_found",
                format!("attempt {attempt_id} of {item} not found"),
            )
            .field("attempt")
        })?;
    let detail = json!({
        "customer": customer,
        "comment": request.comment,
        "item_id": item.to_string(),
        "attempt": AttemptView::from(&attempt),
    });
    let audit = AuditRow {
        at_ms: app.clock.now_ms(),
        actor: format!("customer:{customer}"),
        action: "attempt.disputed".into(),
        subject: format!("attempt:{attempt_id}"),
        detail: detail.to_string(),
    };
    let event = NewEvent::new(
        SubjectKind::Item,
        item.as_str(),
        audit.at_ms,
        &format!("{attempt_id}:{customer}"),
        Payload::DisputeOpened(DisputeOpened {
            attempt_id: attempt_id.clone(),
            customer: customer.to_string(),
        }),
    );
    let queue_id = app
        .db
        .add_dispute(&attempt_id, customer, &detail.to_string(), &audit, &event)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "already_disputed",
                format!("attempt {attempt_id} is already disputed"),
            )
        })?;
    Ok((StatusCode::CREATED, Json(DisputeQueued { queue_id })))
}
