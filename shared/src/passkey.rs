//! A registered passkey as Passlink keeps it and the directory shows it.

use serde::{Deserialize, Serialize};

/// What a relying party needs to check a later assertion of the passkey,
/// and what a person needs to recognise it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyRecord {
    /// Credential id, base64url without padding.
    pub id: String,
    /// The name the person gave it (`webAuthNName`).
    pub name: String,
    /// The credential public key as a COSE_Key (RFC 9052), base64url
    /// without padding: the format WebAuthn itself uses, so that any
    /// verifier can read it.
    pub public_key: String,
    /// COSE algorithm identifier, such as -7 (ES256) or -257 (RS256).
    pub algorithm: i64,
    /// The authenticator's signature counter at registration; many
    /// passkeys always report 0.
    pub counter: u32,
    /// Unix milliseconds of the registration.
    pub created_ms: i64,
    /// The credential may be synced or backed up to other devices.
    pub backup_eligible: bool,
    /// The credential is backed up right now.
    pub backup_state: bool,
}
