//! Signed webhooks: partners subscribe a URL to event types of the feed, and the worker
//! ([`run`]) POSTs each event to it, signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`).
//!
//! Delivery is at least once. The worker takes events from the feed after each subscription's
//! cursor and enqueues a delivery for each, in the transaction that moves the cursor; it then
//! claims due deliveries for a lease (on PostgreSQL skipping those another instance is
//! claiming), sends them, and records the outcome. A server killed mid-send leaves the delivery
//! pending: it is sent again when its lease runs out, so a receiver may see an event twice and
//! deduplicates on `webhook-id` (the event's id). Per subscription and subject only the oldest
//! delivery not yet acknowledged is sent, so a subject's events arrive in feed order while
//! other subjects go on. A delivery that fails is retried with exponential backoff and full
//! jitter; one that has failed for the whole retry window is given up and its subscription
//! disabled, saying why and since when, until it is enabled again.
//!
//! The API (`webhooks_api`) and the CLI (`tournee-server webhooks`) both go through this
//! module's functions, so they validate alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::db::{
    ClaimedDelivery, Database, DeliveryCounts, FeedCursor, NewDelivery, NewSubscription,
    SubscriptionRow,
};
use crate::events::{rfc3339, Payload};
use crate::metrics::WebhookLabels;
use crate::settings::WebhookSettings;
use crate::AppState;

/// The prefix of a signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret.
const SECRET_BYTES: usize = 24;
/// Events read from the feed at a time per subscription.
const FEED_BATCH: i64 = 500;
/// Deliveries claimed at a time.
const CLAIM_BATCH: i64 = 32;
/// Claims per pass at most, so a receiver that fails at once does not keep the worker busy.
const CLAIMS_PER_PASS: usize = 20;
/// The longest error kept with a delivery.
const MAX_ERROR_CHARS: usize = 500;

/// Why a subscription could not be made, found or changed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not an absolute http(s) URL.
    #[error("url: {url:?} {why}")]
    InvalidUrl {
        /// As sent.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// An event type the feed does not have.
    #[error("{field}: {name:?} is not an event type; the types are {}", Payload::TYPES.join(", "))]
    UnknownEventType {
        /// The field as sent, `event_types[i]`.
        field: String,
        /// The type as sent.
        name: String,
    },
    /// No subscription has this id.
    #[error("no webhook subscription {0:?}")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
}

/// Where a new subscription starts in the feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// From the feed's first event: every event recorded so far is delivered too.
    #[default]
    Beginning,
    /// From now: events recorded from now on. On PostgreSQL, events of transactions that
    /// overlapped the subscription may come too: the start errs towards delivering, never
    /// towards skipping (see `Database::feed_end`).
    Now,
}

/// A subscription as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it takes; empty for every type.
    pub event_types: Vec<String>,
    /// Whether events are delivered; a subscription whose deliveries failed for the whole
    /// retry window is disabled until enabled again.
    pub enabled: bool,
    /// Why it was disabled, and since when.
    pub disabled_reason: Option<String>,
    /// When it was created, RFC 3339.
    pub created_at: String,
}

/// A subscription just made, with its signing secret: shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Created {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: Subscription,
    /// The signing secret, `whsec_` and base64 (Standard Webhooks): verify every delivery
    /// with it. It is not shown again.
    pub secret: String,
}

/// A subscription's deliveries by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deliveries {
    /// Waiting to be sent, or sent again after a failure.
    pub pending: i64,
    /// Acknowledged by the receiver (2xx).
    pub delivered: i64,
    /// Given up after the retry window (then the subscription was disabled).
    pub failed: i64,
}

impl From<DeliveryCounts> for Deliveries {
    fn from(c: DeliveryCounts) -> Self {
        Self {
            pending: c.pending,
            delivered: c.delivered,
            failed: c.failed,
        }
    }
}

