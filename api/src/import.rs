//! Bulk import of directory users from NDJSON, one user per line.
//!
//! Writes go straight to Redis in pipelines, so a million users take
//! seconds, not hours of HTTP calls. A progress line goes to standard error
//! once a second. Bad lines are reported by number and reason (never with
//! their content, which holds addresses) and skipped; the rest is imported.
//! A line that is not UTF-8 is one bad line too, and a byte-order mark at the
//! start of the file (as spreadsheet exports write) is ignored.

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use passlink_shared::json::Object;
use passlink_shared::store::{Store, UserChange};
use passlink_shared::time::now_ms;
use passlink_shared::user::{User, UserInput};

/// Users per pipeline.
const BATCH: usize = 1000;
/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";
/// Bad lines listed one by one before only the count goes on.
const MAX_LISTED: usize = 50;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
}

/// Imports every line of `input`; `total_bytes` (when known) gives a
/// percentage in the progress line.
pub async fn import(
    store: &Store,
    input: impl Read,
    total_bytes: Option<u64>,
) -> anyhow::Result<ImportSummary> {
    let mut reader = BufReader::new(input);
    let mut summary = ImportSummary::default();
    let mut batch: Vec<User> = Vec::with_capacity(BATCH);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut bytes_read = 0u64;
    let started = Instant::now();
    let mut last_report = Instant::now();

    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes_read += n as u64;
        let text = match line_no {
            1 => line.strip_prefix(BOM).unwrap_or(&line),
            _ => &line[..],
        };
        if text.trim_ascii().is_empty() {
            continue;
        }

        let parsed = std::str::from_utf8(text)
            .map_err(|err| format!("not UTF-8 (byte {})", err.valid_up_to() + 1))
            .and_then(|text| {
                serde_json::from_str::<Object<UserInput>>(text)
                    .map_err(|err| format!("not a user object ({})", category(&err)))
            })
            .map(|Object(input)| input)
            .and_then(|input| input.validate(None).map_err(|err| err.full_message()));
        match parsed {
            Ok(user) => batch.push(user),
            Err(reason) => {
                summary.rejected += 1;
                if summary.rejected <= MAX_LISTED as u64 {
                    eprintln!("line {line_no}: skipped: {reason}");
                }
            }
        }

        if batch.len() >= BATCH {
            write(store, &mut batch, &mut summary).await?;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            progress(&summary, bytes_read, total_bytes, started);
            last_report = Instant::now();
        }
    }
    write(store, &mut batch, &mut summary).await?;
    progress(&summary, bytes_read, total_bytes, started);
    eprintln!();
    Ok(summary)
}

async fn write(
    store: &Store,
    batch: &mut Vec<User>,
    summary: &mut ImportSummary,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    for change in store.put_users(batch, now_ms()).await? {
        match change {
            UserChange::Created { .. } => summary.created += 1,
            UserChange::Updated { .. } => summary.updated += 1,
            other => anyhow::bail!("unexpected outcome of an import write: {other:?}"),
        }
    }
    batch.clear();
    Ok(())
}

fn progress(summary: &ImportSummary, bytes: u64, total: Option<u64>, started: Instant) {
    let done = summary.created + summary.updated;
    let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
    let percent = total
        .filter(|t| *t > 0)
        .map(|t| format!("{:>3}% ", bytes * 100 / t))
        .unwrap_or_default();
    eprint!(
        "\r{percent}imported {done} users ({} new, {} replaced), {} skipped, {rate:.0}/s",
        summary.created, summary.updated, summary.rejected
    );
}

/// A JSON error's kind without the offending text, which may hold an
/// address.
fn category(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof => format!("invalid JSON at column {}", err.column()),
        Category::Data => {
            let text = err.to_string();
            // serde names the field in backticks; keep only that part.
            match text.split('`').nth(1) {
                Some(field) if text.starts_with("missing field") => format!("missing {field}"),
                Some(field) if text.starts_with("unknown field") => {
                    format!("unknown field {field}")
                }
                Some(field) if text.starts_with("duplicate field") => {
                    format!("duplicate field {field}")
                }
                _ => "a field has the wrong type".to_owned(),
            }
        }
        Category::Io => "read error".to_owned(),
    }
}
