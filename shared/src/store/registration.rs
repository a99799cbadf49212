//! Redeeming a code: the Redis side of a passkey registration.
//!
//! A registration is a ceremony in two requests. The start reads what it
//! needs in one script ([`Store::registration_context`]), lets the caller
//! compare the code's keyed hash in constant time, and either counts a
//! failure ([`Store::count_code_failure`]) or records the ceremony
//! ([`Store::start_ceremony`]). The verify reads the ceremony
//! ([`Store::ceremony`]) and, once the browser's answer checked out, stores
//! the passkey and consumes the code in one script
//! ([`Store::finish_registration`]). The code is therefore consumed only by
//! a verified registration; a failed or abandoned ceremony leaves it live.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{AsyncCommands, Script, Value};
use uuid::Uuid;

use super::{Store, StoreError, int_at, text_at};
use crate::passkey::PasskeyRecord;
use crate::time::millis;

static REGISTRATION_CONTEXT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/registration_context.lua")));
static CODE_FAILED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/code_failed.lua")));
static START_CEREMONY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/start_ceremony.lua")));
static FINISH_REGISTRATION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/finish_registration.lua")));

/// Where a code stands, as the scripts report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeState {
    /// No code came with the request.
    None,
    /// Valid; carries the stored keyed hash and the failed attempts so far.
    Live { hash: String, failures: u32 },
    /// A registration started with it was verified.
    Used,
    /// Removed after too many wrong attempts.
    Blocked,
    /// Past its validity.
    Expired,
    /// Never issued for this user, revoked with the user, or forgotten
    /// after the status retention.
    Unknown,
}

impl CodeState {
    fn parse(state: &str, hash: String, failures: u32) -> Result<Self, StoreError> {
        Ok(match state {
            "none" => CodeState::None,
            "live" => CodeState::Live { hash, failures },
            "used" => CodeState::Used,
            "blocked" => CodeState::Blocked,
            "expired" => CodeState::Expired,
            "unknown" => CodeState::Unknown,
            other => return Err(StoreError::Protocol(format!("code state {other}"))),
        })
    }
}

/// The user as a registration start sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationContext {
    pub organization_id: String,
    pub email: String,
    pub display_name: String,
    /// The WebAuthn user handle: random, made on the first registration and
    /// kept, so every passkey of the user carries the same one.
    pub handle: Uuid,
    pub sequence: u64,
    pub changed_ms: i64,
    pub code: CodeState,
    /// Credential ids (base64url) of the user's passkeys.
    pub credential_ids: Vec<String>,
}

/// The outcome of counting a wrong code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeFailure {
    /// Counted; `failures` wrong attempts so far.
    Counted { failures: u32 },
    /// This failure was the last one allowed; the code is gone.
    Blocked,
    /// Counting was moot: the code is no longer live.
    NotLive(CodeState),
}

/// A ceremony to record.
#[derive(Debug)]
pub struct StartCeremony<'a> {
    pub user_id: &'a str,
    pub webauthn_id: Uuid,
    /// The WebAuthn library's serialised challenge state.
    pub state: &'a str,
    /// The code the ceremony was started with, if any.
    pub code_id: Option<Uuid>,
    /// The authenticated caller that started it without a code.
    pub caller_subject: Option<&'a str>,
    pub now_ms: i64,
    pub lifetime: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        sequence: u64,
        changed_ms: i64,
        organization_id: String,
    },
    UserNotFound,
    /// The code stopped being live since it was checked.
    CodeNotLive(CodeState),
}

/// A ceremony in progress, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceremony {
    pub state: String,
    pub code_id: Option<Uuid>,
    /// Who started it without a code; `None` when a code started it.
    pub caller_subject: Option<String>,
}

/// A verified registration to store.
#[derive(Debug)]
pub struct FinishRegistration<'a> {
    pub user_id: &'a str,
    pub webauthn_id: Uuid,
    pub code_id: Option<Uuid>,
    pub passkey: &'a PasskeyRecord,
    pub now_ms: i64,
    /// How long a used code is remembered as used.
    pub retention: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FinishOutcome {
    Registered {
        sequence: u64,
        organization_id: String,
    },
    /// The ceremony is unknown, expired or was finished already.
    NoCeremony,
    UserNotFound,
    /// The user has a passkey with this credential id already.
    Duplicate,
    /// The ceremony's code was used by another ceremony, blocked or lost.
    CodeNotLive(CodeState),
}

