//! One job, from message to email: decode, open the code, claim, render,
//! send, record. The result says what should happen to the message; the
//! consumer carries that out.

use std::time::{Duration, Instant};

use passlink_shared::job::SendLinkJob;
use passlink_shared::link_template::{LinkTemplate, LinkValues, check_link};
use passlink_shared::store::{Claim, DeliveryState, Store};
use passlink_shared::telemetry::mask_email;
use passlink_shared::time::now_ms;
use tracing::Instrument;

use crate::config::WorkerConfig;
use crate::email::{EmailContext, Templates, build_message};
use crate::metrics::WorkerMetrics;
use crate::smtp::{Mailer, SendError};

/// What to do with the message of a handled job.
#[derive(Debug, PartialEq)]
pub enum Disposition {
    /// Finished: sent, a duplicate, or nothing left to send.
    Ack,
    /// Publish to retry queue `retry` to come back as attempt `attempt`
    /// after `delay`, then acknowledge.
    Retry {
        retry: u32,
        attempt: u32,
        delay: Duration,
    },
    /// Publish to the dead-letter queue with `reason`, then acknowledge.
    DeadLetter { reason: String, attempt: u32 },
    /// A dependency failed before anything was sent: give the message back
    /// to the queue after a pause.
    Requeue,
}

/// The outcome label of a handled job, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retried,
    DeadLettered,
    Expired,
    Revoked,
    Duplicate,
    Busy,
    Requeued,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Sent,
        Outcome::Retried,
        Outcome::DeadLettered,
        Outcome::Expired,
        Outcome::Revoked,
        Outcome::Duplicate,
        Outcome::Busy,
        Outcome::Requeued,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Expired => "expired",
            Outcome::Revoked => "revoked",
            Outcome::Duplicate => "duplicate",
            Outcome::Busy => "busy",
            Outcome::Requeued => "requeued",
        }
    }
}

pub struct Processor {
    pub config: WorkerConfig,
    pub store: Store,
    pub templates: Templates,
    pub mailer: Mailer,
    pub metrics: WorkerMetrics,
}

impl Processor {
    /// How long a claim holds: long enough for one send with its timeout.
    fn lease(&self) -> Duration {
        self.config.smtp.timeout * 2 + Duration::from_secs(5)
    }

    /// Handles the message `body`, delivered for attempt `attempt`.
    pub async fn handle(&self, body: &[u8], attempt: u32) -> (Disposition, Outcome) {
        self.metrics.in_flight.inc();
        let (disposition, outcome) = self.handle_body(body, attempt).await;
        self.metrics.in_flight.dec();
        self.metrics.job(outcome);
        (disposition, outcome)
    }

    async fn handle_body(&self, body: &[u8], attempt: u32) -> (Disposition, Outcome) {
        let job = match SendLinkJob::from_bytes(body) {
            Ok(job) => job,
            Err(reason) => {
                tracing::error!(outcome = "dead_lettered", reason = %reason,
                    "message is not a send-link job");
                let disposition = Disposition::DeadLetter { reason, attempt };
                return (disposition, Outcome::DeadLettered);
            }
        };
        let span = tracing::info_span!("job", job.id = %job.job_id, code.id = %job.code_id,
            user.id = job.user_id.as_str(), attempt);
        self.handle_job(&job, attempt).instrument(span).await
    }

