//! Who may call what, decided in one place: the route table declares each route's audience
//! ([`Access`]), and the layer here enforces exactly that for every route, with the rate limits a
//! public server needs (per client address, per principal, on failed authentication, and on the
//! public lookups that take no token). A
//! handler never decides access itself: it takes the caller the layer established ([`AuthUser`]).
//!
//! [`AuthUser`]: crate::auth::AuthUser

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::{authenticate, TokenRole};
use crate::error::ApiError;
use crate::metrics::AuthFailureLabels;
use crate::routes::Access;
use crate::settings::GuardSettings;
use crate::AppState;

/// The rate limiters, keyed by client address or principal; `None` where a limit is off.
pub struct RateLimits {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_principal: Option<DefaultKeyedRateLimiter<(TokenRole, String)>>,
    auth_failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    public_lookups: Option<DefaultKeyedRateLimiter<IpAddr>>,
    client_address_header: Option<HeaderName>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    quota: Option<Quota>,
) -> Option<DefaultKeyedRateLimiter<K>> {
    quota.map(RateLimiter::keyed)
}

impl RateLimits {
    /// The limits as configured.
    pub fn new(settings: &GuardSettings) -> Result<Self, String> {
        let per_second = |rate: u32, burst: u32| {
            NonZeroU32::new(rate).map(|r| {
                Quota::per_second(r).allow_burst(
                    r.saturating_mul(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)),
                )
            })
        };
        let client_address_header = settings
            .client_address_header
            .as_deref()
            .map(|h| {
                HeaderName::try_from(h)
                    .map_err(|_| format!("--client-address-header: {h:?} is not a header name"))
            })
            .transpose()?;
        Ok(Self {
            per_address: limiter(per_second(settings.rate_per_address, 2)),
            per_principal: limiter(per_second(settings.rate_per_principal, 3)),
            auth_failures: limiter(
                NonZeroU32::new(settings.auth_failures_per_minute).map(Quota::per_minute),
            ),
            public_lookups: limiter(
                NonZeroU32::new(settings.public_lookups_per_minute).map(Quota::per_minute),
            ),
            client_address_header,
        })
    }

    /// Forgets the keys whose buckets are full again, so the limiters' memory stays bounded by
    /// the clients of the last moments.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_address {
            l.retain_recent();
        }
        if let Some(l) = &self.per_principal {
            l.retain_recent();
        }
        if let Some(l) = &self.auth_failures {
            l.retain_recent();
        }
        if let Some(l) = &self.public_lookups {
            l.retain_recent();
        }
    }

    /// The client's address: the TCP peer's, or the last one a trusted proxy's header names.
    fn client_address(&self, request: &Request) -> IpAddr {
        if let Some(header) = &self.client_address_header {
            let forwarded = request
                .headers()
                .get_all(header)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(address) = forwarded {
                return address;
            }
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
    what: &str,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::rate_limited(
            format!("too many {what}; retry in {} s", wait.as_secs().max(1)),
            wait.max(Duration::from_secs(1)),
        )
    })
}

/// The layer over every route: the per-address limit.
pub async fn limit_addresses(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let address = app.rate_limits.client_address(&request);
    match check(
        app.rate_limits.per_address.as_ref(),
        &address,
        "requests from this address",
    ) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            app.metrics.rate_limited.inc();
            e.into_response()
        }
    }
}

/// The layer over one route of the table: authenticates the caller unless the route is public,
/// refuses a role the route does not admit, applies the per-principal limit, and hands the
/// verified claims to the handler. Failed authentications count against the client's address.
pub async fn enforce(
    State((app, access)): State<(Arc<AppState>, Access)>,
    mut request: Request,
    next: Next,
) -> Response {
    let roles = match access {
        Access::Public => return next.run(request).await,
        Access::PublicLookup => {
            // No token, but a lookup a prober would repeat: counted per client address.
            let address = app.rate_limits.client_address(&request);
            if let Err(limited) = check(
                app.rate_limits.public_lookups.as_ref(),
                &address,
                "lookups from this address",
            ) {
                app.metrics.rate_limited.inc();
                return limited.into_response();
            }
            return next.run(request).await;
        }
        Access::Roles(roles) => roles,
    };
    let claims = match authenticate(&app, request.headers()).await {
        Ok(claims) => claims,
        Err(refusal) => {
            app.metrics
                .auth_failures
                .get_or_create(&AuthFailureLabels {
                    code: refusal.code().to_string(),
                })
                .inc();
            let address = app.rate_limits.client_address(&request);
            let limited = check(
                app.rate_limits.auth_failures.as_ref(),
                &address,
                "failed authentications from this address",
            );
            if limited.is_err() {
                app.metrics.rate_limited.inc();
            }
            return limited.err().unwrap_or(refusal).into_response();
        }
    };
    if !access.admits(claims.role) {
        let admitted: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        return ApiError::forbidden(
            "wrong_role",
            format!(
                "this route is for {} tokens; this one is a {} token",
                admitted.join(" or "),
                claims.role.as_str()
            ),
        )
        .into_response();
    }
    if let Err(limited) = check(
        app.rate_limits.per_principal.as_ref(),
        &(claims.role, claims.sub.clone()),
        "requests for this principal",
    ) {
        app.metrics.rate_limited.inc();
        return limited.into_response();
    }
    let span = tracing::Span::current();
    span.record("role", claims.role.as_str());
    span.record("principal", claims.sub.as_str());
    request.extensions_mut().insert(claims);
    next.run(request).await
}
