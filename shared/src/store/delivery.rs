//! Delivery status of each code's email, and the claim that keeps two
//! workers from sending the same email.
//!
//! A worker claims a job before it talks to SMTP and records it as sent after
//! the server accepted the message. A claim is a lease: if the worker dies,
//! the lease runs out and a redelivered copy may claim it again. A crash
//! between SMTP's acceptance and the `sent` record is the one window in which
//! an email can go out twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};
use serde::Serialize;

use super::{Store, StoreError, int_at, text_at};
use crate::job::SendLinkJob;
use crate::time::millis;

static CLAIM_DELIVERY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/claim_delivery.lua")));

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Queued,
    Sending,
    Sent,
    Retrying,
    Failed,
    Expired,
    /// The code was removed (its user was deleted) before the email went out.
    Revoked,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Failed => "failed",
            DeliveryState::Expired => "expired",
            DeliveryState::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => DeliveryState::Queued,
            "sending" => DeliveryState::Sending,
            "sent" => DeliveryState::Sent,
            "retrying" => DeliveryState::Retrying,
            "failed" => DeliveryState::Failed,
            "expired" => DeliveryState::Expired,
            "revoked" => DeliveryState::Revoked,
            _ => return None,
        })
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the status endpoint shows for one code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub state: DeliveryState,
    pub job_id: String,
    pub attempt: u32,
    /// Unix milliseconds of the next try, while retrying.
    pub next_attempt_ms: Option<i64>,
    /// Why the last try failed, or why the job ended.
    pub reason: Option<String>,
    pub updated_ms: i64,
    /// When the code stops working.
    pub expires_ms: Option<i64>,
}

/// The outcome of claiming a job.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Send it: the recipient as the directory knows them now.
    Claimed {
        organization_id: String,
        email: String,
        display_name: String,
        language: String,
    },
    /// Already sent; drop this copy.
    Duplicate,
    /// Another worker is sending it right now (its lease ends then).
    Busy { lease_until_ms: i64 },
    /// Nothing to send: the code expired or was revoked.
    Gone(DeliveryState),
}

impl Store {
    /// Claims `job` for one send attempt.
    pub async fn claim_delivery(
        &self,
        job: &SendLinkJob,
        attempt: u32,
        now_ms: i64,
        lease: Duration,
        retention: Duration,
    ) -> Result<Claim, StoreError> {
        let keys = &self.keys;
        let code_id = job.code_id.to_string();
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = CLAIM_DELIVERY
            .key(keys.code(&job.user_id, &code_id))
            .key(keys.delivery(&job.user_id, &code_id))
            .key(keys.user(&job.user_id))
            .arg(job.job_id.to_string())
            .arg(now_ms)
            .arg(millis(lease))
            .arg(attempt)
            .arg(job.expires_at_ms)
            .arg(millis(retention))
            .arg(&job.user_id)
            .invoke_async(&mut conn)
            .await?;

        match text_at(&reply, 0)?.as_str() {
            "CLAIMED" => Ok(Claim::Claimed {
                organization_id: text_at(&reply, 1)?,
                email: text_at(&reply, 2)?,
                display_name: text_at(&reply, 3)?,
                language: text_at(&reply, 4)?,
            }),
            "DUPLICATE" => Ok(Claim::Duplicate),
            "BUSY" => Ok(Claim::Busy {
                lease_until_ms: int_at(&reply, 1)?,
            }),
            "GONE" if text_at(&reply, 1)? == "expired" => Ok(Claim::Gone(DeliveryState::Expired)),
            "GONE" => Ok(Claim::Gone(DeliveryState::Revoked)),
            other => Err(StoreError::Protocol(format!("claim_delivery said {other}"))),
        }
    }

    /// Records a state change after a send attempt.
    ///
    /// `next_attempt_ms` is kept only for [`DeliveryState::Retrying`];
    /// `reason` replaces the previous one (or clears it when `None`).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_delivery(
        &self,
        job: &SendLinkJob,
        state: DeliveryState,
        attempt: u32,
        next_attempt_ms: Option<i64>,
        reason: Option<&str>,
        now_ms: i64,
        retention: Duration,
    ) -> Result<(), StoreError> {
        let key = self.keys.delivery(&job.user_id, &job.code_id.to_string());
        let mut set: Vec<(&str, String)> = vec![
            ("state", state.as_str().to_owned()),
            ("job", job.job_id.to_string()),
            ("attempt", attempt.to_string()),
            ("updated", now_ms.to_string()),
            ("exp", job.expires_at_ms.to_string()),
            ("user", job.user_id.clone()),
        ];
        let mut clear = vec!["lease"];
        match next_attempt_ms {
            Some(at) => set.push(("next_at", at.to_string())),
            None => clear.push("next_at"),
        }
        match reason {
            Some(reason) => set.push(("reason", reason.to_owned())),
            None => clear.push("reason"),
        }
        let ttl = (job.expires_at_ms - now_ms).max(0) + millis(retention);

        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &set)
            .ignore()
            .hdel(&key, clear)
            .ignore()
            .pexpire(&key, ttl)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The delivery status of one code, if it is still kept. Before a
    /// worker claims the job, the code record says it is queued.
    pub async fn delivery_status(
        &self,
        user_id: &str,
        code_id: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let mut conn = self.conn.clone();
        let (delivery, code): (HashMap<String, String>, HashMap<String, String>) = redis::pipe()
            .hgetall(self.keys.delivery(user_id, code_id))
            .hgetall(self.keys.code(user_id, code_id))
            .query_async(&mut conn)
            .await?;
        let number = |map: &HashMap<String, String>, name: &str| {
            map.get(name).and_then(|v| v.parse::<i64>().ok())
        };
        // Code ids are not secret (they travel in links): a status is shown
        // only under the user it belongs to.
        let owner = delivery.get("user").or_else(|| code.get("user"));
        if owner.is_some_and(|owner| owner != user_id) {
            return Ok(None);
        }
        if let Some(state) = delivery.get("state").and_then(|s| DeliveryState::parse(s)) {
            return Ok(Some(DeliveryStatus {
                state,
                job_id: delivery.get("job").cloned().unwrap_or_default(),
                attempt: number(&delivery, "attempt")
                    .unwrap_or(0)
                    .clamp(0, i64::from(u32::MAX)) as u32,
                next_attempt_ms: number(&delivery, "next_at"),
                reason: delivery.get("reason").cloned(),
                updated_ms: number(&delivery, "updated").unwrap_or(0),
                expires_ms: number(&delivery, "exp"),
            }));
        }
        let Some(job_id) = code.get("job") else {
            return Ok(None);
        };
        Ok(Some(DeliveryStatus {
            state: DeliveryState::Queued,
            job_id: job_id.clone(),
            attempt: 0,
            next_attempt_ms: None,
            reason: None,
            updated_ms: number(&code, "created").unwrap_or(0),
            expires_ms: number(&code, "exp"),
        }))
    }
}
