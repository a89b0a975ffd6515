//! JWT authentication: who is calling, in which role, from which device.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tournee_sync_core::validator::Role;

use crate::error::ApiError;
use crate::settings::{AuthSettings, DEV_JWT_SECRET, MIN_JWT_SECRET_BYTES};
use crate::AppState;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The postman, customer or staff id.
    pub sub: String,
    /// What they may do.
    pub role: TokenRole,
    /// The device a postman's token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
}

/// The roles of DESIGN.md as tokens spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// A postman on a device.
    Postman,
    /// A customer.
    Customer,
    /// Back-office staff.
    BackOffice,
    /// A machine: the operator's planning, address, tracking and customer systems, which load
    /// reference data in and read the event feed. Never a document writer of its own: what it
    /// loads is written as the server, under the back office's rules for reference data.
    Integration,
}

impl TokenRole {
    /// The writer role sync-core's validator checks this caller's writes against: an
    /// integration's imports are reference data, the back office's to write.
    pub fn role(self) -> Role {
        match self {
            TokenRole::Postman => Role::Postman,
            TokenRole::Customer => Role::Customer,
            TokenRole::BackOffice | TokenRole::Integration => Role::BackOffice,
        }
    }

    /// The role as tokens spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Postman => "postman",
            TokenRole::Customer => "customer",
            TokenRole::BackOffice => "back_office",
            TokenRole::Integration => "integration",
        }
    }

    /// Every role, for the tools that list them.
    pub const ALL: [TokenRole; 4] = [
        TokenRole::Postman,
        TokenRole::Customer,
        TokenRole::BackOffice,
        TokenRole::Integration,
    ];
}

/// Verifies tokens, and mints them where a signing key is configured (HS256 development setups).
pub struct Keys {
    decoding: DecodingKey,
    validation: Validation,
    encoding: Option<(EncodingKey, Algorithm)>,
    audience: String,
    issuer: String,
}

impl Keys {
    /// Keys as configured: a public key for an identity provider's tokens, or the HS256 secret.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, String> {
        let (decoding, algorithm, encoding) = match &settings.jwt_public_key {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let algorithm: Algorithm = settings
                    .jwt_algorithm
                    .parse()
                    .map_err(|_| format!("unknown JWT algorithm {}", settings.jwt_algorithm))?;
                let key = match algorithm {
                    Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
                        DecodingKey::from_rsa_pem(&pem)
                    }
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                    other => return Err(format!("{other:?} is not an asymmetric algorithm")),
                }
                .map_err(|e| format!("{}: {e}", path.display()))?;
                (key, algorithm, None)
            }
            None => {
                let secret = settings.jwt_secret.as_bytes();
                if secret.is_empty() {
                    return Err("the JWT secret is empty".into());
                }
                if !settings.insecure_development {
                    let advice = format!(
                        "set TOURNEE_JWT_SECRET (or --jwt-secret) to a secret of your own of at \
                         least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -base64 48`), or \
                         verify an identity provider's tokens with --jwt-public-key; on a laptop, \
                         --demo or --insecure-development accept it"
                    );
                    if settings.jwt_secret == DEV_JWT_SECRET {
                        return Err(format!(
                            "refusing to start with the public development JWT secret: anyone \
                             could mint a back-office token. {advice}"
                        ));
                    }
                    if secret.len() < MIN_JWT_SECRET_BYTES {
                        return Err(format!(
                            "refusing to start with a JWT secret of {} bytes: it can be guessed. \
                             {advice}",
                            secret.len()
                        ));
                    }
                }
                (
                    DecodingKey::from_secret(secret),
                    Algorithm::HS256,
                    Some((EncodingKey::from_secret(secret), Algorithm::HS256)),
                )
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        Ok(Self {
            decoding,
            validation,
            encoding,
            audience: settings.jwt_audience.clone(),
            issuer: settings.jwt_issuer.clone(),
        })
    }

    /// Mints a token (development and tests); `None` when only a public key is configured.
    pub fn mint(
        &self,
        subject: &str,
        role: TokenRole,
        device: Option<&str>,
        ttl_secs: u64,
    ) -> Option<String> {
        let (key, algorithm) = self.encoding.as_ref()?;
        let now = now_secs();
        let claims = Claims {
            sub: subject.to_string(),
            role,
            device: device.map(str::to_string),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            exp: now + ttl_secs,
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(*algorithm), &claims, key).ok()
    }

    /// Checks signature, algorithm, expiry, audience and issuer.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                let (code, why) = match e.kind() {
                    ErrorKind::ExpiredSignature => ("token_expired", "the token has expired"),
                    ErrorKind::ImmatureSignature => ("token_not_yet_valid", "the token is not valid yet"),
                    ErrorKind::InvalidAudience => ("token_wrong_audience", "the token is for another audience"),
                    ErrorKind::InvalidIssuer => ("token_wrong_issuer", "the token is from another issuer"),
                    ErrorKind::InvalidSignature => ("token_bad_signature", "the token's signature does not verify"),
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        ("token_wrong_algorithm", "the token is signed with an algorithm this server does not accept")
                    }
                    ErrorKind::MissingRequiredClaim(_) => ("token_missing_claim", "the token lacks a required claim (sub, aud, iss, exp)"),
                    ErrorKind::Json(_) => ("token_bad_claims", "the token's claims are not those of a Tournée token (sub, role, aud, iss, exp)"),
                    _ => ("token_malformed", "the token is not a well-formed JWT"),
                };
                ApiError::unauthorized(code, why)
            })?;
        let claims = data.claims;
        if claims.role == TokenRole::Postman && claims.device.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::unauthorized(
                "token_missing_device",
                "a postman token must name its device",
            ));
        }
        Ok(claims)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The caller of a request, as [`authenticate`] established it: a verified token whose device is
/// not revoked. The access layer (`crate::access`) authenticates every route the route table
/// does not declare public and puts the claims into the request; handlers take them from there.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Claims>()
            .cloned()
            .map(AuthUser)
            // Only a route declared public in the table can get here without claims.
            .ok_or_else(|| ApiError::internal("a public route asked for the caller's token"))
    }
}

/// Who is calling: the bearer token verified, and a postman's device registered to them and not
/// revoked.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("token_missing", "missing Authorization: Bearer token")
        })?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "token_malformed",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    let claims = state.keys.verify(token.trim())?;
    if let (TokenRole::Postman, Some(device)) = (claims.role, &claims.device) {
        match state.db.device(device).await? {
            Some((_, true)) => {
                return Err(ApiError::forbidden(
                    "device_revoked",
                    format!("device {device} is revoked"),
                ))
            }
            Some((postman, false)) if postman == claims.sub => {}
            Some(_) => {
                return Err(ApiError::forbidden(
                    "device_not_registered",
                    format!("device {device} is not registered to {}", claims.sub),
                ))
            }
            None => {
                return Err(ApiError::forbidden(
                    "device_not_registered",
                    format!("device {device} is not registered"),
                ))
            }
        }
    }
    Ok(claims)
}
