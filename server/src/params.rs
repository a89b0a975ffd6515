//! Path and query parameters whose refusals are [`ApiError`]s naming the parameter as the client
//! sent it, in the API's words rather than the framework's.

use axum::extract::{FromRequestParts, Path, RawPathParams};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tournee_sync_core::S10;

use crate::error::ApiError;

/// Query parameters: 400 naming the parameter when they do not fit `T`.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|e| {
                let parameter = e.path().to_string();
                let why = e.into_inner().to_string();
                // serde names an unknown parameter in its message; the path is then empty.
                let parameter = match (parameter.as_str(), why.split('`').nth(1)) {
                    ("." | "", Some(named)) => named.to_string(),
                    _ => parameter,
                };
                ApiError::bad_request("invalid_parameter", format!("{parameter}: {why}"))
                    .field(parameter)
            })
    }
}

/// Path parameters: 400 naming the segment when it does not fit `T` (a queue entry is a number).
#[derive(Debug, Clone)]
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        // The parameters as sent, to name the one at fault when the framework does not.
        let raw: Vec<(String, String)> = RawPathParams::from_request_parts(parts, state)
            .await
            .map(|params| {
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let named = |value: &str| raw.iter().find(|(_, v)| v == value).map(|(k, _)| k.clone());
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|rejection| match rejection {
                PathRejection::FailedToDeserializePathParams(e) => match e.into_kind() {
                    ErrorKind::ParseErrorAtKey {
                        key,
                        value,
                        expected_type,
                    } => ApiError::bad_request(
                        "invalid_parameter",
                        format!("{key}: {value:?} is not {}", type_in_words(expected_type)),
                    )
                    .field(key),
                    ErrorKind::ParseError {
                        value,
                        expected_type,
                    }
                    | ErrorKind::ParseErrorAtIndex {
                        value,
                        expected_type,
                        ..
                    } => {
                        let key = named(&value).unwrap_or_else(|| "path".into());
                        ApiError::bad_request(
                            "invalid_parameter",
                            format!("{key}: {value:?} is not {}", type_in_words(expected_type)),
                        )
                        .field(key)
                    }
                    _ => ApiError::bad_request("invalid_parameter", "malformed path parameter"),
                },
                _ => ApiError::bad_request("invalid_parameter", "malformed path parameter"),
            })
    }
}

fn type_in_words(rust_type: &str) -> &'static str {
    match rust_type {
        "i64" | "u64" | "i32" | "u32" => "a whole number",
        _ => "of the expected form",
    }
}

/// An S10 number from a path: 400 naming the rule it breaks, so a malformed number is never
/// mistaken for an unknown one. Case and surrounding spaces do not matter.
pub fn s10(raw: &str) -> Result<S10, ApiError> {
    S10::parse(raw).map_err(|v| {
        ApiError::bad_request("invalid_s10", format!("s10: {raw:?}: {}", v.reason)).field("s10")
    })
}