/// Registrations in progress kept per user: enough for a person retrying
/// on a few devices, few enough that a flood of starts stays small.
pub const LIVE_CEREMONIES_PER_USER: u32 = 10;

impl Store {
    /// Reads the user, its passkeys' ids and the code's state, and gives
    /// the user a WebAuthn handle (`fresh_handle`) if it has none.
    pub async fn registration_context(
        &self,
        user_id: &str,
        code_id: Option<&Uuid>,
        fresh_handle: Uuid,
        now_ms: i64,
    ) -> Result<Option<RegistrationContext>, StoreError> {
        let keys = &self.keys;
        let mut conn = self.conn.clone();
        let mut invocation = REGISTRATION_CONTEXT.key(keys.user(user_id));
        invocation.key(keys.passkeys(user_id));
        if let Some(code_id) = code_id {
            invocation.key(keys.code(user_id, &code_id.to_string()));
        }
        let reply: Vec<Value> = invocation
            .arg(user_id)
            .arg(now_ms)
            .arg(fresh_handle.to_string())
            .invoke_async(&mut conn)
            .await?;

        match text_at(&reply, 0)?.as_str() {
            "OK" => {}
            "NOUSER" => return Ok(None),
            other => {
                return Err(StoreError::Protocol(format!(
                    "registration_context said {other}"
                )));
            }
        }
        let handle = text_at(&reply, 4)?
            .parse()
            .map_err(|_| StoreError::Protocol("the stored user handle is not a UUID".into()))?;
        let failures = u32::try_from(int_at(&reply, 9)?).unwrap_or(u32::MAX);
        let code = CodeState::parse(&text_at(&reply, 7)?, text_at(&reply, 8)?, failures)?;
        let credential_ids = (10..reply.len())
            .map(|i| text_at(&reply, i))
            .collect::<Result<_, _>>()?;
        Ok(Some(RegistrationContext {
            organization_id: text_at(&reply, 1)?,
            email: text_at(&reply, 2)?,
            display_name: text_at(&reply, 3)?,
            handle,
            sequence: u64::try_from(int_at(&reply, 5)?).unwrap_or(0),
            changed_ms: int_at(&reply, 6)?,
            code,
            credential_ids,
        }))
    }

    /// Counts one wrong code; the `allowed`-th failure blocks the code.
    pub async fn count_code_failure(
        &self,
        user_id: &str,
        code_id: &Uuid,
        allowed: u32,
        now_ms: i64,
        retention: Duration,
    ) -> Result<CodeFailure, StoreError> {
        let keys = &self.keys;
        let code_id = code_id.to_string();
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = CODE_FAILED
            .key(keys.code(user_id, &code_id))
            .key(keys.user_codes(user_id))
            .arg(user_id)
            .arg(&code_id)
            .arg(allowed)
            .arg(now_ms)
            .arg(millis(retention).max(1))
            .invoke_async(&mut conn)
            .await?;
        let failures = u32::try_from(int_at(&reply, 1)?).unwrap_or(u32::MAX);
        Ok(match text_at(&reply, 0)?.as_str() {
            "counted" => CodeFailure::Counted { failures },
            "blocked" if failures > 0 => CodeFailure::Blocked,
            state => CodeFailure::NotLive(CodeState::parse(state, String::new(), 0)?),
        })
    }

    /// Records a ceremony, if its code (when it has one) is still live. A
    /// user keeps at most [`LIVE_CEREMONIES_PER_USER`]; a start past that
    /// ends the oldest.
    pub async fn start_ceremony(
        &self,
        req: &StartCeremony<'_>,
    ) -> Result<StartOutcome, StoreError> {
        let keys = &self.keys;
        let mut conn = self.conn.clone();
        let mut invocation =
            START_CEREMONY.key(keys.ceremony(req.user_id, &req.webauthn_id.to_string()));
        invocation.key(keys.user(req.user_id));
        invocation.key(keys.ceremonies(req.user_id));
        if let Some(code_id) = &req.code_id {
            invocation.key(keys.code(req.user_id, &code_id.to_string()));
        }
        let reply: Vec<Value> = invocation
            .arg(req.user_id)
            .arg(req.state)
            .arg(millis(req.lifetime).max(1))
            .arg(req.now_ms)
            .arg(req.code_id.map(|id| id.to_string()).unwrap_or_default())
            .arg(req.caller_subject.unwrap_or_default())
            .arg(req.webauthn_id.to_string())
            .arg(LIVE_CEREMONIES_PER_USER)
            .arg(keys.shard_base(keys.shard_of(req.user_id)))
            .invoke_async(&mut conn)
            .await?;
        Ok(match text_at(&reply, 0)?.as_str() {
            "OK" => StartOutcome::Started {
                sequence: u64::try_from(int_at(&reply, 1)?).unwrap_or(0),
                changed_ms: int_at(&reply, 2)?,
                organization_id: text_at(&reply, 3)?,
            },
            "NOUSER" => StartOutcome::UserNotFound,
            state => StartOutcome::CodeNotLive(CodeState::parse(state, String::new(), 0)?),
        })
    }