/// A subscription with its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionStatus {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: Subscription,
    /// Its deliveries by status.
    pub deliveries: Deliveries,
}

/// The subscription a row stores.
fn subscription(row: SubscriptionRow) -> Subscription {
    Subscription {
        event_types: serde_json::from_str(&row.event_types).unwrap_or_default(),
        created_at: rfc3339(row.created_ms),
        id: row.id,
        url: row.url,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
    }
}

/// Checks that `url` is an absolute http or https URL with a host (https is verified against
/// the Web PKI's roots: rustls with webpki-roots).
pub fn check_url(url: &str) -> Result<(), WebhookError> {
    let invalid = |why: &str| WebhookError::InvalidUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&format!("is not a URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        _ => return Err(invalid("is not an http or https URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    Ok(())
}

/// Checks every event type against the feed's.
pub fn check_event_types(types: &[String]) -> Result<(), WebhookError> {
    match types
        .iter()
        .enumerate()
        .find(|(_, t)| !Payload::TYPES.contains(&t.as_str()))
    {
        Some((i, name)) => Err(WebhookError::UnknownEventType {
            field: format!("event_types[{i}]"),
            name: name.clone(),
        }),
        None => Ok(()),
    }
}

/// A new signing secret: `whsec_` and the base64 of 24 random bytes.
fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// Subscribes `url` to `event_types` (every type when empty), from `start`.
pub async fn subscribe(
    db: &Database,
    url: &str,
    event_types: Vec<String>,
    start: Start,
    now_ms: i64,
) -> Result<Created, WebhookError> {
    check_url(url)?;
    check_event_types(&event_types)?;
    let mut event_types = event_types;
    event_types.sort();
    event_types.dedup();
    let cursor = match start {
        Start::Beginning => FeedCursor::default(),
        Start::Now => db.feed_end().await?,
    };
    let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
    let secret = new_secret();
    let types = serde_json::Value::from(event_types).to_string();
    db.insert_webhook(&NewSubscription {
        id: &id,
        url,
        event_types: &types,
        secret: &secret,
        cursor,
        created_ms: now_ms,
    })
    .await?;
    let row = db
        .webhook(&id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(id.clone()))?;
    Ok(Created {
        subscription: subscription(row),
        secret,
    })
}

/// Every subscription, oldest first.
pub async fn list(db: &Database) -> Result<Vec<Subscription>, WebhookError> {
    Ok(db.webhooks().await?.into_iter().map(subscription).collect())
}

/// One subscription with its deliveries.
pub async fn status(db: &Database, id: &str) -> Result<SubscriptionStatus, WebhookError> {
    let row = db
        .webhook(id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(id.to_string()))?;
    let deliveries = db.webhook_delivery_counts(id).await?.into();
    Ok(SubscriptionStatus {
        subscription: subscription(row),
        deliveries,
    })
}

/// Removes a subscription and its deliveries; the subscription as it was.
pub async fn remove(db: &Database, id: &str) -> Result<Subscription, WebhookError> {
    let row = db
        .webhook(id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(id.to_string()))?;
    if !db.delete_webhook(id).await? {
        return Err(WebhookError::NotFound(id.to_string()));
    }
    Ok(subscription(row))
}

/// Enables a subscription again: its failed deliveries get a new retry window, and the events
/// recorded while it was disabled are delivered.
pub async fn enable(
    db: &Database,
    id: &str,
    now_ms: i64,
) -> Result<SubscriptionStatus, WebhookError> {
    if !db.enable_webhook(id, now_ms).await? {
        return Err(WebhookError::NotFound(id.to_string()));
    }
    status(db, id).await
}

/// The `webhook-signature` header of a message (Standard Webhooks): `v1,` and the base64 of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the secret's base64-decoded bytes.
/// `None` for a secret that is not `whsec_` and base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// The delay before the next attempt after `failures` failures: drawn between 0 and the base
/// doubled per failure, capped (exponential backoff with full jitter).
pub fn backoff(settings: &WebhookSettings, failures: i64) -> Duration {
    let cap = settings.backoff_cap_secs.saturating_mul(1_000);
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    let ceiling = settings
        .backoff_base_ms
        .saturating_mul(2_u64.saturating_pow(doublings))
        .min(cap);
    Duration::from_millis(rand::rng().random_range(0..=ceiling))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Delivers webhooks until the task is aborted: each pass enqueues new events, then sends
/// what is due.
pub async fn run(app: Arc<AppState>) {
    let settings = app.webhooks.clone();
    // A redirect is not followed: the subscription names where events go, and a receiver that
    // moved is a failed delivery its owner sees.
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; nothing will be delivered");
            return;
        }
    };
    let poll = Duration::from_millis(settings.poll_ms.max(1));
    loop {
        if let Err(e) = pass(&app, &client).await {
            tracing::warn!(error = %e, "webhook delivery pass failed; will retry");
        }
        tokio::time::sleep(poll).await;
    }
}

