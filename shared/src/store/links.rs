//! Creating a registration code: the request path's single round trip.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};
use uuid::Uuid;

use super::{Store, StoreError, int_at, org_scope_arg, text_at};
use crate::time::millis;

static CREATE_LINK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/create_link.lua")));

/// What the API asks the store to record.
#[derive(Debug)]
pub struct CreateLink<'a> {
    pub user_id: &'a str,
    pub caller_subject: &'a str,
    /// The caller may act in every organization.
    pub all_orgs: bool,
    /// Otherwise, the organizations it may act in.
    pub orgs: &'a [String],
    pub code_id: Uuid,
    pub job_id: Uuid,
    /// Keyed hash of the code; the plain code never reaches Redis.
    pub code_hash: &'a str,
    pub now_ms: i64,
    pub validity: Duration,
    /// The encoded send-link job, or `None` for `returnCode`.
    pub job: Option<&'a [u8]>,
    /// How long the delivery status outlives the code.
    pub status_retention: Duration,
    /// Links allowed per user in `limit_window`; 0 for no limit.
    pub user_limit: u32,
    pub limit_window: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub struct CreatedLink {
    pub sequence: u64,
    pub organization_id: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Created(CreatedLink),
    UserNotFound,
    Denied,
    /// The user had too many links lately; the next one is allowed then.
    Limited {
        retry_after: Duration,
    },
}

impl Store {
    /// Looks the user up, checks the caller's organizations, records the
    /// code, counts the user's sequence and, for `sendLink`, appends the job
    /// to the outbox, all atomically.
    pub async fn create_link(&self, req: &CreateLink<'_>) -> Result<LinkOutcome, StoreError> {
        let keys = &self.keys;
        let code_id = req.code_id.to_string();
        let mut conn = self.conn.clone();

        let reply: Vec<Value> = CREATE_LINK
            .key(keys.user(req.user_id))
            .key(keys.code(req.user_id, &code_id))
            .key(keys.delivery(req.user_id, &code_id))
            .key(keys.outbox_for(req.user_id))
            .key(keys.user_codes(req.user_id))
            .key(keys.user_links(req.user_id))
            .arg(req.user_id)
            .arg(req.caller_subject)
            .arg(org_scope_arg(req.all_orgs, req.orgs))
            .arg(&code_id)
            .arg(req.code_hash)
            .arg(req.now_ms)
            .arg(millis(req.validity))
            .arg(req.job.unwrap_or_default())
            .arg(millis(req.status_retention))
            .arg(req.job_id.to_string())
            .arg(req.user_limit)
            .arg(millis(req.limit_window))
            .invoke_async(&mut conn)
            .await?;

        match text_at(&reply, 0)?.as_str() {
            "OK" => Ok(LinkOutcome::Created(CreatedLink {
                sequence: int_at(&reply, 1)? as u64,
                organization_id: text_at(&reply, 2)?,
            })),
            "NOTFOUND" => Ok(LinkOutcome::UserNotFound),
            "DENIED" => Ok(LinkOutcome::Denied),
            "LIMITED" => Ok(LinkOutcome::Limited {
                retry_after: Duration::from_millis(int_at(&reply, 1)?.max(0) as u64),
            }),
            other => Err(StoreError::Protocol(format!("create_link said {other}"))),
        }
    }
}