    /// The ceremony `webauthn_id` of the user, if it is still in progress.
    pub async fn ceremony(
        &self,
        user_id: &str,
        webauthn_id: &Uuid,
    ) -> Result<Option<Ceremony>, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.keys.ceremony(user_id, &webauthn_id.to_string());
        let (owner, state, code, caller): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = redis::cmd("HMGET")
            .arg(&key)
            .arg(&["user", "state", "code", "caller"])
            .query_async(&mut conn)
            .await?;
        let (Some(owner), Some(state)) = (owner, state) else {
            return Ok(None);
        };
        if owner != user_id {
            return Ok(None);
        }
        let code_id =
            match code.as_deref() {
                None | Some("") => None,
                Some(id) => Some(id.parse().map_err(|_| {
                    StoreError::Protocol("a ceremony's code id is not a UUID".into())
                })?),
            };
        Ok(Some(Ceremony {
            state,
            code_id,
            caller_subject: caller.filter(|c| !c.is_empty()),
        }))
    }

    /// Ends a ceremony whose answer failed verification; its challenge must
    /// not be answered twice. The code stays as it was.
    pub async fn discard_ceremony(
        &self,
        user_id: &str,
        webauthn_id: &Uuid,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .del(self.keys.ceremony(user_id, &webauthn_id.to_string()))
            .await?;
        Ok(())
    }

    /// Stores a verified passkey and consumes the ceremony's code, atomically.
    pub async fn finish_registration(
        &self,
        req: &FinishRegistration<'_>,
    ) -> Result<FinishOutcome, StoreError> {
        let keys = &self.keys;
        let record = serde_json::to_string(req.passkey)
            .map_err(|err| StoreError::Protocol(format!("cannot encode a passkey: {err}")))?;
        let code_id = req.code_id.map(|id| id.to_string()).unwrap_or_default();
        let mut conn = self.conn.clone();
        let mut invocation =
            FINISH_REGISTRATION.key(keys.ceremony(req.user_id, &req.webauthn_id.to_string()));
        invocation
            .key(keys.user(req.user_id))
            .key(keys.passkeys(req.user_id))
            .key(keys.user_codes(req.user_id));
        if req.code_id.is_some() {
            invocation.key(keys.code(req.user_id, &code_id));
        }
        let reply: Vec<Value> = invocation
            .arg(req.user_id)
            .arg(&code_id)
            .arg(&req.passkey.id)
            .arg(record)
            .arg(req.now_ms)
            .arg(millis(req.retention).max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(match text_at(&reply, 0)?.as_str() {
            "OK" => FinishOutcome::Registered {
                sequence: u64::try_from(int_at(&reply, 1)?).unwrap_or(0),
                organization_id: text_at(&reply, 2)?,
            },
            "NOCEREMONY" => FinishOutcome::NoCeremony,
            "NOUSER" => FinishOutcome::UserNotFound,
            "DUPLICATE" => FinishOutcome::Duplicate,
            state => FinishOutcome::CodeNotLive(CodeState::parse(state, String::new(), 0)?),
        })
    }

    /// The user's passkeys, oldest first. A record that cannot be read is
    /// an error rather than a silently shorter list.
    pub async fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let values: Vec<String> = conn.hvals(self.keys.passkeys(user_id)).await?;
        parse_passkeys(values)
    }
}

/// Decodes stored passkey records, oldest first.
fn parse_passkeys(values: Vec<String>) -> Result<Vec<PasskeyRecord>, StoreError> {
    let mut records = values
        .iter()
        .map(|value| serde_json::from_str::<PasskeyRecord>(value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| StoreError::Protocol(format!("a stored passkey is not valid: {err}")))?;
    records.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
    Ok(records)
}
