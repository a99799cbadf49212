//! Settings both binaries read, with their documented defaults.
//!
//! The README lists every variable; keep the two in step.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice};

use crate::amqp::AmqpSettings;
use crate::config::Reader;
use crate::link_template::LinkTemplate;
use crate::seal::{self, Sealer};
use crate::store::{DEFAULT_SHARDS, RedisSettings};
use crate::telemetry::LogFormat;

/// Path of the registration page the default link points at.
pub const REGISTER_PATH: &str = "/passkey/register";

/// Every setting a Passlink binary reads (the `_FILE` forms of secrets
/// included). Another `PASSLINK_` variable is most likely a typo, and a
/// typo'd setting silently keeps its default: binaries warn about them.
pub const KNOWN_SETTINGS: &[&str] = &[
    "PASSLINK_ALLOWED_LINK_SCHEMES",
    "PASSLINK_AMQP_EXCHANGE",
    "PASSLINK_AMQP_QUEUE",
    "PASSLINK_AMQP_QUORUM",
    "PASSLINK_AMQP_URL",
    "PASSLINK_CODE_HMAC_KEY",
    "PASSLINK_CODE_HMAC_KEY_FILE",
    "PASSLINK_CODE_LENGTH",
    "PASSLINK_CODE_TTL",
    "PASSLINK_DEFAULT_LINK_TEMPLATE",
    "PASSLINK_DEV_MODE",
    "PASSLINK_GRPC_WEB_CORS_ORIGINS",
    "PASSLINK_HEADER_READ_TIMEOUT",
    "PASSLINK_IDLE_TIMEOUT",
    "PASSLINK_JWT_AUDIENCE",
    "PASSLINK_JWT_ISSUER",
    "PASSLINK_JWT_JWKS_TTL",
    "PASSLINK_JWT_JWKS_URL",
    "PASSLINK_JWT_LEEWAY",
    "PASSLINK_JWT_ORG_CLAIM",
    "PASSLINK_JWT_PERMISSIONS_CLAIM",
    "PASSLINK_JWT_REFRESH_MIN_INTERVAL",
    "PASSLINK_LISTEN",
    "PASSLINK_LOG",
    "PASSLINK_LOG_FORMAT",
    "PASSLINK_MAIL_FROM",
    "PASSLINK_MAX_ATTEMPTS",
    "PASSLINK_MAX_BODY_BYTES",
    "PASSLINK_MAX_CONNECTIONS",
    "PASSLINK_MAX_HEADER_BYTES",
    "PASSLINK_PUBLIC_BASE_URL",
    "PASSLINK_QUEUE_METRICS_INTERVAL",
    "PASSLINK_RATE_CALLER_PER_MINUTE",
    "PASSLINK_RATE_SYNC_INTERVAL",
    "PASSLINK_RATE_USER_LINKS",
    "PASSLINK_RATE_USER_WINDOW",
    "PASSLINK_REDIS_CLUSTER_NODES",
    "PASSLINK_REDIS_PREFIX",
    "PASSLINK_REDIS_SHARDS",
    "PASSLINK_REDIS_TIMEOUT",
    "PASSLINK_REDIS_URL",
    "PASSLINK_RELAY_BATCH",
    "PASSLINK_RELAY_CLAIM_IDLE",
    "PASSLINK_RELAY_CONFIRM_TIMEOUT",
    "PASSLINK_RELAY_JOBS_PER_MESSAGE",
    "PASSLINK_RELAY_POLL_INTERVAL",
    "PASSLINK_RELAY_TASKS",
    "PASSLINK_RETRY_BASE_DELAY",
    "PASSLINK_RETRY_JITTER",
    "PASSLINK_RETRY_MAX_DELAY",
    "PASSLINK_RETRY_MULTIPLIER",
    "PASSLINK_SEAL_KEYS",
    "PASSLINK_SEAL_KEYS_FILE",
    "PASSLINK_SHUTDOWN_GRACE",
    "PASSLINK_SMTP_HOST",
    "PASSLINK_SMTP_PASSWORD",
    "PASSLINK_SMTP_PASSWORD_FILE",
    "PASSLINK_SMTP_POOL_SIZE",
    "PASSLINK_SMTP_PORT",
    "PASSLINK_SMTP_TIMEOUT",
    "PASSLINK_SMTP_TLS",
    "PASSLINK_SMTP_USERNAME",
    "PASSLINK_STARTUP_PATIENCE",
    "PASSLINK_STATUS_RETENTION",
    "PASSLINK_TEMPLATES_DIR",
    "PASSLINK_TOKENS_FILE",
    "PASSLINK_WEBAUTHN_CEREMONY_TTL",
    "PASSLINK_WEBAUTHN_ORIGINS",
    "PASSLINK_WEBAUTHN_RP_ID",
    "PASSLINK_WEBAUTHN_RP_NAME",
    "PASSLINK_WORKER_CONCURRENCY",
    "PASSLINK_WORKER_METRICS_LISTEN",
    "PASSLINK_WORKER_PREFETCH",
];

