//! Sending over SMTP with pooled connections and a hard timeout per send.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{Error as SmtpError, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpSettings, SmtpTls};
use passlink_shared::telemetry::redact_emails;

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Connection trouble, a timeout or a 4xx reply: try again later.
    Transient(String),
    /// A 5xx reply such as an unknown mailbox: trying again will not help.
    Permanent(String),
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(TlsParameters::new(settings.host.clone())?),
            SmtpTls::Implicit => Tls::Wrapper(TlsParameters::new(settings.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(settings.pool_size)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            timeout: settings.timeout,
        })
    }

    /// Sends one message. The outer timeout covers what lettre's own
    /// per-command timeout does not, such as waiting for a pooled connection.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(err)) => Err(classify(&err)),
            Err(_) => Err(SendError::Transient(format!(
                "the SMTP server did not answer within {}s",
                self.timeout.as_secs_f32()
            ))),
        }
    }
}

fn classify(err: &SmtpError) -> SendError {
    // Server replies may quote the recipient; keep addresses out of reasons,
    // which end up in logs, headers and the status API.
    let text = redact_emails(&error_chain(err));
    if err.is_permanent() || err.is_client() {
        // A client error (such as a non-ASCII address for a server without
        // SMTPUTF8) fails the same way on every try.
        SendError::Permanent(format!("the message cannot be sent: {text}"))
    } else if err.is_transient() {
        SendError::Transient(format!("the SMTP server deferred the message: {text}"))
    } else if err.is_timeout() {
        SendError::Transient(format!("the SMTP server timed out: {text}"))
    } else {
        SendError::Transient(format!("SMTP failed: {text}"))
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
