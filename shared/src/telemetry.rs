//! Logging set up once per process, and helpers that keep personal data and
//! secrets out of it.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Compact,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "compact" | "text" | "pretty" => Ok(LogFormat::Compact),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is neither compact nor json")),
        }
    }
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    // A second call (only in tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Compact => builder.compact().try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// An address fit for a log line: the first character of the local part and
/// the domain, `a***@example.test`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every word that looks like an address masked, for messages
/// from other systems (SMTP replies) that may quote one.
pub fn redact_emails(text: &str) -> String {
    let is_separator = |c: char| c.is_whitespace() || "<>\"'()[],;:".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask_email(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses() {
        assert_eq!(
            mask_email("anna.muller.0@example.test"),
            "a***@example.test"
        );
        assert_eq!(mask_email("jörg.7@exämple.test"), "j***@exämple.test");
        assert_eq!(mask_email("broken"), "***");
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(
            redact_emails("550 5.1.1 <anna@example.test>: Recipient address rejected"),
            "550 5.1.1 <a***@example.test>: Recipient address rejected"
        );
    }
}