/// `PASSLINK_` variables in the environment that no binary reads.
pub fn unknown_settings_in_env() -> Vec<String> {
    let mut unknown: Vec<String> = std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("PASSLINK_") && !KNOWN_SETTINGS.contains(&name.as_str()))
        .collect();
    unknown.sort();
    unknown
}

/// Settings shared by the API and the worker.
#[derive(Clone, Debug)]
pub struct CommonSettings {
    pub redis: RedisSettings,
    pub amqp: AmqpSettings,
    pub code_hmac_key: SecretSlice<u8>,
    pub sealer: Sealer,
    pub code_length: usize,
    pub code_ttl: Duration,
    /// How long a delivery status is kept after its code expired.
    pub status_retention: Duration,
    /// Public address of the service, for links; never a request header.
    pub public_base_url: String,
    pub default_link: LinkTemplate,
    /// Extra link schemes allowed besides http and https (app links).
    pub allowed_link_schemes: Vec<String>,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Development mode: missing secrets get fixed, published values.
    pub dev_mode: bool,
}

/// Fixed secrets for development mode only; start-up refuses them otherwise.
const DEV_HMAC_KEY: &str = "cGFzc2xpbmstZGV2LWhtYWMta2V5LWRvLW5vdC11c2UtaW4tcHJvZA";
const DEV_SEAL_KEYS: &str = "dev:cGFzc2xpbmstZGV2LXNlYWwta2V5LW5vdC1wcm9kISE";

