//! `JsonBody<T>`: a JSON request body whose rejections are [`ApiError`]s, so a malformed body
//! gets the same `{"error": …}` answer as every other refusal, with the field serde names.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body: 400 when it is not JSON, 422 when it is JSON of the wrong shape.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("unreadable body: {e}")))?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::Unprocessable(format!("invalid body: {e}")),
                _ => ApiError::BadRequest(format!("the body is not JSON: {e}")),
            }
        })
    }
}
