//! Where things live in Redis.
//!
//! Every key of one user carries the same hash tag, `{<shard>}`, where the
//! shard is derived from the user id. All keys one request touches (user,
//! code, delivery status, the user's code index and the outbox of that shard)
//! therefore sit in one Redis Cluster slot, and one Lua script can change
//! them atomically on a single node or a cluster alike.
//!
//! The number of shards must be the same in every process and must not
//! change while data exists: a user's keys would move to another shard.

use std::sync::Arc;

/// Default number of shards (and outbox streams).
pub const DEFAULT_SHARDS: u16 = 16;

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
    shards: u16,
}

impl Keys {
    /// `prefix` must not contain braces, which would change the hash tag;
    /// configuration checks that.
    pub fn new(prefix: &str, shards: u16) -> Self {
        Self {
            prefix: prefix.into(),
            shards: shards.max(1),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    pub fn shard_of(&self, user_id: &str) -> u16 {
        (crc32fast::hash(user_id.as_bytes()) % u32::from(self.shards)) as u16
    }

    /// The part every key of a shard starts with, `prefix:{shard}:`.
    pub fn shard_base(&self, shard: u16) -> String {
        format!("{}:{{{shard}}}:", self.prefix)
    }

    fn user_base(&self, user_id: &str) -> String {
        self.shard_base(self.shard_of(user_id))
    }

    /// Hash: the directory entry and the user's sequence.
    pub fn user(&self, user_id: &str) -> String {
        format!("{}user:{user_id}", self.user_base(user_id))
    }

    /// Sorted set: the user's live code ids, scored by expiry.
    pub fn user_codes(&self, user_id: &str) -> String {
        format!("{}user_codes:{user_id}", self.user_base(user_id))
    }

    /// Sorted set: when the user's recent links were created, for the
    /// per-user rate limit.
    pub fn user_links(&self, user_id: &str) -> String {
        format!("{}user_links:{user_id}", self.user_base(user_id))
    }

    /// Hash: one code's keyed hash, expiry, failed attempts and fate. The key
    /// outlives the code's validity by the status retention, so that a late
    /// visitor learns "expired" or "used" rather than "unknown".
    pub fn code(&self, user_id: &str, code_id: &str) -> String {
        format!("{}code:{code_id}", self.user_base(user_id))
    }

    /// Hash: one passkey registration in progress (the WebAuthn challenge
    /// state and the code it was started with); expires with the ceremony.
    pub fn ceremony(&self, user_id: &str, webauthn_id: &str) -> String {
        format!("{}ceremony:{webauthn_id}", self.user_base(user_id))
    }

    /// Sorted set: the user's registrations in progress, by expiry.
    pub fn ceremonies(&self, user_id: &str) -> String {
        format!("{}ceremonies:{user_id}", self.user_base(user_id))
    }

    /// Hash: the user's registered passkeys, credential id (base64url) to
    /// the JSON record.
    pub fn passkeys(&self, user_id: &str) -> String {
        format!("{}passkeys:{user_id}", self.user_base(user_id))
    }

    /// Hash: the delivery status of one code's email.
    pub fn delivery(&self, user_id: &str, code_id: &str) -> String {
        format!("{}delivery:{code_id}", self.user_base(user_id))
    }

    /// Stream: send-link jobs waiting for the relay.
    pub fn outbox(&self, shard: u16) -> String {
        format!("{}outbox", self.shard_base(shard))
    }

    pub fn outbox_for(&self, user_id: &str) -> String {
        self.outbox(self.shard_of(user_id))
    }

    /// Every outbox, in shard order.
    pub fn outboxes(&self) -> Vec<String> {
        (0..self.shards).map(|s| self.outbox(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster uses: the text between the first `{` and
    /// the next `}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        &key[open + 1..close]
    }

    #[test]
    fn one_users_keys_share_a_slot_with_their_outbox() {
        let keys = Keys::new("passlink", 16);
        for user in ["1", "200000000000000042", "we{ird}/id", "é"] {
            let tag = hash_tag(&keys.user(user)).to_owned();
            for key in [
                keys.user_codes(user),
                keys.user_links(user),
                keys.code(user, "c"),
                keys.delivery(user, "c"),
                keys.ceremony(user, "w"),
                keys.ceremonies(user),
                keys.passkeys(user),
                keys.outbox_for(user),
            ] {
                assert_eq!(hash_tag(&key), tag, "{key}");
            }
        }
    }

    #[test]
    fn shards_spread_users() {
        let keys = Keys::new("p", 16);
        let used: std::collections::HashSet<u16> =
            (0..1000).map(|i| keys.shard_of(&i.to_string())).collect();
        assert_eq!(used.len(), 16);
        assert_eq!(keys.outboxes().len(), 16);
    }
}
