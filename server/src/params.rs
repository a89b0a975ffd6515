//! Path and query parameters whose rejections are [`ApiError`]s, so a malformed or unknown
//! parameter gets the API's `{"error": …}` answer naming it, not axum's plain text.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(params)| QueryParams(params))
            .map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
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
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))
    }
}
