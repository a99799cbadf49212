//! The API's settings, read once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use passlink_shared::config::{ConfigError, Reader, Source};
use passlink_shared::settings::CommonSettings;

use crate::auth::jwt::JwtSettings;
use crate::grpc::CorsPolicy;
use crate::registration::relying_party::RelyingParty;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub common: CommonSettings,
    pub listen: SocketAddr,
    pub tokens_file: PathBuf,
    /// JWTs from an OpenID Connect issuer, when configured.
    pub jwt: Option<JwtSettings>,
    pub http: HttpLimits,
    pub relay: RelaySettings,
    pub limits: RateLimits,
    /// Browser origins that may call the gRPC-web API.
    pub grpc_web_cors: CorsPolicy,
    /// Passkey registration: RP id, origins, ceremony lifetime.
    pub webauthn: RelyingParty,
    /// How long open requests and the relay may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// How long start-up waits for Redis.
    pub startup_patience: Duration,
}

/// Protection against oversized or slow clients.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// A client must send its complete request head within this time. The
    /// clock also runs while an HTTP/1 keep-alive connection waits for its
    /// next request, so it doubles as the idle timeout.
    pub header_read_timeout: Duration,
    /// A connection with no request open for this long is closed, whatever
    /// its protocol: also one that never sends a byte, or an HTTP/2
    /// connection kept up only by pings.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Rate limits, held in Redis so that they apply across API processes.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Links per user per `user_window`; 0 turns the limit off.
    pub user_links: u32,
    pub user_window: Duration,
    /// Requests per caller (token subject) per minute; 0 turns it off.
    pub caller_per_minute: u64,
    /// How often each process adds its caller counts in Redis.
    pub sync_interval: Duration,
}

/// How the outbox relay works.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// Parallel relay loops; each owns a share of the outbox shards.
    pub tasks: usize,
    /// Jobs read and published per shard and round.
    pub batch: usize,
    /// Jobs packed into one broker message at most.
    pub jobs_per_message: usize,
    /// How often the relay looks for work when nothing woke it.
    pub poll_interval: Duration,
    /// Jobs another API process took and left for this long are taken over.
    pub claim_idle: Duration,
    /// Upper bound to wait for the broker's confirms of one batch.
    pub confirm_timeout: Duration,
}

fn jwt_settings(r: &mut Reader<'_>) -> Option<JwtSettings> {
    let issuer = r.raw("PASSLINK_JWT_ISSUER")?;
    if url::Url::parse(&issuer).is_err() {
        r.fail("PASSLINK_JWT_ISSUER", "must be the issuer's URL");
    }
    let audience = r.list("PASSLINK_JWT_AUDIENCE", &[]);
    if audience.is_empty() {
        r.fail(
            "PASSLINK_JWT_AUDIENCE",
            "is required with PASSLINK_JWT_ISSUER",
        );
    }
    Some(JwtSettings {
        issuer,
        audience,
        jwks_url: r.raw("PASSLINK_JWT_JWKS_URL"),
        leeway: r.duration_in(
            "PASSLINK_JWT_LEEWAY",
            Duration::from_secs(30),
            Duration::from_secs(0)..=Duration::from_secs(300),
        ),
        org_claim: r.string("PASSLINK_JWT_ORG_CLAIM", "org_id"),
        permissions_claim: r.string("PASSLINK_JWT_PERMISSIONS_CLAIM", "permissions"),
        jwks_ttl: r.duration_in(
            "PASSLINK_JWT_JWKS_TTL",
            Duration::from_secs(600),
            Duration::from_secs(10)..=Duration::from_secs(86400),
        ),
        refresh_min_interval: r.duration_in(
            "PASSLINK_JWT_REFRESH_MIN_INTERVAL",
            Duration::from_secs(30),
            Duration::from_secs(1)..=Duration::from_secs(3600),
        ),
    })
}

