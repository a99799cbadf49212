//! Errors as gRPC statuses: the one place where `ApiError` becomes a
//! `tonic::Status`, and where statuses tonic makes up on its own are put in
//! the contract's terms.

use http::HeaderMap;
use passlink_shared::error::{ApiError, Code};
use tonic::Status;

/// The status of an error: the same code as the JSON body, `grpc-message`
/// as the JSON `message`, and the error id as a typed detail.
pub fn to_status(err: &ApiError) -> Status {
    passlink_proto::error_status(tonic_code(err.code), err.id, &err.message)
}

fn tonic_code(code: Code) -> tonic::Code {
    match code {
        Code::InvalidArgument => tonic::Code::InvalidArgument,
        Code::NotFound => tonic::Code::NotFound,
        Code::PermissionDenied => tonic::Code::PermissionDenied,
        Code::ResourceExhausted => tonic::Code::ResourceExhausted,
        Code::FailedPrecondition => tonic::Code::FailedPrecondition,
        Code::Unimplemented => tonic::Code::Unimplemented,
        Code::Internal => tonic::Code::Internal,
        Code::Unavailable => tonic::Code::Unavailable,
        Code::Unauthenticated => tonic::Code::Unauthenticated,
    }
}

/// Rewrites the statuses tonic answers before our handler runs, found in
/// the headers of a trailers-only response:
///
/// - a message over the size limit is `OutOfRange` in tonic, but
///   `ResourceExhausted` in the contract's table (and in other gRPC
///   servers); the handler never answers `OutOfRange` itself;
/// - an unknown method is `Unimplemented` without a message;
/// - a request tonic cannot decode (a truncated frame, a compressed one
///   without an encoding) is `Internal` without our error detail; it is
///   the client's fault, so `InvalidArgument` (every failure of our own
///   carries the detail).
pub fn rewrite_transport_status(headers: &mut HeaderMap, max_message_bytes: usize) {
    let Some(code) = headers
        .get(Status::GRPC_STATUS)
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
    else {
        return;
    };
    let has_message = headers
        .get(Status::GRPC_MESSAGE)
        .is_some_and(|m| !m.is_empty());
    let replacement = match code {
        tonic::Code::OutOfRange => ApiError::new(
            Code::ResourceExhausted,
            "REQ-BODY-TOO-LARGE",
            format!("The request message is larger than {max_message_bytes} bytes"),
        ),
        tonic::Code::Internal if !headers.contains_key(Status::GRPC_STATUS_DETAILS) => {
            let said = headers
                .get(Status::GRPC_MESSAGE)
                .and_then(|m| {
                    percent_encoding::percent_decode(m.as_bytes())
                        .decode_utf8()
                        .ok()
                })
                .map(|m| m.chars().take(200).collect::<String>())
                .unwrap_or_default();
            ApiError::invalid(
                "REQ-PROTO-INVALID",
                format!("The request could not be decoded: {said}"),
            )
        }
        tonic::Code::Unimplemented if !has_message => ApiError::new(
            Code::Unimplemented,
            "REQ-GRPC-METHOD",
            "No such method; the service has CreateWebAuthNRegistrationLink, \
             StartWebAuthNRegistration and VerifyWebAuthNRegistration",
        ),
        _ => return,
    };
    for name in [
        Status::GRPC_STATUS,
        Status::GRPC_MESSAGE,
        Status::GRPC_STATUS_DETAILS,
    ] {
        headers.remove(name);
    }
    if to_status(&replacement).add_header(headers).is_err() {
        // Only a message that is not a valid header could fail; ours are.
        tracing::warn!(error.id = replacement.id, "could not write a gRPC status");
    }
}

/// The contract's HTTP status for the outcome of a gRPC response, read from
/// the headers: none there means the call succeeded (its status follows in
/// the trailers). Codes outside the contract's table map as Google's API
/// guidelines map them.
pub fn http_equivalent(headers: &HeaderMap) -> u16 {
    let Some(value) = headers.get(Status::GRPC_STATUS) else {
        return 200;
    };
    match tonic::Code::from_bytes(value.as_bytes()) {
        tonic::Code::Ok => 200,
        tonic::Code::InvalidArgument => Code::InvalidArgument.http_status(),
        tonic::Code::NotFound => Code::NotFound.http_status(),
        tonic::Code::PermissionDenied => Code::PermissionDenied.http_status(),
        tonic::Code::ResourceExhausted => Code::ResourceExhausted.http_status(),
        tonic::Code::FailedPrecondition => Code::FailedPrecondition.http_status(),
        tonic::Code::Unimplemented => Code::Unimplemented.http_status(),
        tonic::Code::Unavailable => Code::Unavailable.http_status(),
        tonic::Code::Unauthenticated => Code::Unauthenticated.http_status(),
        tonic::Code::Cancelled => 499,
        tonic::Code::DeadlineExceeded => 504,
        tonic::Code::AlreadyExists | tonic::Code::Aborted => 409,
        tonic::Code::OutOfRange => 400,
        tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::DataLoss => {
            Code::Internal.http_status()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_code_message_and_id() {
        let err = ApiError::denied("AUTH-PERMISSION-DENIED", "Not for this user");
        let status = to_status(&err);
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), err.full_message());
        let detail = passlink_proto::error_detail(&status).unwrap();
        assert_eq!(detail.id, "AUTH-PERMISSION-DENIED");

        for (code, number) in [
            (Code::InvalidArgument, 3),
            (Code::NotFound, 5),
            (Code::PermissionDenied, 7),
            (Code::ResourceExhausted, 8),
            (Code::Unavailable, 14),
            (Code::Unauthenticated, 16),
        ] {
            assert_eq!(tonic_code(code) as i32, number);
            assert_eq!(code as i32, number);
        }
    }

    #[test]
    fn outcomes_count_as_their_http_status() {
        let mut headers = HeaderMap::new();
        assert_eq!(http_equivalent(&headers), 200);
        to_status(&ApiError::not_found("USER-404", "User could not be found"))
            .add_header(&mut headers)
            .unwrap();
        assert_eq!(http_equivalent(&headers), 404);
        let mut headers = HeaderMap::new();
        Status::unauthenticated("x")
            .add_header(&mut headers)
            .unwrap();
        assert_eq!(http_equivalent(&headers), 401);
    }

    #[test]
    fn size_limit_becomes_resource_exhausted() {
        let mut headers = HeaderMap::new();
        Status::out_of_range("Error, decoded message length too large")
            .add_header(&mut headers)
            .unwrap();
        rewrite_transport_status(&mut headers, 1024);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "The request message is larger than 1024 bytes (REQ-BODY-TOO-LARGE)"
        );

        let mut headers = HeaderMap::new();
        to_status(&ApiError::not_found("USER-404", "User could not be found"))
            .add_header(&mut headers)
            .unwrap();
        let before = headers.clone();
        rewrite_transport_status(&mut headers, 1024);
        assert_eq!(headers, before, "the handler's statuses stay as they are");
    }
}
