//! A timing SMTP sink for measurements: it accepts every message, and notes
//! for each recipient when the message was accepted. It speaks just enough
//! SMTP for lettre (EHLO with SMTPUTF8, MAIL, RCPT, DATA, RSET, NOOP, QUIT)
//! and parses nothing else, so that the sink is never what limits a run.
//! The project's tests use real SMTP servers (maildev, tools/smtp-sink.mjs);
//! this one exists only to time the pipeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// When each recipient's message was accepted.
#[derive(Clone, Default)]
pub struct Arrivals {
    inner: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
}

impl Arrivals {
    pub fn snapshot(&self) -> HashMap<String, Vec<Instant>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn total(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    fn record(&self, recipients: &[String]) {
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for rcpt in recipients {
            map.entry(rcpt.clone()).or_default().push(now);
        }
    }
}

pub async fn start(listen: &str) -> anyhow::Result<Arrivals> {
    let listener = TcpListener::bind(listen).await?;
    let arrivals = Arrivals::default();
    let shared = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let arrivals = shared.clone();
            tokio::spawn(async move {
                let _ = session(stream, arrivals).await;
            });
        }
    });
    Ok(arrivals)
}

async fn session(stream: tokio::net::TcpStream, arrivals: Arrivals) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 bench-sink ESMTP\r\n").await?;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let address = line[8..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['<', '>']);
            recipients.push(address.to_owned());
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
            }
            arrivals.record(&recipients);
            recipients.clear();
            b"250 accepted\r\n"
        } else if upper.starts_with("RSET") || upper.starts_with("MAIL") {
            recipients.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await?;
    }
}
