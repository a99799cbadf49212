//! Redeeming a registration code: the passkey registration ceremony,
//! independent of the protocol it arrives over.
//!
//! [`start`] and [`verify`] take validated inputs and the authenticated
//! caller, if any, and return plain result structs. JSON, gRPC and gRPC-web
//! decode into the requests of [`request`], validate them there alike, and
//! only encode the results.
//!
//! Who may register:
//! - with a live code for the user, anybody holding it (the person who
//!   opened the link); no token is needed, and a ceremony started so is
//!   bound to the code;
//! - without a code, a caller whose token holds `user.passkey.write` for the
//!   user's organization, or whose subject is the user itself; only the same
//!   caller may verify that ceremony.
//!
//! The code rules: a wrong code counts a failed attempt and the third
//! removes the code; an expired code has its own error; the code is consumed
//! only when a registration started with it is verified, and that voids
//! every other registration started with it.

pub mod cose;
pub mod errors;
pub mod relying_party;
pub mod request;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passlink_shared::code::{PlainCode, new_id};
use passlink_shared::error::ApiError;
use passlink_shared::passkey::PasskeyRecord;
use passlink_shared::store::{
    CodeFailure, CodeState, FinishOutcome, FinishRegistration, StartCeremony, StartOutcome,
};
use passlink_shared::time::now_ms;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticatorAttachment, CreationChallengeResponse, Credential, PasskeyRegistration,
    RegisterPublicKeyCredential, WebauthnError,
};

use crate::app::App;
use crate::auth::{Caller, PASSKEY_WRITE};
use crate::handlers::store_error;
use errors::*;

/// Wrong codes allowed before a code is removed (the contract's rule).
pub const CODE_ATTEMPTS: u32 = 3;

/// Which authenticators the browser should offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthenticatorType {
    #[default]
    Unspecified,
    /// Built into the device (Touch ID, Windows Hello, Android).
    Platform,
    /// Roaming (security keys, a phone over hybrid transport).
    CrossPlatform,
}

/// A code as the person presents it.
#[derive(Debug)]
pub struct CodeInput {
    pub id: Uuid,
    pub code: PlainCode,
}

/// A validated StartWebAuthNRegistration.
#[derive(Debug)]
pub struct StartInput {
    pub user_id: String,
    pub domain: String,
    pub authenticator: AuthenticatorType,
    pub code: Option<CodeInput>,
}

/// The contract's `details`, before a protocol writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub sequence: u64,
    pub change_ms: i64,
    pub organization_id: String,
}

#[derive(Debug)]
pub struct Started {
    pub details: Change,
    pub webauthn_id: Uuid,
    /// The W3C `PublicKeyCredentialCreationOptions` under `publicKey`.
    pub options: CreationChallengeResponse,
}

/// A validated VerifyWebAuthNRegistration.
#[derive(Debug)]
pub struct VerifyInput {
    pub user_id: String,
    pub webauthn_id: Uuid,
    pub credential: RegisterPublicKeyCredential,
    pub name: String,
}

#[derive(Debug)]
pub struct Verified {
    pub details: Change,
}