/// One pass: enqueue, then send what is due.
async fn pass(app: &Arc<AppState>, client: &reqwest::Client) -> Result<(), sqlx::Error> {
    let subscriptions = app.db.webhooks().await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    for sub in subscriptions.iter().filter(|s| s.enabled) {
        enqueue(&app.db, sub).await?;
    }
    let by_id: Arc<HashMap<String, SubscriptionRow>> = Arc::new(
        subscriptions
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
    );
    // A claim outlives the longest send, so no other instance sends the same delivery
    // meanwhile; a server killed mid-send leaves it to be sent again once the lease is over.
    let lease = i64::try_from(app.webhooks.timeout_secs.saturating_mul(2_000))
        .unwrap_or(i64::MAX)
        .max(1_000);
    for _ in 0..CLAIMS_PER_PASS {
        let now = now_ms();
        let claimed = app
            .db
            .claim_webhook_deliveries(now, now.saturating_add(lease), CLAIM_BATCH)
            .await?;
        if claimed.is_empty() {
            break;
        }
        // At most one delivery per subject is claimed: sending them at once keeps every
        // subject's order.
        let mut sends = tokio::task::JoinSet::new();
        for delivery in claimed {
            let Some(sub) = by_id.get(&delivery.subscription_id) else {
                continue; // Made after this pass began: its lease runs out, the next pass sends it.
            };
            let (app, client, sub) = (app.clone(), client.clone(), sub.clone());
            sends.spawn(async move { send(&app, &client, &sub, delivery).await });
        }
        while let Some(done) = sends.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not record a webhook delivery"),
                Err(e) => tracing::warn!(error = %e, "a webhook send stopped"),
            }
        }
    }
    app.metrics
        .webhook_pending
        .set(app.db.webhook_pending().await?);
    Ok(())
}

/// Enqueues the events recorded after the subscription's cursor.
async fn enqueue(db: &Database, sub: &SubscriptionRow) -> Result<(), sqlx::Error> {
    let types: Vec<String> = serde_json::from_str(&sub.event_types).unwrap_or_default();
    let mut from = sub.cursor();
    loop {
        let events = db.feed(from, FEED_BATCH).await?;
        let Some(last) = events.last().map(|e| e.cursor()) else {
            return Ok(());
        };
        let deliveries: Vec<NewDelivery> = events
            .iter()
            .filter(|e| types.is_empty() || types.contains(&e.type_name))
            .map(|e| NewDelivery {
                cursor: e.cursor(),
                event_id: e.id.clone(),
                subject: format!("{}:{}", e.subject_kind, e.subject_id),
            })
            .collect();
        let moved = db
            .enqueue_webhook_deliveries(&sub.id, from, last, &deliveries, now_ms())
            .await?;
        if !moved || events.len() < FEED_BATCH as usize {
            // Another instance moved the cursor first, or the feed is read to its end.
            return Ok(());
        }
        from = last;
    }
}

