//! Reading a request body within a size and a time limit, telling apart what went wrong:
//! too large (413), too slow (408), or not a well-formed body at all (400, e.g. broken
//! chunked encoding).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;

use crate::api_error::ApiError;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the size limit.
    TooLarge,
    /// Still arriving when the time limit passed.
    TooSlow(Duration),
    /// Malformed on the wire.
    Unreadable(String),
}

impl From<BodyError> for ApiError {
    /// The answer for a body that is too slow or malformed (callers answer "too large"
    /// with their own limit's name).
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the body is too large"),
            BodyError::TooSlow(limit) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the body did not arrive within {} s (server.body_timeout); send it faster or in smaller requests",
                    limit.as_secs_f64()
                ),
            ),
            BodyError::Unreadable(reason) => ApiError::bad_request(format!(
                "the body could not be read ({reason}); check its Content-Length or chunked encoding"
            )),
        }
    }
}

/// The whole body, at most `limit` bytes, arriving within `timeout`.
pub(crate) async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::TooSlow(timeout)),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let cause = error.into_inner();
            if cause.is::<http_body_util::LengthLimitError>() {
                Err(BodyError::TooLarge)
            } else {
                Err(BodyError::Unreadable(cause.to_string()))
            }
        }
    }
}