/// Starts a registration: checks the code or the caller, makes the
/// challenge and records the ceremony. The code is not consumed here.
pub async fn start(
    app: &App,
    caller: Option<&Caller>,
    input: StartInput,
) -> Result<Started, ApiError> {
    let rp = &app.config.webauthn;
    if !rp.accepts_domain(&input.domain) {
        return Err(domain_invalid());
    }
    if input.code.is_none() && caller.is_none() {
        return Err(credentials_needed());
    }
    let user_id = input.user_id.as_str();
    let code_id = input.code.as_ref().map(|c| c.id);
    let now = now_ms();

    let context = app
        .store
        .registration_context(user_id, code_id.as_ref(), new_id(), now)
        .await
        .map_err(store_error)?;
    let Some(context) = context else {
        // Whoever holds only a code learns nothing about which users exist.
        return Err(match code_id {
            Some(_) => code_not_live(&CodeState::Unknown),
            None => user_not_found(),
        });
    };

    match &input.code {
        Some(code) => check_code(app, user_id, code, &context.code, now).await?,
        None => {
            let caller = caller.ok_or_else(credentials_needed)?;
            authorize(caller, user_id, &context.organization_id)?;
        }
    }

    let exclude = context
        .credential_ids
        .iter()
        .map(|id| URL_SAFE_NO_PAD.decode(id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            tracing::error!(user.id = user_id, error = %err,
                "a stored credential id is not base64url");
            ApiError::internal()
        })?;
    let user_name = if context.email.is_empty() {
        user_id
    } else {
        context.email.as_str()
    };
    let display_name = if context.display_name.is_empty() {
        user_name
    } else {
        context.display_name.as_str()
    };
    let (mut options, state) = rp
        .webauthn()
        .start_passkey_registration(
            context.handle,
            user_name,
            display_name,
            (!exclude.is_empty()).then_some(exclude),
        )
        .map_err(|err| {
            tracing::error!(user.id = user_id, error = %err,
                "cannot make a registration challenge");
            ApiError::internal()
        })?;
    apply_authenticator_type(&mut options, input.authenticator);
    let state = serde_json::to_string(&state).map_err(|err| {
        tracing::error!(error = %err, "cannot serialise a registration state");
        ApiError::internal()
    })?;

    let webauthn_id = new_id();
    let outcome = app
        .store
        .start_ceremony(&StartCeremony {
            user_id,
            webauthn_id,
            state: &state,
            code_id,
            caller_subject: match (&input.code, caller) {
                (None, Some(caller)) => Some(caller.subject.as_str()),
                _ => None,
            },
            now_ms: now,
            lifetime: rp.ceremony_ttl,
        })
        .await
        .map_err(store_error)?;

    match outcome {
        StartOutcome::Started {
            sequence,
            changed_ms,
            organization_id,
        } => {
            app.metrics.ceremony("start", "started");
            tracing::info!(user.id = user_id, code.id = code_id.as_ref().map(display),
                webauthn.id = %webauthn_id, "passkey registration started");
            Ok(Started {
                details: Change {
                    sequence,
                    change_ms: changed_ms,
                    organization_id,
                },
                webauthn_id,
                options,
            })
        }
        StartOutcome::UserNotFound => Err(match code_id {
            Some(_) => code_not_live(&CodeState::Unknown),
            None => user_not_found(),
        }),
        StartOutcome::CodeNotLive(state) => {
            app.metrics.ceremony("start", "code_not_live");
            Err(code_not_live(&state))
        }
    }
}

/// Compares the code with its keyed hash in constant time; a wrong code is
/// counted against the record.
async fn check_code(
    app: &App,
    user_id: &str,
    code: &CodeInput,
    state: &CodeState,
    now: i64,
) -> Result<(), ApiError> {
    let CodeState::Live { hash, .. } = state else {
        app.metrics.ceremony("start", "code_not_live");
        return Err(code_not_live(state));
    };
    if app.hasher.verify(&code.id, code.code.expose(), hash) {
        return Ok(());
    }

    let retention = app.config.common.status_retention;
    let failure = app
        .store
        .count_code_failure(user_id, &code.id, CODE_ATTEMPTS, now, retention)
        .await
        .map_err(store_error)?;
    app.metrics.ceremony("start", "code_invalid");
    match failure {
        CodeFailure::Counted { failures } => {
            tracing::info!(user.id = user_id, code.id = %code.id, failures,
                "wrong registration code");
            Err(code_invalid(CODE_ATTEMPTS.saturating_sub(failures)))
        }
        CodeFailure::Blocked => {
            tracing::warn!(user.id = user_id, code.id = %code.id,
                "registration code removed after too many wrong attempts");
            Err(code_not_live(&CodeState::Blocked))
        }
        CodeFailure::NotLive(state) => Err(code_not_live(&state)),
    }
}

/// A caller without a code needs the permission in the user's organization,
/// or to be the user.
fn authorize(caller: &Caller, user_id: &str, organization_id: &str) -> Result<(), ApiError> {
    if caller.subject == user_id {
        return Ok(());
    }
    match caller.scope(PASSKEY_WRITE) {
        Some(scope) if scope.all_orgs || scope.orgs.iter().any(|o| o == organization_id) => Ok(()),
        _ => Err(denied()),
    }
}

