//! The user directory: who Passlink may send links to.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::{AsyncCommands, Script, Value};

use super::{Store, StoreError, int_at, org_scope_arg, text_at};
use crate::user::User;

static UPSERT_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/upsert_user.lua")));
static DELETE_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/delete_user.lua")));

/// A user as stored, with its change counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUser {
    pub user: User,
    pub sequence: u64,
    /// Unix milliseconds of the last change.
    pub changed_ms: i64,
}

/// The result of a write to the directory.
#[derive(Debug, PartialEq, Eq)]
pub enum UserChange {
    Created {
        sequence: u64,
    },
    Updated {
        sequence: u64,
    },
    Deleted {
        sequence: u64,
        organization_id: String,
    },
    NotFound,
    Denied,
}

impl Store {
    /// Creates or replaces `user`. The caller needs write access to the new
    /// organization and, when replacing, to the old one.
    pub async fn put_user(
        &self,
        user: &User,
        now_ms: i64,
        all_orgs: bool,
        orgs: &[String],
    ) -> Result<UserChange, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = self
            .upsert_invocation(user, now_ms, all_orgs, orgs)
            .invoke_async(&mut conn)
            .await?;
        upsert_outcome(&reply)
    }

    /// Writes many users in one pipeline per shard, for the bulk import;
    /// grouping by shard keeps every pipeline in one cluster slot. Returns
    /// one outcome per user, in the order given.
    pub async fn put_users(
        &self,
        users: &[User],
        now_ms: i64,
    ) -> Result<Vec<UserChange>, StoreError> {
        let mut conn = self.conn.clone();
        let mut by_shard: HashMap<u16, Vec<usize>> = HashMap::new();
        for (index, user) in users.iter().enumerate() {
            by_shard
                .entry(self.keys.shard_of(&user.id))
                .or_default()
                .push(index);
        }

        let mut outcomes: Vec<Option<UserChange>> = users.iter().map(|_| None).collect();
        for indexes in by_shard.values() {
            // The first write goes alone: invoking the script loads it on the
            // node that owns this shard, so the pipeline can use EVALSHA.
            let (&first, rest) = indexes.split_first().expect("groups are never empty");
            let reply: Vec<Value> = self
                .upsert_invocation(&users[first], now_ms, true, &[])
                .invoke_async(&mut conn)
                .await?;
            outcomes[first] = Some(upsert_outcome(&reply)?);
            if rest.is_empty() {
                continue;
            }

            let mut pipe = redis::pipe();
            for &index in rest {
                let user = &users[index];
                pipe.cmd("EVALSHA")
                    .arg(UPSERT_USER.get_hash())
                    .arg(1)
                    .arg(self.keys.user(&user.id))
                    .arg(&user.organization_id)
                    .arg(&user.email)
                    .arg(&user.display_name)
                    .arg(&user.preferred_language)
                    .arg(now_ms)
                    .arg("*");
            }
            let replies: Vec<Vec<Value>> = pipe.query_async(&mut conn).await?;
            for (&index, reply) in rest.iter().zip(&replies) {
                outcomes[index] = Some(upsert_outcome(reply)?);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::Protocol("a pipeline reply is missing".into())))
            .collect()
    }

    fn upsert_invocation<'a>(
        &'a self,
        user: &'a User,
        now_ms: i64,
        all_orgs: bool,
        orgs: &[String],
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = UPSERT_USER.key(self.keys.user(&user.id));
        invocation
            .arg(&user.organization_id)
            .arg(&user.email)
            .arg(&user.display_name)
            .arg(&user.preferred_language)
            .arg(now_ms)
            .arg(org_scope_arg(all_orgs, orgs));
        invocation
    }

    /// Reads one user; `None` when the directory does not know it.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<StoredUser>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn.hgetall(self.keys.user(user_id)).await?;
        let Some(org) = fields.get("org") else {
            return Ok(None);
        };
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        Ok(Some(StoredUser {
            user: User {
                id: user_id.to_owned(),
                organization_id: org.clone(),
                email: field("email"),
                display_name: field("name"),
                preferred_language: field("lang"),
            },
            sequence: field("seq").parse().unwrap_or(0),
            changed_ms: field("changed").parse().unwrap_or(0),
        }))
    }

    /// Removes a user and its live codes, if the caller may write its
    /// organization; the status of an email not sent yet becomes revoked
    /// and is kept for `retention` past the code's expiry.
    pub async fn delete_user(
        &self,
        user_id: &str,
        now_ms: i64,
        all_orgs: bool,
        orgs: &[String],
        retention: std::time::Duration,
    ) -> Result<UserChange, StoreError> {
        let keys = &self.keys;
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = DELETE_USER
            .key(keys.user(user_id))
            .key(keys.user_codes(user_id))
            .key(keys.passkeys(user_id))
            .key(keys.ceremonies(user_id))
            .arg(org_scope_arg(all_orgs, orgs))
            .arg(now_ms)
            .arg(keys.shard_base(keys.shard_of(user_id)))
            .arg(user_id)
            .arg(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await?;
        match text_at(&reply, 0)?.as_str() {
            "OK" => Ok(UserChange::Deleted {
                sequence: int_at(&reply, 1)? as u64,
                organization_id: text_at(&reply, 2)?,
            }),
            "NOTFOUND" => Ok(UserChange::NotFound),
            "DENIED" => Ok(UserChange::Denied),
            other => Err(StoreError::Protocol(format!("delete_user said {other}"))),
        }
    }
}

fn upsert_outcome(reply: &[Value]) -> Result<UserChange, StoreError> {
    match text_at(reply, 0)?.as_str() {
        "CREATED" => Ok(UserChange::Created {
            sequence: int_at(reply, 1)? as u64,
        }),
        "UPDATED" => Ok(UserChange::Updated {
            sequence: int_at(reply, 1)? as u64,
        }),
        "DENIED" => Ok(UserChange::Denied),
        other => Err(StoreError::Protocol(format!("upsert_user said {other}"))),
    }
}
