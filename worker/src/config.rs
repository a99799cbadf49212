//! The worker's settings, read once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use passlink_shared::config::{ConfigError, Reader, Source};
use passlink_shared::settings::CommonSettings;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub common: CommonSettings,
    pub smtp: SmtpSettings,
    /// The From header of every email.
    pub mail_from: Mailbox,
    /// Deliveries RabbitMQ hands out before they are acknowledged.
    pub prefetch: u16,
    /// Emails sent at the same time.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Directory with `<language>/subject.txt`, `body.txt` and `body.html`;
    /// `None` uses the templates built into the binary.
    pub templates_dir: Option<PathBuf>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_listen: SocketAddr,
    /// How often queue depths are read.
    pub queue_metrics_interval: Duration,
    /// How long sends in flight may take to finish on shutdown.
    pub shutdown_grace: Duration,
    pub startup_patience: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP: local relays and catchers only.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Implicit,
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Upper bound for one send, connection included.
    pub timeout: Duration,
    pub pool_size: u32,
}

/// When to try again after a transient failure.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub multiplier: f64,
    pub max_delay: Duration,
    /// Each delay is moved by up to this fraction either way, so that jobs
    /// that failed together do not come back together.
    pub jitter: f64,
}

impl RetryPolicy {
    /// The delay before attempt `failed_attempt + 1`, with jitter applied.
    pub fn delay_after(&self, failed_attempt: u32) -> Duration {
        use rand::RngExt;
        let exponent = failed_attempt.saturating_sub(1).min(30) as i32;
        let nominal = self.base_delay.as_secs_f64() * self.multiplier.powi(exponent);
        let nominal = nominal.min(self.max_delay.as_secs_f64());
        let spread = rand::rng().random_range(-self.jitter..=self.jitter);
        Duration::from_secs_f64((nominal * (1.0 + spread)).max(0.001))
    }
}

impl WorkerConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let mut r = Reader::new(source);
        let common = CommonSettings::read(&mut r);

        let tls = match r
            .string("PASSLINK_SMTP_TLS", "none")
            .to_ascii_lowercase()
            .as_str()
        {
            "none" | "off" => SmtpTls::None,
            "starttls" => SmtpTls::StartTls,
            "tls" | "implicit" | "smtps" => SmtpTls::Implicit,
            other => {
                r.fail(
                    "PASSLINK_SMTP_TLS",
                    format!("{other:?} is not none, starttls or tls"),
                );
                SmtpTls::None
            }
        };
        let prefetch = r.number("PASSLINK_WORKER_PREFETCH", 64, 1..=u16::MAX);
        let concurrency = r.number("PASSLINK_WORKER_CONCURRENCY", 32, 1..=4096);
        let smtp = SmtpSettings {
            host: r.string("PASSLINK_SMTP_HOST", "127.0.0.1"),
            port: r.number("PASSLINK_SMTP_PORT", 1025, 1..=u16::MAX),
            tls,
            username: r.raw("PASSLINK_SMTP_USERNAME"),
            password: r.secret_text("PASSLINK_SMTP_PASSWORD"),
            timeout: r.duration_in(
                "PASSLINK_SMTP_TIMEOUT",
                Duration::from_secs(15),
                Duration::from_secs(1)..=Duration::from_secs(600),
            ),
            pool_size: r.number("PASSLINK_SMTP_POOL_SIZE", concurrency as u32, 1..=4096),
        };
        if smtp.username.is_some() != smtp.password.is_some() {
            r.fail(
                "PASSLINK_SMTP_USERNAME",
                "give both a username and a password, or neither",
            );
        }

        let from_text = r.string(
            "PASSLINK_MAIL_FROM",
            "Passlink <no-reply@passlink.localhost>",
        );
        let mail_from = from_text.parse::<Mailbox>().unwrap_or_else(|err| {
            r.fail(
                "PASSLINK_MAIL_FROM",
                format!("{from_text:?} is not a mailbox: {err}"),
            );
            Mailbox::new(
                None,
                "invalid@invalid.invalid"
                    .parse()
                    .expect("a literal address"),
            )
        });

        let retry = RetryPolicy {
            max_attempts: common.amqp.max_attempts,
            base_delay: r.duration_in(
                "PASSLINK_RETRY_BASE_DELAY",
                Duration::from_secs(5),
                Duration::from_millis(10)..=Duration::from_secs(86400),
            ),
            multiplier: r.number("PASSLINK_RETRY_MULTIPLIER", 4.0, 1.0..=100.0),
            max_delay: r.duration_in(
                "PASSLINK_RETRY_MAX_DELAY",
                Duration::from_secs(30 * 60),
                Duration::from_millis(10)..=Duration::from_secs(604800),
            ),
            jitter: r.number("PASSLINK_RETRY_JITTER", 0.2, 0.0..=0.5),
        };
        if retry.max_delay < retry.base_delay {
            r.fail(
                "PASSLINK_RETRY_MAX_DELAY",
                "is shorter than PASSLINK_RETRY_BASE_DELAY, so every retry would wait the maximum",
            );
        }

        let config = Self {
            common,
            smtp,
            mail_from,
            prefetch,
            concurrency,
            retry,
            templates_dir: r.raw("PASSLINK_TEMPLATES_DIR").map(PathBuf::from),
            metrics_listen: r.parse(
                "PASSLINK_WORKER_METRICS_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 9091)),
            ),
            queue_metrics_interval: r.duration_in(
                "PASSLINK_QUEUE_METRICS_INTERVAL",
                Duration::from_secs(5),
                Duration::from_millis(100)..=Duration::from_secs(3600),
            ),
            shutdown_grace: r.duration_in(
                "PASSLINK_SHUTDOWN_GRACE",
                Duration::from_secs(20),
                Duration::from_secs(0)..=Duration::from_secs(3600),
            ),
            startup_patience: r.duration_in(
                "PASSLINK_STARTUP_PATIENCE",
                Duration::from_secs(30),
                Duration::from_secs(0)..=Duration::from_secs(3600),
            ),
        };
        if usize::from(config.prefetch) < config.concurrency {
            r.fail(
                "PASSLINK_WORKER_PREFETCH",
                format!(
                    "{} is below PASSLINK_WORKER_CONCURRENCY ({}); sends would sit idle",
                    config.prefetch, config.concurrency
                ),
            );
        }
        r.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_capped_and_jitter() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(5),
            multiplier: 4.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.2,
        };
        for _ in 0..100 {
            let first = policy.delay_after(1).as_secs_f64();
            assert!((4.0..=6.0).contains(&first), "{first}");
            let second = policy.delay_after(2).as_secs_f64();
            assert!((16.0..=24.0).contains(&second), "{second}");
            let capped = policy.delay_after(9).as_secs_f64();
            assert!((48.0..=72.0).contains(&capped), "{capped}");
        }
    }
}