/// The browser filters authenticators by attachment; the library leaves it
/// open, and verification does not depend on it.
fn apply_authenticator_type(options: &mut CreationChallengeResponse, kind: AuthenticatorType) {
    let attachment = match kind {
        AuthenticatorType::Unspecified => return,
        AuthenticatorType::Platform => AuthenticatorAttachment::Platform,
        AuthenticatorType::CrossPlatform => AuthenticatorAttachment::CrossPlatform,
    };
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.authenticator_attachment = Some(attachment);
    }
}

/// Verifies the browser's answer and, if it holds, stores the passkey and
/// consumes the code in one atomic step. An answer that fails verification
/// ends the ceremony but leaves the code live, so the person can start
/// again with the same link.
pub async fn verify(
    app: &App,
    caller: Option<&Caller>,
    input: VerifyInput,
) -> Result<Verified, ApiError> {
    let user_id = input.user_id.as_str();
    let ceremony = app
        .store
        .ceremony(user_id, &input.webauthn_id)
        .await
        .map_err(store_error)?
        .ok_or_else(ceremony_not_found)?;

    if ceremony.code_id.is_none() {
        // Only the caller that started a ceremony without a code finishes it.
        let caller = caller.ok_or_else(credentials_needed)?;
        if ceremony.caller_subject.as_deref() != Some(caller.subject.as_str()) {
            return Err(denied());
        }
        // The permission is checked again against the user as it is now: a
        // ceremony lasts minutes, and the user may have moved to an
        // organization the caller has no say in.
        let user = app
            .store
            .get_user(user_id)
            .await
            .map_err(store_error)?
            .ok_or_else(ceremony_not_found)?;
        authorize(caller, user_id, &user.user.organization_id)?;
    }

    let state: PasskeyRegistration = serde_json::from_str(&ceremony.state).map_err(|err| {
        tracing::error!(webauthn.id = %input.webauthn_id, error = %err,
            "a stored registration state cannot be read");
        ApiError::internal()
    })?;
    let passkey = match app
        .config
        .webauthn
        .webauthn()
        .finish_passkey_registration(&input.credential, &state)
    {
        Ok(passkey) => passkey,
        Err(err) => {
            app.store
                .discard_ceremony(user_id, &input.webauthn_id)
                .await
                .map_err(store_error)?;
            app.metrics.ceremony("verify", "rejected");
            tracing::info!(user.id = user_id, webauthn.id = %input.webauthn_id, error = %err,
                "passkey registration rejected");
            return Err(match err {
                WebauthnError::CredentialExcludedFromRequest => already_registered(),
                WebauthnError::CredentialAlteredAlgFromRequest
                    if excluded(&ceremony.state, input.credential.raw_id.as_ref()) =>
                {
                    already_registered()
                }
                other => verify_failed(other),
            });
        }
    };

    let now = now_ms();
    let record = record_of(passkey.into(), input.name, now);
    let outcome = app
        .store
        .finish_registration(&FinishRegistration {
            user_id,
            webauthn_id: input.webauthn_id,
            code_id: ceremony.code_id,
            passkey: &record,
            now_ms: now,
            retention: app.config.common.status_retention,
        })
        .await
        .map_err(store_error)?;

    match outcome {
        FinishOutcome::Registered {
            sequence,
            organization_id,
        } => {
            app.metrics.ceremony("verify", "registered");
            tracing::info!(user.id = user_id, code.id = ceremony.code_id.as_ref().map(display),
                webauthn.id = %input.webauthn_id, passkey.id = %record.id, sequence,
                "passkey registered");
            Ok(Verified {
                details: Change {
                    sequence,
                    change_ms: now,
                    organization_id,
                },
            })
        }
        FinishOutcome::NoCeremony => Err(ceremony_not_found()),
        FinishOutcome::UserNotFound => Err(user_not_found()),
        FinishOutcome::Duplicate => {
            app.metrics.ceremony("verify", "duplicate");
            Err(already_registered())
        }
        FinishOutcome::CodeNotLive(state) => {
            app.metrics.ceremony("verify", "code_not_live");
            Err(code_not_live(&state))
        }
    }
}