impl ApiConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let mut r = Reader::new(source);
        let common = CommonSettings::read(&mut r);
        let webauthn = RelyingParty::read(&mut r, &common.public_base_url);
        let listen = r.parse("PASSLINK_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080)));
        let tokens_file = PathBuf::from(r.string("PASSLINK_TOKENS_FILE", "passlink-tokens.json"));
        let jwt = jwt_settings(&mut r);
        let http = HttpLimits {
            max_body_bytes: r.number("PASSLINK_MAX_BODY_BYTES", 64 * 1024, 256..=16 << 20),
            max_header_bytes: r.number("PASSLINK_MAX_HEADER_BYTES", 16 * 1024, 8192..=1 << 20),
            header_read_timeout: r.duration_in(
                "PASSLINK_HEADER_READ_TIMEOUT",
                Duration::from_secs(10),
                Duration::from_secs(1)..=Duration::from_secs(600),
            ),
            idle_timeout: r.duration_in(
                "PASSLINK_IDLE_TIMEOUT",
                Duration::from_secs(60),
                Duration::from_secs(1)..=Duration::from_secs(3600),
            ),
            max_connections: r.number("PASSLINK_MAX_CONNECTIONS", 4096, 1..=1_000_000),
        };
        let relay = RelaySettings {
            tasks: r.number("PASSLINK_RELAY_TASKS", 1, 1..=64),
            batch: r.number("PASSLINK_RELAY_BATCH", 500, 1..=10_000),
            jobs_per_message: r.number("PASSLINK_RELAY_JOBS_PER_MESSAGE", 200, 1..=1000),
            poll_interval: r.duration_in(
                "PASSLINK_RELAY_POLL_INTERVAL",
                Duration::from_millis(200),
                Duration::from_millis(10)..=Duration::from_secs(60),
            ),
            claim_idle: r.duration_in(
                "PASSLINK_RELAY_CLAIM_IDLE",
                Duration::from_secs(30),
                Duration::from_secs(1)..=Duration::from_secs(3600),
            ),
            confirm_timeout: r.duration_in(
                "PASSLINK_RELAY_CONFIRM_TIMEOUT",
                Duration::from_secs(15),
                Duration::from_secs(1)..=Duration::from_secs(300),
            ),
        };
        let limits = RateLimits {
            user_links: r.number("PASSLINK_RATE_USER_LINKS", 5, 0..=1_000_000),
            user_window: r.duration_in(
                "PASSLINK_RATE_USER_WINDOW",
                Duration::from_secs(3600),
                Duration::from_secs(1)..=Duration::from_secs(2592000),
            ),
            caller_per_minute: r.number("PASSLINK_RATE_CALLER_PER_MINUTE", 60_000, 0..=u64::MAX),
            sync_interval: r.duration_in(
                "PASSLINK_RATE_SYNC_INTERVAL",
                Duration::from_millis(100),
                Duration::from_millis(10)..=Duration::from_secs(60),
            ),
        };
        let grpc_web_cors = cors_policy(&mut r);
        let shutdown_grace = r.duration_in(
            "PASSLINK_SHUTDOWN_GRACE",
            Duration::from_secs(20),
            Duration::from_secs(0)..=Duration::from_secs(3600),
        );
        let startup_patience = r.duration_in(
            "PASSLINK_STARTUP_PATIENCE",
            Duration::from_secs(30),
            Duration::from_secs(0)..=Duration::from_secs(3600),
        );
        r.finish()?;

        // Reading records a line for every reason the relying party is
        // missing, so finish() has already refused a config without one.
        let webauthn = webauthn.ok_or_else(|| ConfigError {
            lines: vec!["PASSLINK_WEBAUTHN_RP_ID: no relying party could be built".into()],
        })?;
        Ok(Self {
            common,
            listen,
            tokens_file,
            jwt,
            http,
            relay,
            limits,
            grpc_web_cors,
            webauthn,
            shutdown_grace,
            startup_patience,
        })
    }
}

fn cors_policy(r: &mut Reader<'_>) -> CorsPolicy {
    const NAME: &str = "PASSLINK_GRPC_WEB_CORS_ORIGINS";
    let origins = r.list(NAME, &[]);
    CorsPolicy::from_list(&origins).unwrap_or_else(|err| {
        r.fail(NAME, err);
        CorsPolicy::Off
    })
}