impl CommonSettings {
    pub fn read(reader: &mut Reader<'_>) -> Self {
        let dev_mode = reader.bool("PASSLINK_DEV_MODE", false);

        let prefix = reader.string("PASSLINK_REDIS_PREFIX", "passlink");
        if prefix.contains(['{', '}']) || prefix.is_empty() {
            reader.fail(
                "PASSLINK_REDIS_PREFIX",
                "must be non-empty and without braces",
            );
        }
        let redis_url = reader.string("PASSLINK_REDIS_URL", "redis://127.0.0.1:6379");
        if !["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|scheme| redis_url.starts_with(scheme))
        {
            reader.fail(
                "PASSLINK_REDIS_URL",
                "must start with redis://, rediss:// or unix://",
            );
        }
        let redis = RedisSettings {
            url: redis_url,
            cluster_nodes: reader.list("PASSLINK_REDIS_CLUSTER_NODES", &[]),
            prefix,
            shards: reader.number("PASSLINK_REDIS_SHARDS", DEFAULT_SHARDS, 1..=1024),
            timeout: reader.duration_in(
                "PASSLINK_REDIS_TIMEOUT",
                Duration::from_secs(5),
                Duration::from_millis(100)..=Duration::from_secs(300),
            ),
        };

        let amqp = AmqpSettings {
            url: reader.string("PASSLINK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            exchange: reader.string("PASSLINK_AMQP_EXCHANGE", "passlink"),
            queue: reader.string("PASSLINK_AMQP_QUEUE", "passlink.send_link"),
            quorum: reader.bool("PASSLINK_AMQP_QUORUM", false),
            max_attempts: reader.number("PASSLINK_MAX_ATTEMPTS", 5, 1..=20),
        };
        check_amqp(reader, &amqp);

        let hmac_given = reader.raw("PASSLINK_CODE_HMAC_KEY").is_some()
            || reader.raw("PASSLINK_CODE_HMAC_KEY_FILE").is_some();
        let code_hmac_key = match reader.secret_key("PASSLINK_CODE_HMAC_KEY", 32) {
            Some(key) => key,
            // A bad value was reported already; do not also call it missing.
            None if hmac_given => vec![0u8; 32].into(),
            None => dev_secret(reader, dev_mode, "PASSLINK_CODE_HMAC_KEY", || {
                crate::config::decode_key(DEV_HMAC_KEY).map(Into::into)
            }),
        };

        if !dev_mode && *code_hmac_key.expose_secret() == *dev_key(DEV_HMAC_KEY) {
            reader.fail(
                "PASSLINK_CODE_HMAC_KEY",
                "is the published development key; generate a random one",
            );
        }

        let seal_text = reader.secret_text("PASSLINK_SEAL_KEYS");
        let dev_seal = DEV_SEAL_KEYS.split_once(':').map_or("", |(_, k)| k);
        if !dev_mode && seal_text.as_deref().is_some_and(|t| t.contains(dev_seal)) {
            reader.fail(
                "PASSLINK_SEAL_KEYS",
                "holds the published development key; generate a random one",
            );
        }
        let sealer = match seal_text {
            Some(text) => seal::parse_keys(&text).and_then(|keys| {
                // One secret for two jobs: a leak of one would be a leak of both.
                if keys
                    .iter()
                    .any(|(_, k)| k.expose_secret() == code_hmac_key.expose_secret())
                {
                    return Err("must differ from PASSLINK_CODE_HMAC_KEY".to_owned());
                }
                Sealer::new(&keys)
            }),
            None if dev_mode => seal::parse_keys(DEV_SEAL_KEYS).and_then(|k| Sealer::new(&k)),
            None => Err(
                "is required (kid:base64 32-byte key, first one seals); set \
                         PASSLINK_DEV_MODE=true for built-in development keys"
                    .to_owned(),
            ),
        };
        let sealer = sealer.unwrap_or_else(|err| {
            reader.fail("PASSLINK_SEAL_KEYS", err);
            // A throwaway key keeps reading going; finish() reports the error.
            let key: SecretSlice<u8> = (1..=32u8).collect::<Vec<_>>().into();
            Sealer::new(&[("invalid".into(), key)]).expect("a 32-byte key is valid")
        });

        let public_base_url = reader
            .string("PASSLINK_PUBLIC_BASE_URL", "http://localhost:8080")
            .trim_end_matches('/')
            .to_owned();
        let base_ok = url::Url::parse(&public_base_url).is_ok_and(|u| u.host_str().is_some());
        if !base_ok {
            reader.fail(
                "PASSLINK_PUBLIC_BASE_URL",
                "must be an absolute URL with a host",
            );
        }
        let template_given = reader.raw("PASSLINK_DEFAULT_LINK_TEMPLATE").is_some();
        let default_template = reader.string(
            "PASSLINK_DEFAULT_LINK_TEMPLATE",
            &format!(
                "{public_base_url}{REGISTER_PATH}?userID={{{{.UserID}}}}&orgID={{{{.OrgID}}}}\
                 &codeID={{{{.CodeID}}}}#code={{{{.Code}}}}"
            ),
        );
        let allowed_link_schemes = reader.list("PASSLINK_ALLOWED_LINK_SCHEMES", &[]);
        for scheme in &allowed_link_schemes {
            let lower = scheme.to_ascii_lowercase();
            if [
                "javascript",
                "data",
                "vbscript",
                "file",
                "blob",
                "about",
                "filesystem",
            ]
            .contains(&lower.as_str())
            {
                reader.fail(
                    "PASSLINK_ALLOWED_LINK_SCHEMES",
                    format!("{scheme:?} can run code or read files; it cannot be allowed"),
                );
            }
        }
        let default_link = match LinkTemplate::parse_unbounded(&default_template)
            .and_then(|t| t.check(&allowed_link_schemes).map(|()| t))
            .and_then(|t| {
                if t.has_code() {
                    Ok(t)
                } else {
                    Err(crate::link_template::TemplateError::NoCode)
                }
            }) {
            Ok(template) => template,
            Err(err) => {
                // A default built from a bad base URL was reported with it.
                if template_given || base_ok {
                    reader.fail("PASSLINK_DEFAULT_LINK_TEMPLATE", err);
                }
                LinkTemplate::parse("https://invalid.example/").expect("a literal URL parses")
            }
        };

        Self {
            redis,
            amqp,
            code_hmac_key,
            sealer,
            code_length: reader.number("PASSLINK_CODE_LENGTH", 12, 6..=64),
            code_ttl: reader.duration_in(
                "PASSLINK_CODE_TTL",
                Duration::from_secs(3600),
                Duration::from_secs(1)..=Duration::from_secs(2592000),
            ),
            status_retention: reader.duration_in(
                "PASSLINK_STATUS_RETENTION",
                Duration::from_secs(24 * 3600),
                Duration::from_secs(60)..=Duration::from_secs(7776000),
            ),
            public_base_url,
            default_link,
            allowed_link_schemes,
            log_format: reader.parse("PASSLINK_LOG_FORMAT", LogFormat::Compact),
            log_filter: {
                // webauthn-rs logs a browser's malformed answer at ERROR, so
                // any holder of a code could fill the error log; Passlink logs
                // each rejection itself, at INFO with the reason.
                let filter = reader.string("PASSLINK_LOG", "info,webauthn_rs_core=off");
                if tracing_subscriber::EnvFilter::try_new(&filter).is_err() {
                    reader.fail("PASSLINK_LOG", format!("{filter:?} is not a log filter"));
                }
                filter
            },
            dev_mode,
        }
    }
}

fn dev_key(text: &str) -> Vec<u8> {
    crate::config::decode_key(text).unwrap_or_default()
}

fn dev_secret(
    reader: &mut Reader<'_>,
    dev_mode: bool,
    name: &str,
    dev_value: impl FnOnce() -> Option<SecretSlice<u8>>,
) -> SecretSlice<u8> {
    if !dev_mode {
        reader.fail(
            name,
            "is required (base64, at least 32 random bytes); set PASSLINK_DEV_MODE=true for \
             a built-in development key",
        );
    }
    dev_value().unwrap_or_else(|| vec![0u8; 32].into())
}

/// Refuses AMQP settings the broker would only refuse later, in a task that
/// then fails over and over: a URL that is not AMQP, and names over AMQP's
/// 255-byte limit (the queue's with its longest suffix) or in the `amq.`
/// namespace the broker keeps for itself.
fn check_amqp(reader: &mut Reader<'_>, amqp: &AmqpSettings) {
    if let Err(err) = amqp.url.parse::<lapin::uri::AMQPUri>() {
        // The URL holds a password: name the fault, not the value.
        reader.fail(
            "PASSLINK_AMQP_URL",
            format!("not an AMQP URL (amqp://user:password@host:port/vhost or amqps://…): {err}"),
        );
    }
    let longest_queue = amqp.retry_queue(*amqp.retries().end());
    let names = [
        (
            "PASSLINK_AMQP_EXCHANGE",
            amqp.exchange.as_str(),
            amqp.exchange.as_str(),
        ),
        (
            "PASSLINK_AMQP_QUEUE",
            amqp.queue.as_str(),
            longest_queue.as_str(),
        ),
    ];
    for (setting, name, longest) in names {
        if longest.len() > 255 {
            reader.fail(
                setting,
                format!(
                    "{longest:?} is {} bytes; AMQP names hold at most 255",
                    longest.len()
                ),
            );
        } else if name.starts_with("amq.") {
            reader.fail(setting, "names starting with amq. belong to the broker");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn production_needs_secrets_and_dev_mode_does_not() {
        let empty: HashMap<String, String> = HashMap::new();
        let mut reader = Reader::new(&empty);
        CommonSettings::read(&mut reader);
        let lines = reader.finish().unwrap_err().lines;
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("PASSLINK_CODE_HMAC_KEY"))
        );
        assert!(lines.iter().any(|l| l.starts_with("PASSLINK_SEAL_KEYS")));

        let dev: HashMap<String, String> =
            [("PASSLINK_DEV_MODE".to_owned(), "true".to_owned())].into();
        let mut reader = Reader::new(&dev);
        let settings = CommonSettings::read(&mut reader);
        reader.finish().unwrap();
        assert_eq!(settings.code_length, 12);

        let published: HashMap<String, String> = [
            ("PASSLINK_CODE_HMAC_KEY".to_owned(), DEV_HMAC_KEY.to_owned()),
            ("PASSLINK_SEAL_KEYS".to_owned(), DEV_SEAL_KEYS.to_owned()),
        ]
        .into();
        let mut reader = Reader::new(&published);
        CommonSettings::read(&mut reader);
        let lines = reader.finish().unwrap_err().lines;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains("published development key"))
        );
        assert_eq!(settings.code_ttl, Duration::from_secs(3600));
        assert_eq!(
            settings.default_link.to_string(),
            "http://localhost:8080/passkey/register?userID={{.UserID}}&orgID={{.OrgID}}\
             &codeID={{.CodeID}}#code={{.Code}}"
        );
    }
}
