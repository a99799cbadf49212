//! maildev, the SMTP catcher with a web inbox, as a child process on ports
//! of its own, and a client for its REST API.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::{Child, Command};

pub struct Maildev {
    pub smtp_port: u16,
    pub web_port: u16,
    child: Option<Child>,
    http: reqwest::Client,
    /// Where maildev keeps the mail; removed with the catcher (maildev's
    /// own default is a fresh temporary directory that nobody removes).
    dir: std::path::PathBuf,
}

/// One caught email, as maildev parsed it.
#[derive(Clone, Debug, Deserialize)]
pub struct Email {
    pub id: String,
    pub subject: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub to: Vec<Recipient>,
    #[serde(default)]
    pub headers: serde_json::Value,
    /// The SMTP envelope (what RCPT TO said), as opposed to the headers.
    #[serde(default)]
    pub envelope: serde_json::Value,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Recipient {
    pub address: String,
    #[serde(default)]
    pub name: String,
}

impl Email {
    /// The first `http(s)://` link in the plain-text part.
    pub fn link(&self) -> Option<String> {
        let start = self.text.find("http")?;
        let rest = &self.text[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }

    pub fn recipient(&self) -> Option<&str> {
        self.to.first().map(|r| r.address.as_str())
    }

    /// The envelope recipients (maildev decodes raw UTF-8 headers as Latin-1,
    /// the envelope it keeps as sent).
    pub fn envelope_recipients(&self) -> Vec<String> {
        self.envelope["to"]
            .as_array()
            .map(|to| {
                to.iter()
                    .filter_map(|r| r["address"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Maildev {
    pub async fn start() -> Self {
        let smtp_port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("passlink-maildev-{smtp_port}"));
        let mut maildev = Self {
            smtp_port,
            web_port: crate::free_port(),
            child: None,
            http: reqwest::Client::new(),
            dir,
        };
        maildev.resume().await;
        maildev
    }

    /// Starts (again) on the same ports; caught mail is gone after a stop.
    pub async fn resume(&mut self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let script = root.join("tools/node_modules/maildev/bin/maildev");
        assert!(
            script.exists(),
            "maildev is not installed; run `npm ci --prefix tools` (scripts/test.sh does)"
        );
        let child = Command::new("node")
            .arg(script)
            .args(["--ip", "127.0.0.1", "--silent"])
            .args(["--smtp", &self.smtp_port.to_string()])
            .args(["--web", &self.web_port.to_string()])
            .arg("--mail-directory")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs maildev");
        self.child = Some(child);

        let url = format!("http://127.0.0.1:{}/healthz", self.web_port);
        let up = crate::eventually(Duration::from_secs(20), || async {
            let smtp = tokio::net::TcpStream::connect(("127.0.0.1", self.smtp_port)).await;
            let web = self.http.get(&url).send().await;
            (smtp.is_ok() && web.is_ok_and(|r| r.status().is_success())).then_some(())
        })
        .await;
        assert!(up.is_some(), "maildev did not start");
    }

    /// Stops the SMTP server: connections are refused until `resume`; the
    /// caught mail is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Every email caught so far.
    pub async fn emails(&self) -> Vec<Email> {
        let url = format!("http://127.0.0.1:{}/email", self.web_port);
        match self.http.get(url).send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until at least `count` emails arrived; returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Email> {
        let found = crate::eventually(timeout, || async {
            let emails = self.emails().await;
            (emails.len() >= count).then_some(emails)
        })
        .await;
        match found {
            Some(emails) => emails,
            None => {
                let got = self.emails().await;
                panic!(
                    "expected {count} emails within {timeout:?}, got {}",
                    got.len()
                )
            }
        }
    }

    /// The raw source of an email, headers included.
    pub async fn source(&self, email: &Email) -> String {
        let url = format!(
            "http://127.0.0.1:{}/email/{}/source",
            self.web_port, email.id
        );
        self.http
            .get(url)
            .send()
            .await
            .expect("maildev answers")
            .text()
            .await
            .unwrap_or_default()
    }
}

impl Drop for Maildev {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
