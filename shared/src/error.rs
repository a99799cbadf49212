//! The contract's error model: one type that knows its gRPC code, its HTTP
//! status and its stable, greppable error id.
//!
//! Messages are written for the caller and never carry a code, a token or an
//! email address; the constructors take static ids so that every id can be
//! found in the source with one grep.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// The gRPC status codes the contract uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    /// The HTTP status of the contract's mapping table.
    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition => 400,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::NotFound => 404,
            Code::ResourceExhausted => 429,
            Code::Internal => 500,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
        }
    }
}

/// An error as the caller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    /// Stable id such as `USER-404`.
    pub id: &'static str,
    pub message: Cow<'static, str>,
    /// A more precise HTTP status than the table gives, for transport-level
    /// faults such as 413 or 415 that have no gRPC code of their own.
    pub http_status: Option<u16>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, id: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            id,
            message: message.into(),
            http_status: None,
            retry_after: None,
        }
    }

    pub fn invalid(id: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::InvalidArgument, id, message)
    }

    pub fn not_found(id: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::NotFound, id, message)
    }

    pub fn denied(id: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::PermissionDenied, id, message)
    }

    pub fn unauthenticated(id: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::Unauthenticated, id, message)
    }

    /// A dependency (Redis, RabbitMQ) cannot be reached; the caller may retry.
    pub fn unavailable(id: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::Unavailable, id, message)
    }

    /// Something broke that the caller cannot fix; details go to the log only.
    pub fn internal() -> Self {
        Self::new(Code::Internal, "INTERNAL-500", "Internal error")
    }

    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> u16 {
        self.http_status.unwrap_or_else(|| self.code.http_status())
    }

    /// The message as the top-level `message` field writes it: the detail
    /// message followed by the id in brackets.
    pub fn full_message(&self) -> String {
        format!("{} ({})", self.message, self.id)
    }

    /// The contract's JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Detail<'a> {
            #[serde(rename = "@type")]
            type_url: &'static str,
            id: &'a str,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            code: i32,
            message: String,
            details: [Detail<'a>; 1],
        }
        let body = Body {
            code: self.code as i32,
            message: self.full_message(),
            details: [Detail {
                type_url: "type.googleapis.com/zitadel.v1.ErrorDetail",
                id: self.id,
                message: &self.message,
            }],
        };
        // Serialising plain strings and integers into a Vec cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_message())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_contract_shape() {
        let err = ApiError::not_found("USER-404", "User could not be found");
        let body: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "code": 5,
                "message": "User could not be found (USER-404)",
                "details": [{
                    "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
                    "id": "USER-404",
                    "message": "User could not be found"
                }]
            })
        );
        assert_eq!(err.status(), 404);
    }

    #[test]
    fn transport_statuses_override_the_table() {
        let err = ApiError::invalid("REQ-415", "x").with_http_status(415);
        assert_eq!(err.status(), 415);
        assert_eq!(ApiError::invalid("A", "x").status(), 400);
        assert_eq!(ApiError::unavailable("B", "x").status(), 503);
    }
}
