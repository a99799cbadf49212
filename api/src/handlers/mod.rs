//! Request handlers, one module per resource.

pub mod health;
pub mod links;
pub mod page;
pub mod passkeys;
pub mod users;

use passlink_shared::error::{ApiError, Code};
use passlink_shared::store::StoreError;
use passlink_shared::time::rfc3339_ms;
use serde::Serialize;

/// The contract's `details` object.
#[derive(Debug, Serialize)]
pub struct Details {
    /// uint64 written as a string, as proto3 JSON does.
    pub sequence: String,
    #[serde(rename = "changeDate")]
    pub change_date: String,
    #[serde(rename = "resourceOwner")]
    pub resource_owner: String,
}

impl Details {
    pub fn new(sequence: u64, change_ms: i64, resource_owner: &str) -> Self {
        Self {
            sequence: sequence.to_string(),
            change_date: rfc3339_ms(change_ms),
            resource_owner: resource_owner.to_owned(),
        }
    }
}

/// Logs an error the caller cannot fix (the JSON routes and the gRPC
/// service alike); refusals of bad requests are not worth a line.
pub fn log_failure(err: &ApiError, route: &'static str) {
    if matches!(err.code, Code::Internal | Code::Unavailable) {
        tracing::warn!(error.id = err.id, route, "request failed");
    }
}

/// Redis trouble as the caller sees it; the cause goes to the log only.
pub fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Unavailable(cause) => {
            tracing::error!(error = %cause, "redis is unavailable");
            ApiError::unavailable("STORE-UNAVAILABLE", "The service is unavailable, try again")
        }
        StoreError::Protocol(cause) => {
            tracing::error!(error = %cause, "redis answered unexpectedly");
            ApiError::internal()
        }
    }
}
