//! The API's settings, read once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use passlink_shared::config::{ConfigError, Reader, Source};
use passlink_shared::settings::CommonSettings;

use crate::registration::relying_party::RelyingParty;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub common: CommonSettings,
    pub listen: SocketAddr,
    pub tokens_file: PathBuf,
    pub http: HttpLimits,
    pub relay: RelaySettings,
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
    pub max_connections: usize,
}

/// How the outbox relay works.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// Parallel relay loops; each owns a share of the outbox shards.
    pub tasks: usize,
    /// Jobs read and published per shard and round.
    pub batch: usize,
    /// How often the relay looks for work when nothing woke it.
    pub poll_interval: Duration,
    /// Jobs another API process took and left for this long are taken over.
    pub claim_idle: Duration,
    /// Upper bound to wait for the broker's confirms of one batch.
    pub confirm_timeout: Duration,
}

impl ApiConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let mut r = Reader::new(source);
        let common = CommonSettings::read(&mut r);
        let webauthn = RelyingParty::read(&mut r, &common.public_base_url);
        let listen = r.parse("PASSLINK_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080)));
        let tokens_file = PathBuf::from(r.string("PASSLINK_TOKENS_FILE", "passlink-tokens.json"));
        let http = HttpLimits {
            max_body_bytes: r.number("PASSLINK_MAX_BODY_BYTES", 64 * 1024, 256..=16 << 20),
            max_header_bytes: r.number("PASSLINK_MAX_HEADER_BYTES", 16 * 1024, 8192..=1 << 20),
            header_read_timeout: r
                .duration("PASSLINK_HEADER_READ_TIMEOUT", Duration::from_secs(10)),
            max_connections: r.number("PASSLINK_MAX_CONNECTIONS", 4096, 1..=1_000_000),
        };
        let relay = RelaySettings {
            tasks: r.number("PASSLINK_RELAY_TASKS", 1, 1..=64),
            batch: r.number("PASSLINK_RELAY_BATCH", 500, 1..=10_000),
            poll_interval: r.duration("PASSLINK_RELAY_POLL_INTERVAL", Duration::from_millis(200)),
            claim_idle: r.duration("PASSLINK_RELAY_CLAIM_IDLE", Duration::from_secs(30)),
            confirm_timeout: r.duration("PASSLINK_RELAY_CONFIRM_TIMEOUT", Duration::from_secs(15)),
        };
        let shutdown_grace = r.duration("PASSLINK_SHUTDOWN_GRACE", Duration::from_secs(20));
        let startup_patience = r.duration("PASSLINK_STARTUP_PATIENCE", Duration::from_secs(30));
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
            http,
            relay,
            webauthn,
            shutdown_grace,
            startup_patience,
        })
    }
}
