//! The send-link job that travels from the API's outbox through RabbitMQ to
//! a worker.
//!
//! It carries ids, the caller's link template and the sealed code, but no
//! email address or name: the worker reads those from the directory when it
//! sends, so RabbitMQ holds no personal data and a corrected address is used.
//!
//! A message holds one job, or a batch of jobs the relay packed together:
//! the broker's cost is per message, so under load one message per job is
//! what would limit throughput (see bench/ANALYSIS.md). Retries and dead
//! letters always travel as single jobs.

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

/// A batch as the relay writes it: `{"jobs":[<job>,<job>,...]}`.
#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    jobs: Vec<&'a serde_json::value::RawValue>,
}

/// Packs encoded jobs into one message body without decoding them.
pub fn encode_batch<'a>(jobs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(b"{\"jobs\":[");
    for (index, job) in jobs.into_iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(job);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The encoded jobs of a message body: the jobs of a batch, or the body
/// itself. Each job is decoded on its own later, so one bad job does not
/// take the others with it. An empty batch is no job at all: it goes on as
/// the body, fails to decode and is dead-lettered where an operator sees it,
/// rather than acknowledged without a trace.
pub fn split_message(body: &[u8]) -> Vec<&[u8]> {
    match serde_json::from_slice::<Batch<'_>>(body) {
        Ok(batch) if !batch.jobs.is_empty() => batch
            .jobs
            .into_iter()
            .map(|raw| raw.get().as_bytes())
            .collect(),
        _ => vec![body],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SendLinkJob {
        SendLinkJob {
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
        }
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let job = sample();
        assert_eq!(SendLinkJob::from_bytes(&job.to_bytes()).unwrap(), job);
        assert!(SendLinkJob::from_bytes(b"{}").is_err());
        assert!(SendLinkJob::from_bytes(b"\xff").is_err());
        let mut other = job.clone();
        other.v = 9;
        assert!(SendLinkJob::from_bytes(&other.to_bytes()).is_err());
    }

    #[test]
    fn batches_split_into_their_jobs() {
        let job = |n: u8| {
            let mut job = sample();
            job.user_id = format!("u{n}");
            job.to_bytes()
        };
        let (a, b) = (job(1), job(2));
        let batch = encode_batch([a.as_slice(), b"not a job", b.as_slice()]);
        let parts = split_message(&batch);
        assert_eq!(
            parts.len(),
            1,
            "a batch with a non-JSON part is one bad message"
        );

        let batch = encode_batch([a.as_slice(), b"{\"v\":9}", b.as_slice()]);
        let parts = split_message(&batch);
        assert_eq!(parts.len(), 3);
        assert_eq!(SendLinkJob::from_bytes(parts[0]).unwrap().user_id, "u1");
        assert!(SendLinkJob::from_bytes(parts[1]).is_err());
        assert_eq!(SendLinkJob::from_bytes(parts[2]).unwrap().user_id, "u2");

        assert_eq!(
            split_message(&a),
            vec![a.as_slice()],
            "a single job is itself"
        );
        assert_eq!(split_message(b"garbage"), vec![b"garbage".as_slice()]);
        let empty = br#"{"jobs":[]}"#;
        assert_eq!(
            split_message(empty),
            vec![empty.as_slice()],
            "an empty batch is not dropped"
        );
    }
}
