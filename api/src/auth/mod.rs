//! Who is calling, and what they may do.
//!
//! The embedded default is a tokens file: for each bearer token it holds the
//! SHA-256 of the token (never the token), a subject, the organizations the
//! token may act in and its permissions. Tokens are long random strings, so
//! an unsalted fast hash is enough to make a leaked file useless; lookups go
//! by digest, which reveals nothing about a token through timing.
//!
//! With an OpenID Connect issuer configured, bearer tokens shaped like JWTs
//! are verified against the issuer's keys instead (see [`jwt`]).

pub mod jwt;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use http::HeaderMap;
use passlink_shared::error::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Permission to create registration links.
pub const PASSKEY_WRITE: &str = "user.passkey.write";
/// Permission to manage the user directory.
pub const USER_WRITE: &str = "user.write";
/// Every permission Passlink checks. A tokens file naming another one has a
/// typo that would only show later as 403s, so it is refused at start-up.
pub const PERMISSIONS: [&str; 2] = [PASSKEY_WRITE, USER_WRITE];

/// The tokens file as stored on disk.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub tokens: Vec<TokenEntry>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Hex SHA-256 of the token.
    pub sha256: String,
    pub subject: String,
    /// Organization ids, or `"*"` for all.
    pub organizations: Vec<String>,
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub all_orgs: bool,
    pub orgs: Vec<String>,
    pub permissions: Vec<String>,
}

/// Where a caller may use one permission.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub all_orgs: bool,
    pub orgs: &'a [String],
}

impl Caller {
    /// The organizations in which the caller holds `permission`, or `None`
    /// if it holds it nowhere.
    pub fn scope(&self, permission: &str) -> Option<Scope<'_>> {
        let held = self.permissions.iter().any(|p| p == permission);
        (held && (self.all_orgs || !self.orgs.is_empty())).then_some(Scope {
            all_orgs: self.all_orgs,
            orgs: &self.orgs,
        })
    }
}

/// Checks bearer tokens.
pub struct Authenticator {
    by_digest: HashMap<[u8; 32], Arc<Caller>>,
    jwt: Option<jwt::JwtVerifier>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authenticator({} tokens)", self.by_digest.len())
    }
}

impl Authenticator {
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read tokens file {}: {err}", path.display()))?;
        let file: TokenFile = serde_json::from_str(&text)
            .map_err(|err| format!("tokens file {} is not valid: {err}", path.display()))?;
        Self::from_entries(&file.tokens)
    }

    pub fn from_entries(entries: &[TokenEntry]) -> Result<Self, String> {
        let mut by_digest = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let digest: [u8; 32] = hex::decode(entry.sha256.trim())
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| format!("token {} has no valid sha256", index + 1))?;
            if entry.subject.trim().is_empty() {
                return Err(format!("token {} has no subject", index + 1));
            }
            if let Some(unknown) = entry
                .permissions
                .iter()
                .find(|p| !PERMISSIONS.contains(&p.as_str()))
            {
                return Err(format!(
                    "token {} has the unknown permission {unknown:?}; the permissions are {}",
                    index + 1,
                    PERMISSIONS.join(" and ")
                ));
            }
            let all_orgs = entry.organizations.iter().any(|o| o == "*");
            let caller = Caller {
                subject: entry.subject.clone(),
                all_orgs,
                orgs: entry
                    .organizations
                    .iter()
                    .filter(|o| *o != "*")
                    .cloned()
                    .collect(),
                permissions: entry.permissions.clone(),
            };
            if by_digest.insert(digest, Arc::new(caller)).is_some() {
                return Err(format!("token {} is listed twice", index + 1));
            }
        }
        Ok(Self {
            by_digest,
            jwt: None,
        })
    }

    /// Also accepts JWTs from an OpenID Connect issuer.
    pub fn with_jwt(mut self, verifier: jwt::JwtVerifier) -> Self {
        self.jwt = Some(verifier);
        self
    }

    pub fn jwt(&self) -> Option<&jwt::JwtVerifier> {
        self.jwt.as_ref()
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// The caller behind the request's bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Caller>, ApiError> {
        let token = bearer_token(headers)?;
        if let Some(verifier) = &self.jwt
            && token.split('.').count() == 3
        {
            return verifier.verify(token).await.map(Arc::new);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_digest.get(&digest).cloned().ok_or_else(|| {
            ApiError::unauthenticated("AUTH-TOKEN-INVALID", "The bearer token is not valid")
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "AUTH-TOKEN-MISSING",
            "An Authorization: Bearer token is required",
        ));
    };
    let malformed = || {
        ApiError::unauthenticated(
            "AUTH-TOKEN-MALFORMED",
            "The Authorization header must be Bearer followed by a token",
        )
    };
    // Two Authorization headers would leave which one counts to chance.
    if headers.get_all(http::header::AUTHORIZATION).iter().count() > 1 {
        return Err(malformed());
    }
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

/// A new random token and its file entry.
pub fn new_token(
    subject: &str,
    organizations: Vec<String>,
    permissions: Vec<String>,
) -> (String, TokenEntry) {
    use rand::RngExt;
    use rand::distr::Alphanumeric;
    let secret: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let token = format!("pl_{secret}");
    let entry = TokenEntry {
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
        subject: subject.to_owned(),
        organizations,
        permissions,
        description: None,
    };
    (token, entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn authenticates_by_hash_and_scopes_permissions() {
        let (token, entry) = new_token("backend", vec!["org1".into()], vec![PASSKEY_WRITE.into()]);
        assert!(!entry.sha256.contains(&token));
        let auth = Authenticator::from_entries(&[entry]).unwrap();

        let bearer = headers(&format!("Bearer {token}"));
        let caller = auth.authenticate(&bearer).await.unwrap();
        assert_eq!(caller.subject, "backend");
        assert!(caller.scope(PASSKEY_WRITE).is_some());
        assert!(caller.scope(USER_WRITE).is_none());
        let lowercase = headers(&format!("bearer  {token} "));
        assert!(auth.authenticate(&lowercase).await.is_ok());

        for bad in ["Bearer nope", "Basic abc", "Bearer", &token] {
            let err = auth.authenticate(&headers(bad)).await.unwrap_err();
            assert_eq!(
                err.code,
                passlink_shared::error::Code::Unauthenticated,
                "{bad}"
            );
            assert!(!err.message.contains(&token));
        }
        let err = auth.authenticate(&HeaderMap::new()).await.unwrap_err();
        assert_eq!(err.id, "AUTH-TOKEN-MISSING");

        let mut twice = headers(&format!("Bearer {token}"));
        twice.append(http::header::AUTHORIZATION, "Bearer other".parse().unwrap());
        let err = auth.authenticate(&twice).await.unwrap_err();
        assert_eq!(err.id, "AUTH-TOKEN-MALFORMED");
    }

    #[test]
    fn refuses_broken_files() {
        let (_, mut entry) = new_token("a", vec!["*".into()], vec![]);
        assert!(Authenticator::from_entries(&[entry.clone(), entry.clone()]).is_err());
        entry.sha256 = "xyz".into();
        assert!(Authenticator::from_entries(&[entry]).is_err());

        let (_, typo) = new_token("a", vec!["*".into()], vec!["user.passkey.wirte".into()]);
        let err = Authenticator::from_entries(&[typo]).err().unwrap();
        assert!(
            err.contains("unknown permission \"user.passkey.wirte\""),
            "{err}"
        );
        let (_, self_service) = new_token("user-1", vec![], vec![]);
        assert!(Authenticator::from_entries(&[self_service]).is_ok());
    }
}
