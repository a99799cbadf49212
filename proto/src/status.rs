//! Errors as gRPC carries them: the code, a `grpc-message` that ends in the
//! error id (as the JSON `message` does), and the id again as a typed
//! `zitadel.v1.ErrorDetail` in `grpc-status-details-bin`, so that a client
//! can read the id without parsing text.

use prost::Message;
use tonic::{Code, Status};

use crate::google::rpc;
use crate::zitadel::v1::ErrorDetail;

/// The type URL of the detail, the same as the JSON body's `@type`.
pub const ERROR_DETAIL_TYPE: &str = "type.googleapis.com/zitadel.v1.ErrorDetail";

/// A status with the contract's message and detail.
pub fn error_status(code: Code, id: &str, message: &str) -> Status {
    let full = format!("{message} ({id})");
    let details = rpc::Status {
        code: code as i32,
        message: full.clone(),
        details: vec![prost_types::Any {
            type_url: ERROR_DETAIL_TYPE.to_owned(),
            value: ErrorDetail {
                id: id.to_owned(),
                message: message.to_owned(),
            }
            .encode_to_vec(),
        }],
    };
    Status::with_details(code, full, details.encode_to_vec().into())
}

/// The error detail of a status, when it has one of ours.
pub fn error_detail(status: &Status) -> Option<ErrorDetail> {
    let details = rpc::Status::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url == ERROR_DETAIL_TYPE)
        .and_then(|any| ErrorDetail::decode(any.value.as_slice()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_travels_with_the_status() {
        let status = error_status(Code::NotFound, "USER-404", "User could not be found");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "User could not be found (USER-404)");
        let detail = error_detail(&status).expect("the status has a detail");
        assert_eq!(detail.id, "USER-404");
        assert_eq!(detail.message, "User could not be found");

        assert!(error_detail(&Status::internal("plain")).is_none());
    }
}
