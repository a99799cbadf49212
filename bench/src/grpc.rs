//! gRPC load: `CreateWebAuthNRegistrationLink` with `returnCode` for random
//! users, over a few HTTP/2 connections, for a fixed time.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use passlink_proto::{
    CreateWebAuthNRegistrationLinkRequest, Medium, ReturnWebAuthNRegistrationCode,
    UserServiceClient,
};
use rand::RngExt;
use serde_json::json;
use tonic::transport::Channel;

use crate::users;

pub async fn run(
    api: &str,
    token: &str,
    users_file: &Path,
    duration: Duration,
    concurrency: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let users = Arc::new(users::load(users_file, count_lines(users_file)?)?);
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        channels.push(Channel::from_shared(api.to_owned())?.connect().await?);
    }
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let started = Instant::now();
    let end = started + duration;

    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let mut client = UserServiceClient::new(channels[worker % channels.len()].clone());
        let users = users.clone();
        let header = header.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < end {
                let user = &users[rand::rng().random_range(0..users.len())];
                let mut request = tonic::Request::new(CreateWebAuthNRegistrationLinkRequest {
                    user_id: user.id.clone(),
                    medium: Some(Medium::ReturnCode(ReturnWebAuthNRegistrationCode {})),
                });
                request
                    .metadata_mut()
                    .insert("authorization", header.clone());
                let sent = Instant::now();
                match client.create_web_auth_n_registration_link(request).await {
                    Ok(_) => {
                        ok += 1;
                        let _ = histogram.record(sent.elapsed().as_micros().max(1) as u64);
                    }
                    Err(_) => failed += 1,
                }
            }
            (ok, failed, histogram)
        }));
    }

    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ok, mut failed) = (0u64, 0u64);
    for task in tasks {
        let (o, f, h) = task.await?;
        ok += o;
        failed += f;
        histogram.add(h)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "ok": ok,
            "failed": failed,
            "seconds": seconds,
            "links_per_second": ok as f64 / seconds,
            "latency_ms_p50": histogram.value_at_quantile(0.5) as f64 / 1000.0,
            "latency_ms_p99": histogram.value_at_quantile(0.99) as f64 / 1000.0,
        })
    );
    Ok(())
}

fn count_lines(path: &Path) -> anyhow::Result<usize> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count())
}
