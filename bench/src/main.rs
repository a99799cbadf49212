//! `passlink-bench`: the tools `scripts/bench.sh` drives.
//!
//! - `hello`: a hyper server built like the API's listener that answers every
//!   request with a small JSON body, the baseline the API is compared with.
//! - `e2e`: sends `sendLink` requests (as fast as possible or at a fixed
//!   rate), runs an SMTP sink in the same process and times each email from
//!   the API's answer to the SMTP acceptance.
//! - `grpc`: a gRPC load client for `CreateWebAuthNRegistrationLink`.

mod e2e;
mod grpc;
mod hello;
mod sink;
mod users;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "passlink-bench", about = "Benchmark tools for Passlink")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The hyper baseline server.
    Hello {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
    },
    /// End to end: links to inboxes, timed.
    E2e {
        #[arg(long)]
        api: String,
        #[arg(long)]
        token: String,
        /// NDJSON users (as make-users.py writes them); the first `count` are used.
        #[arg(long)]
        users: PathBuf,
        #[arg(long)]
        count: usize,
        /// Requests per second; 0 sends as fast as `concurrency` allows.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Where the SMTP sink listens (the workers send there).
        #[arg(long)]
        smtp_listen: String,
        #[arg(long, default_value = "180s", value_parser = humantime_duration)]
        timeout: Duration,
    },
    /// Deletes RabbitMQ queues and an exchange a run left behind.
    AmqpClean {
        #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
        url: String,
        #[arg(long)]
        exchange: Vec<String>,
        #[arg(long)]
        queue: Vec<String>,
    },
    /// gRPC load: returnCode links for random users.
    Grpc {
        #[arg(long)]
        api: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        users: PathBuf,
        #[arg(long, default_value = "10s", value_parser = humantime_duration)]
        duration: Duration,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// HTTP/2 connections the calls are spread over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
}

async fn amqp_clean(url: &str, exchanges: &[String], queues: &[String]) -> anyhow::Result<()> {
    let connection = lapin::Connection::connect(url, Default::default()).await?;
    let channel = connection.create_channel().await?;
    for queue in queues {
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await?;
    }
    for exchange in exchanges {
        channel
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await?;
    }
    connection.close(200, "cleaned".into()).await?;
    Ok(())
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?} is not a duration like 10s")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Hello { listen } => hello::serve(&listen).await,
            Command::E2e {
                api,
                token,
                users,
                count,
                rate,
                concurrency,
                smtp_listen,
                timeout,
            } => {
                let options = e2e::Options {
                    api,
                    token,
                    users,
                    count,
                    rate,
                    concurrency,
                    smtp_listen,
                    timeout,
                };
                e2e::run(options).await
            }
            Command::Grpc {
                api,
                token,
                users,
                duration,
                concurrency,
                connections,
            } => grpc::run(&api, &token, &users, duration, concurrency, connections).await,
            Command::AmqpClean {
                url,
                exchange,
                queue,
            } => amqp_clean(&url, &exchange, &queue).await,
        }
    })
}
