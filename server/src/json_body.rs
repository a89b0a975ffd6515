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
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            refusal(e.into_inner(), &field)
        })?;
        deserializer.end().map_err(|e| refusal(e, "."))?;
        Ok(JsonBody(value))
    }
}

/// 422 naming the field for JSON of the wrong shape, 400 for what is not JSON.
fn refusal(e: serde_json::Error, field: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data if field == "." => ApiError::Unprocessable(format!("invalid body: {e}")),
        Category::Data => ApiError::Unprocessable(format!("{field}: {e}")),
        _ => ApiError::BadRequest(format!("the body is not JSON: {e}")),
    }
}
