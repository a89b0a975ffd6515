//! Request bodies whose refusals are [`ApiError`]s: `JsonBody<T>` answers 400 for what is not
//! JSON and 422 for JSON of the wrong shape, naming the field as the client sent it; [`body`]
//! reads raw bytes with 413 over the limit and 408 for a body that stalls.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use http_body_util::BodyExt;
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

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body(req.into_body()).await?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            refusal(e.into_inner(), &field)
        })?;
        deserializer.end().map_err(|e| refusal(e, "."))?;
        Ok(JsonBody(value))
    }
}

/// The whole body: 413 past the size limit, 408 when the client stops sending it, 400 when the
/// connection fails midway.
pub async fn body(body: Body) -> Result<Bytes, ApiError> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(cause) = source {
                if cause.is::<http_body_util::LengthLimitError>() {
                    return Err(ApiError::too_large("the body is over the size limit"));
                }
                if cause.is::<tower_http::timeout::TimeoutError>() {
                    return Err(ApiError::body_timeout());
                }
                source = cause.source();
            }
            Err(ApiError::bad_request(
                "unreadable_body",
                "the body could not be read to its end",
            ))
        }
    }
}

/// A body that is JSON whose shape is wrong (field missing, wrong type, unknown field): 422
/// naming the field as the client spelled it; one that is not JSON at all: 400.
fn refusal(e: serde_json::Error, field: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data if field == "." => ApiError::unprocessable("invalid_body", format!("{e}")),
        Category::Data => {
            ApiError::unprocessable("invalid_field", format!("{field}: {e}")).field(field)
        }
        _ => ApiError::bad_request("not_json", format!("the body is not JSON: {e}")),
    }
}
