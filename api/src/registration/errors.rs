//! The errors of redeeming a code, each with its own stable id, so that the
//! registration page (and any other client) can tell a person exactly what
//! happened. Messages never carry the code.

use passlink_shared::error::{ApiError, Code};
use passlink_shared::store::CodeState;

/// A wrong code with attempts left.
pub fn code_invalid(attempts_left: u32) -> ApiError {
    let plural = if attempts_left == 1 { "" } else { "s" };
    ApiError::invalid(
        "CODE-INVALID",
        format!(
            "The registration code is not valid; {attempts_left} attempt{plural} left before \
             it is removed"
        ),
    )
}

/// Why a code that is not live cannot start or finish a registration.
pub fn code_not_live(state: &CodeState) -> ApiError {
    match state {
        CodeState::Used => ApiError::new(
            Code::FailedPrecondition,
            "CODE-USED",
            "The registration code was already used to register a passkey; ask for a new link",
        ),
        CodeState::Blocked => ApiError::new(
            Code::FailedPrecondition,
            "CODE-BLOCKED",
            "The registration code was removed after too many wrong attempts; ask for a new link",
        ),
        CodeState::Expired => ApiError::new(
            Code::FailedPrecondition,
            "CODE-EXPIRED",
            "The registration code has expired; ask for a new link",
        ),
        CodeState::Unknown | CodeState::None | CodeState::Live { .. } => ApiError::not_found(
            "CODE-404",
            "The registration code is not known for this user; it may have been revoked",
        ),
    }
}

pub fn domain_invalid() -> ApiError {
    ApiError::invalid(
        "PASSKEY-DOMAIN-INVALID",
        "domain is not the relying party this service registers passkeys for",
    )
}

pub fn ceremony_not_found() -> ApiError {
    ApiError::not_found(
        "PASSKEY-CEREMONY-404",
        "No passkey registration with this webAuthNId is in progress for this user; it may \
         have expired or been finished, start again",
    )
}

pub fn already_registered() -> ApiError {
    ApiError::new(
        Code::FailedPrecondition,
        "PASSKEY-ALREADY-REGISTERED",
        "This authenticator is already registered for the user",
    )
}

pub fn verify_failed(reason: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(
        "PASSKEY-VERIFY-FAILED",
        format!("The passkey could not be verified: {reason}"),
    )
}

pub fn credentials_needed() -> ApiError {
    ApiError::unauthenticated(
        "AUTH-TOKEN-MISSING",
        "Give a registration code, or an Authorization: Bearer token",
    )
}

pub fn denied() -> ApiError {
    ApiError::denied(
        "AUTH-PERMISSION-DENIED",
        "The caller may not register passkeys for this user",
    )
}

pub fn user_not_found() -> ApiError {
    ApiError::not_found("USER-404", "User could not be found")
}
