//! Sending over SMTP with pooled connections and a hard timeout per send.
//!
//! lettre's pooled transport leaves Nagle's algorithm on (lettre 0.11.23
//! sets no `TCP_NODELAY`). lettre writes a message's body and its final
//! `.` line as two writes, so Nagle holds the second until the server
//! acknowledges the first, and the server's delayed ACK makes every message
//! wait about 40 ms: one connection sends some 22 messages a second. So the
//! worker opens the TCP connections itself, with `TCP_NODELAY`, hands them to
//! lettre's SMTP client, and pools them with deadpool. Implicit TLS (port
//! 465) still uses lettre's own connector, which gives no access to the
//! socket; there the stall remains (prefer STARTTLS, or raise concurrency).

use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use lettre::Message;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use passlink_shared::telemetry::redact_emails;

use crate::config::{SmtpSettings, SmtpTls};

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Connection trouble, a timeout or a 4xx reply: try again later.
    Transient(String),
    /// A 5xx reply such as an unknown mailbox, or a message this server
    /// cannot take: trying again will not help.
    Permanent(String),
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed or timed out.
    #[error("cannot reach the SMTP server: {0}")]
    Io(std::io::Error),
    /// The SMTP greeting, STARTTLS or authentication failed.
    #[error("{0}")]
    Smtp(SmtpError),
}

impl From<SmtpError> for ConnectError {
    fn from(err: SmtpError) -> Self {
        ConnectError::Smtp(err)
    }
}

/// An SMTP session, with whether it is known to be in a clean state.
pub struct Session {
    conn: AsyncSmtpConnection,
    /// False while a command is under way: a send cut off in the middle
    /// leaves the session unusable, and it must not go back to the pool.
    clean: bool,
}

/// Opens sessions for the pool and checks them before reuse.
pub struct Connector {
    settings: SmtpSettings,
    hello: ClientId,
    tls: Option<TlsParameters>,
}

/// Sessions idle longer than this are checked with NOOP before reuse;
/// servers close idle sessions after a while.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);

impl managed::Manager for Connector {
    type Type = Session;
    type Error = ConnectError;

    async fn create(&self) -> Result<Session, ConnectError> {
        let settings = &self.settings;
        let conn = match settings.tls {
            SmtpTls::Implicit => {
                AsyncSmtpConnection::connect_tokio1(
                    (settings.host.as_str(), settings.port),
                    Some(settings.timeout),
                    &self.hello,
                    self.tls.clone(),
                    None,
                )
                .await?
            }
            SmtpTls::None | SmtpTls::StartTls => {
                let connect =
                    tokio::net::TcpStream::connect((settings.host.as_str(), settings.port));
                let tcp = tokio::time::timeout(settings.timeout, connect)
                    .await
                    .map_err(|_| {
                        ConnectError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connecting timed out",
                        ))
                    })?
                    .map_err(ConnectError::Io)?;
                tcp.set_nodelay(true).map_err(ConnectError::Io)?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
                if let (SmtpTls::StartTls, Some(tls)) = (&settings.tls, &self.tls) {
                    conn.starttls(tls.clone(), &self.hello).await?;
                }
                conn
            }
        };
        let mut session = Session { conn, clean: true };
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            let credentials = Credentials::new(user.clone(), password.clone());
            session
                .conn
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await?;
        }
        Ok(session)
    }

    async fn recycle(
        &self,
        session: &mut Session,
        metrics: &Metrics,
    ) -> RecycleResult<ConnectError> {
        if !session.clean || session.conn.has_broken() {
            return Err(RecycleError::message("the session broke"));
        }
        let idle = metrics.recycled.unwrap_or(metrics.created).elapsed();
        if idle > CHECK_AFTER_IDLE && !session.conn.test_connected().await {
            return Err(RecycleError::message("the server closed the idle session"));
        }
        Ok(())
    }
}

pub struct Mailer {
    pool: managed::Pool<Connector>,
    /// The pool's size: after that many dead sessions the next is new.
    max_size: usize,
    timeout: Duration,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        let tls = match settings.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Implicit => {
                Some(TlsParameters::new(settings.host.clone())?)
            }
        };
        let connector = Connector {
            settings: settings.clone(),
            hello: ClientId::default(),
            tls,
        };
        let pool = managed::Pool::builder(connector)
            .max_size(settings.pool_size as usize)
            .build()?;
        Ok(Self {
            pool,
            max_size: settings.pool_size as usize,
            timeout: settings.timeout,
        })
    }

    /// Sends one message within the timeout, connection included.
    ///
    /// A pooled session can be dead without anyone knowing: the server
    /// restarted, or a proxy dropped it, within the idle check's window. A
    /// send that loses the connection on a reused session is therefore tried
    /// again on the next session (a fresh one once the pool's are used up)
    /// before it counts as a failed attempt; the job's retry would send it
    /// again anyway, only seconds later.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let deadline = Instant::now() + self.timeout;
        let envelope = message.envelope().clone();
        let body = message.formatted();
        let mut tries = 0;
        loop {
            tries += 1;
            match self.send_once(&envelope, &body, deadline).await {
                Err(Failure::Stale(reason)) if tries > self.max_size => {
                    return Err(SendError::Transient(reason));
                }
                Err(Failure::Stale(reason)) => {
                    tracing::debug!(reason, "a pooled SMTP session was dead; trying another");
                }
                Err(Failure::Send(err)) => return Err(err),
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn send_once(
        &self,
        envelope: &lettre::address::Envelope,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(), Failure> {
        let timed_out = || {
            Failure::Send(SendError::Transient(format!(
                "the SMTP server did not answer within {}s",
                self.timeout.as_secs_f32()
            )))
        };
        let left = deadline.saturating_duration_since(Instant::now());

        let mut session = match tokio::time::timeout(left, self.pool.get()).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(managed::PoolError::Backend(ConnectError::Smtp(err)))) => {
                return Err(Failure::Send(classify(&err)));
            }
            Ok(Err(managed::PoolError::Backend(err @ ConnectError::Io(_)))) => {
                return Err(Failure::Send(SendError::Transient(err.to_string())));
            }
            Ok(Err(err)) => {
                return Err(Failure::Send(SendError::Transient(format!(
                    "SMTP pool: {err}"
                ))));
            }
            Ok(Ok(session)) => session,
        };
        let reused = managed::Object::metrics(&session).recycle_count > 0;

        session.clean = false;
        let left = deadline.saturating_duration_since(Instant::now());
        let sent = tokio::time::timeout(left, session.conn.send(envelope, body)).await;
        match sent {
            Ok(Ok(_response)) => {
                session.clean = true;
                Ok(())
            }
            // lettre ends (QUITs) a session on any error; it is dropped.
            Ok(Err(err)) if reused && lost_connection(&err) => {
                Err(Failure::Stale(redact_emails(&error_chain(&err))))
            }
            Ok(Err(err)) => Err(Failure::Send(classify(&err))),
            Err(_) => Err(timed_out()),
        }
    }
}

/// How one try on one session ended.
enum Failure {
    /// A reused session turned out to be dead; another may work.
    Stale(String),
    /// The verdict for this send.
    Send(SendError),
}

/// Whether `err` is the connection failing rather than the server replying
/// (a reply carries a code, a timeout is the server being slow).
fn lost_connection(err: &SmtpError) -> bool {
    !(err.is_transient() || err.is_permanent() || err.is_client() || err.is_timeout())
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

/// The error and its causes, each once: lettre's messages already quote
/// some of their causes (a server reply), which would otherwise repeat.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
