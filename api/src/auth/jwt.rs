//! JWT access tokens from an OpenID Connect issuer.
//!
//! Signatures are checked against the issuer's JSON Web Key Set (RS256,
//! ES256 and EdDSA only; `none` and shared-secret algorithms are refused),
//! with `iss`, `aud`, `exp` and `nbf` checked under a small leeway. The key
//! set is cached; a token with an unknown key id refreshes it, but at most
//! once per `refresh_min_interval`, so a flood of made-up key ids cannot
//! hammer the issuer. The subject, organizations and permissions come from
//! configurable claims.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use passlink_shared::error::ApiError;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::Caller;

/// How the API trusts JWTs.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// Expected `iss`; also where discovery looks for the key set.
    pub issuer: String,
    /// Accepted `aud` values (one must match).
    pub audience: Vec<String>,
    /// The key set's URL; discovered from the issuer when not set.
    pub jwks_url: Option<String>,
    pub leeway: Duration,
    /// Claim with the organization id or ids (string or array; `*` = all).
    pub org_claim: String,
    /// Claim with the permissions (array, or a space-separated string).
    pub permissions_claim: String,
    /// Keys are fetched again after this long.
    pub jwks_ttl: Duration,
    /// Least time between two fetches caused by unknown key ids.
    pub refresh_min_interval: Duration,
}

struct KeySet {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Option<Instant>,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    http: reqwest::Client,
    keys: RwLock<KeySet>,
    /// Held while fetching, so concurrent misses cause one fetch; holds the
    /// time of the last fetch attempt.
    fetching: Mutex<Option<Instant>>,
}

const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

fn invalid(reason: &str) -> ApiError {
    ApiError::unauthenticated(
        "AUTH-JWT-INVALID",
        format!("The bearer token is not valid: {reason}"),
    )
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Self {
            settings,
            http,
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                fetched: None,
            }),
            fetching: Mutex::new(None),
        })
    }

    /// Fetches the key set once at start-up; a failure is logged, and the
    /// first token will try again.
    pub async fn warm_up(&self) {
        if let Err(err) = self.refresh(true).await {
            tracing::warn!(error = %err, "cannot fetch the JWT key set yet");
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let header = decode_header(token).map_err(|_| invalid("malformed token"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid("the signing algorithm is not accepted"));
        }
        let kid = header.kid.unwrap_or_default();
        let (alg, key) = self.key(&kid).await?;
        if alg != header.alg {
            return Err(invalid("the algorithm does not match the key"));
        }

        let mut validation = Validation::new(alg);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&self.settings.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Value>(token, &key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthenticated("AUTH-JWT-EXPIRED", "The bearer token has expired")
                }
                ErrorKind::ImmatureSignature => invalid("the token is not valid yet"),
                ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                ErrorKind::InvalidAudience => invalid("wrong audience"),
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::MissingRequiredClaim(claim) => {
                    invalid(&format!("the claim {claim} is missing"))
                }
                _ => invalid("the token cannot be read"),
            }
        })?;
        self.caller(&data.claims)
    }

    fn caller(&self, claims: &Value) -> Result<Caller, ApiError> {
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("the claim sub is missing"))?
            .to_owned();
        let orgs = strings(&claims[&self.settings.org_claim]);
        let all_orgs = orgs.iter().any(|o| o == "*");
        Ok(Caller {
            subject,
            all_orgs,
            orgs: orgs.into_iter().filter(|o| o != "*").collect(),
            permissions: strings(&claims[&self.settings.permissions_claim]),
        })
    }

    /// The key for `kid`, refreshing the set when it is unknown or stale.
    async fn key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), ApiError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys
                .fetched
                .is_some_and(|at| at.elapsed() < self.settings.jwks_ttl);
            if let Some(found) = lookup(&keys.keys, kid)
                && fresh
            {
                return Ok(found);
            }
        }
        if let Err(err) = self.refresh(false).await {
            tracing::warn!(error = %err, "cannot refresh the JWT key set");
        }
        let keys = self.keys.read().await;
        lookup(&keys.keys, kid).ok_or_else(|| invalid("unknown signing key"))
    }

    /// Fetches the key set, unless another task just did or the last
    /// attempt was too recent (`force` skips the latter, for start-up).
    async fn refresh(&self, force: bool) -> Result<(), String> {
        let mut last = self.fetching.lock().await;
        if !force && last.is_some_and(|at| at.elapsed() < self.settings.refresh_min_interval) {
            return Ok(());
        }
        *last = Some(Instant::now());

        let url = match &self.settings.jwks_url {
            Some(url) => url.clone(),
            None => self.discover().await?,
        };
        let set: JwkSet = self.get_json(&url).await?;

        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(alg) = jwk_algorithm(jwk) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.insert(jwk.common.key_id.clone().unwrap_or_default(), (alg, key));
        }
        tracing::info!(keys = keys.len(), "JWT key set loaded");
        *self.keys.write().await = KeySet {
            keys,
            fetched: Some(Instant::now()),
        };
        Ok(())
    }

    /// GETs `url` and decodes its JSON body; errors name the URL.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("fetching {url}: {err}"))?
            .json()
            .await
            .map_err(|err| format!("{url} is not what was expected: {err}"))
    }

    async fn discover(&self) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let config: Value = self.get_json(&url).await?;
        config["jwks_uri"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{url} names no jwks_uri"))
    }
}

/// The key for `kid`; a token without a key id may use the only key.
fn lookup(
    keys: &HashMap<String, (Algorithm, DecodingKey)>,
    kid: &str,
) -> Option<(Algorithm, DecodingKey)> {
    match keys.get(kid) {
        Some(found) => Some(found.clone()),
        None if kid.is_empty() && keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}

/// The algorithm a key is for: its `alg`, or the one its type implies.
fn jwk_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => return Some(Algorithm::RS256),
        Some(KeyAlgorithm::ES256) => return Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) => return Some(Algorithm::EdDSA),
        Some(_) => return None,
        None => {}
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

/// A claim as a list of strings: an array, or a space-separated string
/// (as OAuth's `scope`).
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_lists() {
        assert_eq!(strings(&serde_json::json!("a b  c")), ["a", "b", "c"]);
        assert_eq!(strings(&serde_json::json!(["x", 1, "y"])), ["x", "y"]);
        assert!(strings(&Value::Null).is_empty());
    }
}