/// Sends one delivery and records its outcome.
async fn send(
    app: &AppState,
    client: &reqwest::Client,
    sub: &SubscriptionRow,
    delivery: ClaimedDelivery,
) -> Result<(), sqlx::Error> {
    let outcome = match app.db.event(delivery.event_seq).await? {
        None => Err(format!("event {} is not in the feed", delivery.event_id)),
        Some(row) => match crate::feed_api::event(row) {
            Err(e) => Err(e.to_string()),
            Ok(event) => match serde_json::to_vec(&event) {
                Err(e) => Err(format!("event {}: {e}", delivery.event_id)),
                Ok(body) => post(client, sub, &delivery.event_id, body).await,
            },
        },
    };
    let now = now_ms();
    let error = match outcome {
        Ok(()) => {
            app.db.webhook_delivered(delivery.id, now).await?;
            count(app, "delivered");
            return Ok(());
        }
        Err(error) => error.chars().take(MAX_ERROR_CHARS).collect::<String>(),
    };
    let first_failure = delivery.first_failure_ms.unwrap_or(now);
    let window = (app.webhooks.retry_hours * 3_600_000.0) as i64;
    if now.saturating_sub(first_failure) >= window {
        let reason = format!(
            "deliveries to {} failed since {} ({} attempts of event {}); last error: {error}",
            sub.url,
            rfc3339(first_failure),
            delivery.attempts + 1,
            delivery.event_id
        );
        tracing::warn!(subscription = %sub.id, %reason, "webhook subscription disabled");
        app.db
            .webhook_failed(&delivery, now, &error, &reason)
            .await?;
        count(app, "failed");
    } else {
        let delay = backoff(&app.webhooks, delivery.attempts + 1);
        let next = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        tracing::debug!(subscription = %sub.id, delivery = delivery.id, %error, "webhook delivery failed; will retry");
        app.db.webhook_retry(delivery.id, next, now, &error).await?;
        count(app, "retried");
    }
    Ok(())
}

fn count(app: &AppState, outcome: &'static str) {
    app.metrics
        .webhook_deliveries
        .get_or_create(&WebhookLabels { outcome })
        .inc();
}

/// POSTs a signed event; `Err` says why it does not count as delivered.
async fn post(
    client: &reqwest::Client,
    sub: &SubscriptionRow,
    event_id: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let timestamp = jiff::Timestamp::now().as_second();
    let signature = sign(&sub.secret, event_id, timestamp, &body)
        .ok_or_else(|| format!("subscription {}: the stored secret is malformed", sub.id))?;
    let response = client
        .post(&sub.url)
        .header("content-type", "application/json")
        .header("webhook-id", event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the receiver did not answer in time".to_string()
            } else {
                format!("could not reach the receiver: {e}")
            }
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "x", 1, b""), None);
    }

    #[test]
    fn urls_and_types_are_checked() {
        assert!(check_url("http://127.0.0.1:9/hook").is_ok());
        assert!(check_url("http://crm.example.fr/hooks/tournee").is_ok());
        assert!(check_url("https://crm.example.fr/in").is_ok());
        for bad in ["ftp://x.fr/", "/relative", "", "mailto:a@b.fr", "http://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_event_types(&["item.delivered".into()]).is_ok());
        match check_event_types(&["item.delivered".into(), "item.lost".into()]) {
            Err(WebhookError::UnknownEventType { field, .. }) => {
                assert_eq!(field, "event_types[1]")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_stays_under_its_doubling_ceiling_and_the_cap() {
        let s = WebhookSettings {
            backoff_base_ms: 100,
            backoff_cap_secs: 1,
            ..WebhookSettings::default()
        };
        for _ in 0..200 {
            assert!(backoff(&s, 1) <= Duration::from_millis(100));
            assert!(backoff(&s, 3) <= Duration::from_millis(400));
            assert!(backoff(&s, 60) <= Duration::from_secs(1));
        }
    }
}
