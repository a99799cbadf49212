//! The project's SMTP sink (`tools/smtp-sink.mjs`) as a child process: it
//! can refuse chosen mailboxes with a 5xx and keeps accepted mail in a file
//! that survives its own restarts, so a test can take it down and count
//! every email at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::{Child, Command};

pub struct SmtpSink {
    /// Extra command-line flags, such as `--no-smtputf8`.
    pub flags: Vec<String>,
    pub smtp_port: u16,
    pub http_port: u16,
    store: PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SinkEmail {
    pub to: Vec<SinkRecipient>,
    pub subject: String,
    pub text: String,
    #[serde(rename = "messageId")]
    pub message_id: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SinkRecipient {
    pub address: String,
}

impl SinkEmail {
    pub fn recipient(&self) -> &str {
        self.to.first().map_or("", |r| r.address.as_str())
    }
}

impl SmtpSink {
    pub async fn start(tag: &str) -> Self {
        Self::start_with(tag, &[]).await
    }

    pub async fn start_with(tag: &str, flags: &[&str]) -> Self {
        let store = std::env::temp_dir().join(format!("passlink-sink-{tag}.jsonl"));
        let _ = std::fs::remove_file(&store);
        let mut sink = Self {
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            smtp_port: crate::free_port(),
            http_port: crate::free_port(),
            store,
            child: None,
            http: reqwest::Client::new(),
        };
        sink.resume().await;
        sink
    }

    /// Starts (again) on the same ports; accepted mail is kept.
    pub async fn resume(&mut self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let child = Command::new("node")
            .arg(root.join("tools/smtp-sink.mjs"))
            .args(["--smtp", &self.smtp_port.to_string()])
            .args(["--http", &self.http_port.to_string()])
            .args(["--store", &self.store.display().to_string()])
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the SMTP sink");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/healthz", self.http_port);
        let up = crate::eventually(Duration::from_secs(20), || async {
            let smtp = tokio::net::TcpStream::connect(("127.0.0.1", self.smtp_port)).await;
            let web = self.http.get(&url).send().await;
            (smtp.is_ok() && web.is_ok()).then_some(())
        })
        .await;
        assert!(up.is_some(), "the SMTP sink did not start");
    }

    /// Kills the server: connections are refused until `resume`.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Refuses these addresses with 550 from now on (replacing the list).
    pub async fn refuse(&self, addresses: &[&str]) {
        let url = format!("http://127.0.0.1:{}/refuse", self.http_port);
        let response = self
            .http
            .put(url)
            .json(&addresses)
            .send()
            .await
            .expect("the sink answers");
        assert!(response.status().is_success());
    }

    /// Every accepted email, from the store file (also while stopped).
    pub fn emails(&self) -> Vec<SinkEmail> {
        let text = std::fs::read_to_string(&self.store).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<SinkEmail> {
        let found = crate::eventually(timeout, || async {
            let emails = self.emails();
            (emails.len() >= count).then_some(emails)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "expected {count} emails within {timeout:?}, got {}",
                self.emails().len()
            )
        })
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.store);
    }
}