    async fn handle_job(&self, job: &SendLinkJob, attempt: u32) -> (Disposition, Outcome) {
        let settings = &self.config.common;
        let code = match settings.sealer.open(&job.code_id, &job.code) {
            Ok(code) => code,
            Err(err) => {
                return self
                    .give_up(job, attempt, format!("cannot open the code: {err}"))
                    .await;
            }
        };

        let now = now_ms();
        let claim = self
            .store
            .claim_delivery(job, attempt, now, self.lease(), settings.status_retention)
            .await;
        let (org, email, name, language) = match claim {
            Err(err) => {
                tracing::warn!(error = %err, "cannot claim the job; giving it back");
                return (Disposition::Requeue, Outcome::Requeued);
            }
            Ok(Claim::Duplicate) => {
                tracing::info!(outcome = "duplicate", "already sent; dropping this copy");
                return (Disposition::Ack, Outcome::Duplicate);
            }
            Ok(Claim::Gone(state)) => {
                let outcome = if state == DeliveryState::Expired {
                    Outcome::Expired
                } else {
                    Outcome::Revoked
                };
                tracing::info!(
                    outcome = outcome.as_str(),
                    "nothing to send: the code is gone"
                );
                return (Disposition::Ack, outcome);
            }
            Ok(Claim::Busy { lease_until_ms }) => {
                let wait = Duration::from_millis((lease_until_ms - now).max(0) as u64 + 200);
                tracing::info!(
                    outcome = "busy",
                    wait_ms = wait.as_millis() as u64,
                    "another worker is sending this job; checking again later"
                );
                let disposition = Disposition::Retry {
                    retry: 1,
                    attempt,
                    delay: wait,
                };
                return (disposition, Outcome::Busy);
            }
            Ok(Claim::Claimed {
                organization_id,
                email,
                display_name,
                language,
            }) => (organization_id, email, display_name, language),
        };

        let template = match &job.url_template {
            None => settings.default_link.clone(),
            Some(text) => match LinkTemplate::parse(text) {
                Ok(template) => template,
                Err(err) => {
                    return self
                        .give_up(job, attempt, format!("bad link template: {err}"))
                        .await;
                }
            },
        };
        let code_id = job.code_id.to_string();
        let link = template.render(&LinkValues {
            user_id: &job.user_id,
            org_id: &org,
            code_id: &code_id,
            code: code.expose(),
        });

        // The API checked the template with the user id and sample values;
        // the real organization id could still make a link no browser opens
        // (a space in a host name, say). Such an email would only mislead.
        if let Err(err) = check_link(&link, &settings.allowed_link_schemes) {
            let reason = format!("the link is not valid: {err}");
            return self.give_up(job, attempt, reason).await;
        }

        let context = EmailContext::new(&name, &link, now, job.expires_at_ms);
        let rendered = match self.templates.render(&language, &context) {
            Ok(rendered) => rendered,
            Err(err) => {
                return self
                    .give_up(job, attempt, format!("cannot render: {err:#}"))
                    .await;
            }
        };
        let message =
            match build_message(&self.config.mail_from, &email, &name, &job.job_id, rendered) {
                Ok(message) => message,
                Err(reason) => return self.give_up(job, attempt, reason).await,
            };

        let started = Instant::now();
        let sent = self.mailer.send(message).await;
        let elapsed = started.elapsed();
        self.metrics.smtp_duration.observe(elapsed.as_secs_f64());
        let elapsed_ms = elapsed.as_millis() as u64;
        match sent {
            Ok(()) => {
                let latency_ms = (now_ms() - job.created_at_ms).max(0);
                self.metrics
                    .delivery_latency
                    .observe(latency_ms as f64 / 1000.0);
                self.record_sent(job, attempt).await;
                tracing::info!(outcome = "sent", to = %mask_email(&email), elapsed_ms, latency_ms,
                    "email sent");
                (Disposition::Ack, Outcome::Sent)
            }
            Err(SendError::Transient(reason)) if attempt < self.config.retry.max_attempts => {
                let delay = self.config.retry.delay_after(attempt);
                let next_at = now_ms() + delay.as_millis() as i64;
                self.record(
                    job,
                    DeliveryState::Retrying,
                    attempt,
                    Some(next_at),
                    Some(&reason),
                )
                .await;
                tracing::warn!(outcome = "retried", reason = %reason, elapsed_ms,
                    delay_ms = delay.as_millis() as u64, "send failed; will try again");
                let disposition = Disposition::Retry {
                    retry: attempt,
                    attempt: attempt + 1,
                    delay,
                };
                (disposition, Outcome::Retried)
            }
            Err(SendError::Transient(reason)) => {
                let reason = format!("gave up after {attempt} attempts: {reason}");
                self.give_up(job, attempt, reason).await
            }
            Err(SendError::Permanent(reason)) => self.give_up(job, attempt, reason).await,
        }
    }

    /// Records the job as failed and sends it to the dead-letter queue.
    async fn give_up(
        &self,
        job: &SendLinkJob,
        attempt: u32,
        reason: String,
    ) -> (Disposition, Outcome) {
        self.record(job, DeliveryState::Failed, attempt, None, Some(&reason))
            .await;
        tracing::error!(outcome = "dead_lettered", reason = %reason, "job failed for good");
        (
            Disposition::DeadLetter { reason, attempt },
            Outcome::DeadLettered,
        )
    }

    /// Records a status change. A failure here only costs status accuracy,
    /// never the job, so it is logged and not retried.
    async fn record(
        &self,
        job: &SendLinkJob,
        state: DeliveryState,
        attempt: u32,
        next_at: Option<i64>,
        reason: Option<&str>,
    ) {
        let retention = self.config.common.status_retention;
        if let Err(err) = self
            .store
            .record_delivery(job, state, attempt, next_at, reason, now_ms(), retention)
            .await
        {
            tracing::warn!(error = %err, state = state.as_str(),
                "cannot record the delivery status");
        }
    }

    /// The `sent` record is what stops duplicates, so it is tried for a
    /// while: the email is out and must not go out again.
    async fn record_sent(&self, job: &SendLinkJob, attempt: u32) {
        let retention = self.config.common.status_retention;
        let mut delay = Duration::from_millis(100);
        for _ in 0..8 {
            let recorded = self
                .store
                .record_delivery(
                    job,
                    DeliveryState::Sent,
                    attempt,
                    None,
                    None,
                    now_ms(),
                    retention,
                )
                .await;
            match recorded {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot record the sent email yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
        tracing::error!(
            "the email was sent but could not be recorded; a redelivery may send it again"
        );
    }
}
