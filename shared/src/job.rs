//! The send-link job that travels from the API's outbox through RabbitMQ to
//! a worker.
//!
//! It carries ids, the caller's link template and the sealed code, but no
//! email address or name: the worker reads those from the directory when it
//! sends, so RabbitMQ holds no personal data and a corrected address is used.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::seal::SealedCode;

/// Version of the job format, so that a future change can be told apart.
pub const JOB_VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendLinkJob {
    pub v: u8,
    /// Identifies this job in logs and in the delivery status; redelivered
    /// copies share it.
    pub job_id: Uuid,
    pub code_id: Uuid,
    pub user_id: String,
    /// The caller's template; `None` means the configured default link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_template: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds after which the code no longer works.
    pub expires_at_ms: i64,
    pub code: SealedCode,
}

impl SendLinkJob {
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a job; anything that is not a job of a known version is an
    /// error, which sends the message to the dead-letter queue.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let job: Self =
            serde_json::from_slice(bytes).map_err(|err| format!("not a send-link job: {err}"))?;
        if job.v != JOB_VERSION {
            return Err(format!("unknown job version {}", job.v));
        }
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let job = SendLinkJob {
            v: JOB_VERSION,
            job_id: Uuid::nil(),
            code_id: Uuid::nil(),
            user_id: "u".into(),
            url_template: None,
            created_at_ms: 1,
            expires_at_ms: 2,
            code: SealedCode {
                kid: "k".into(),
                nonce: "n".into(),
                ct: "c".into(),
            },
        };
        assert_eq!(SendLinkJob::from_bytes(&job.to_bytes()).unwrap(), job);
        assert!(SendLinkJob::from_bytes(b"{}").is_err());
        assert!(SendLinkJob::from_bytes(b"\xff").is_err());
        let mut other = job.clone();
        other.v = 9;
        assert!(SendLinkJob::from_bytes(&other.to_bytes()).is_err());
    }
}