/// Whether the ceremony's exclude list (the user's passkeys when it began)
/// holds `credential_id`. webauthn-rs 0.6 reports such a credential as an
/// altered algorithm; the stored state tells the two apart.
fn excluded(state: &str, credential_id: &[u8]) -> bool {
    let id = URL_SAFE_NO_PAD.encode(credential_id);
    serde_json::from_str::<serde_json::Value>(state)
        .ok()
        .and_then(|state| state.pointer("/rs/exclude_credentials").cloned())
        .and_then(|ids| ids.as_array().cloned())
        .is_some_and(|ids| ids.iter().any(|known| known.as_str() == Some(id.as_str())))
}

/// The stored form of a verified credential.
fn record_of(credential: Credential, name: String, now: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: URL_SAFE_NO_PAD.encode(&credential.cred_id),
        name,
        public_key: URL_SAFE_NO_PAD.encode(cose::encode(&credential.cred)),
        algorithm: credential.cred.type_ as i64,
        counter: credential.counter,
        created_ms: now,
        backup_eligible: credential.backup_eligible,
        backup_state: credential.backup_state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &str, orgs: &[&str], permissions: &[&str]) -> Caller {
        Caller {
            subject: subject.into(),
            all_orgs: orgs.contains(&"*"),
            orgs: orgs
                .iter()
                .filter(|o| **o != "*")
                .map(|o| (*o).into())
                .collect(),
            permissions: permissions.iter().map(|p| (*p).into()).collect(),
        }
    }

    #[test]
    fn who_may_register_without_a_code() {
        let backend = caller("backend", &["org1"], &[PASSKEY_WRITE]);
        assert!(authorize(&backend, "u1", "org1").is_ok());
        assert_eq!(
            authorize(&backend, "u1", "org2").unwrap_err().id,
            "AUTH-PERMISSION-DENIED"
        );
        let everywhere = caller("admin", &["*"], &[PASSKEY_WRITE]);
        assert!(authorize(&everywhere, "u1", "org2").is_ok());
        let directory = caller("dir", &["org1"], &["user.write"]);
        assert!(authorize(&directory, "u1", "org1").is_err());
        let own = caller("u1", &[], &[]);
        assert!(authorize(&own, "u1", "org9").is_ok());
        assert!(authorize(&own, "u2", "org9").is_err());
    }

    #[test]
    fn a_credential_on_the_exclude_list_is_told_apart() {
        let webauthn = webauthn_rs::WebauthnBuilder::new(
            "localhost",
            &url::Url::parse("http://localhost:8080").unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let known = vec![1u8, 2, 3, 4];
        let (_, state) = webauthn
            .start_passkey_registration(Uuid::new_v4(), "u", "U", Some(vec![known.clone()]))
            .unwrap();
        let state = serde_json::to_string(&state).unwrap();
        assert!(excluded(&state, &known));
        assert!(!excluded(&state, &[9, 9]));
        assert!(!excluded("{}", &known));
    }

    #[test]
    fn code_errors_have_their_own_ids_and_codes() {
        use passlink_shared::error::Code;
        let cases = [
            (CodeState::Used, "CODE-USED", Code::FailedPrecondition),
            (CodeState::Blocked, "CODE-BLOCKED", Code::FailedPrecondition),
            (CodeState::Expired, "CODE-EXPIRED", Code::FailedPrecondition),
            (CodeState::Unknown, "CODE-404", Code::NotFound),
        ];
        for (state, id, code) in cases {
            let err = code_not_live(&state);
            assert_eq!((err.id, err.code), (id, code), "{state:?}");
        }
        let wrong = code_invalid(2);
        assert_eq!(
            (wrong.id, wrong.code),
            ("CODE-INVALID", Code::InvalidArgument)
        );
        assert!(
            wrong.message.contains("2 attempts left"),
            "{}",
            wrong.message
        );
        assert!(code_invalid(1).message.contains("1 attempt left"));
    }
}
