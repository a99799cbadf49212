//! End to end: `sendLink` requests in, emails out, each timed from the
//! API's answer to the SMTP server's acceptance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{sink, users};

pub struct Options {
    pub api: String,
    pub token: String,
    pub users: PathBuf,
    pub count: usize,
    pub rate: u64,
    pub concurrency: usize,
    pub smtp_listen: String,
    pub timeout: Duration,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let arrivals = sink::start(&options.smtp_listen).await?;
    let users = users::load(&options.users, options.count)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let slots = Arc::new(Semaphore::new(options.concurrency));
    let answered: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(users.len());
    let mut failures = 0usize;

    for (index, user) in users.iter().enumerate() {
        if options.rate > 0 {
            let due = started + Duration::from_secs_f64(index as f64 / options.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = slots.clone().acquire_owned().await?;
        let url = format!(
            "{}/v3alpha/users/{}/webauthn/registration_link",
            options.api, user.id
        );
        let request = client
            .post(url)
            .bearer_auth(&options.token)
            .json(&json!({"sendLink": {}}));
        let answered = answered.clone();
        let email = user.email.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            if ok {
                answered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(email, Instant::now());
            }
            ok
        }));
    }
    for task in tasks {
        if !task.await.unwrap_or(false) {
            failures += 1;
        }
    }
    let sent_in = started.elapsed();

    let deadline = Instant::now() + options.timeout;
    let expected = options.count - failures;
    while arrivals.total() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let answered = answered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let arrived = arrivals.snapshot();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut last_arrival = started;
    let mut duplicates = 0usize;
    let mut missing = 0usize;
    for (email, at) in &answered {
        match arrived.get(email) {
            Some(times) => {
                duplicates += times.len() - 1;
                let first = times[0];
                last_arrival = last_arrival.max(first);
                let micros = first.saturating_duration_since(*at).as_micros() as u64;
                latency.record(micros.max(1))?;
            }
            None => missing += 1,
        }
    }
    let total = last_arrival.duration_since(started).as_secs_f64();
    let result = json!({
        "requests": options.count,
        "failed_requests": failures,
        "api_seconds": sent_in.as_secs_f64(),
        "api_rate": options.count as f64 / sent_in.as_secs_f64(),
        "emails": answered.len() - missing,
        "missing": missing,
        "duplicates": duplicates,
        "seconds_to_last_email": total,
        "emails_per_second": (answered.len() - missing) as f64 / total,
        "latency_ms_p50": latency.value_at_quantile(0.50) as f64 / 1000.0,
        "latency_ms_p99": latency.value_at_quantile(0.99) as f64 / 1000.0,
        "latency_ms_max": latency.max() as f64 / 1000.0,
    });
    println!("{result}");
    anyhow::ensure!(missing == 0, "{missing} emails did not arrive in time");
    Ok(())
}
