//! `passlink-worker`: consumes send-link jobs and sends the emails; also
//! the operator's dead-letter commands.
//!
//! Settings come from `PASSLINK_*` environment variables (see the README).

mod admin;
mod config;
mod consumer;
mod dead_letters;
mod email;
mod metrics;
mod monitor;
mod process;
mod smtp;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the request path allocates
/// many small, short-lived buffers, which glibc's malloc serves slowly
/// under contention (see bench/ANALYSIS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use passlink_shared::config::EnvSource;
use passlink_shared::store::Store;
use passlink_shared::telemetry;
use tokio::sync::watch;

use crate::config::WorkerConfig;
use crate::email::Templates;
use crate::metrics::WorkerMetrics;
use crate::process::Processor;
use crate::smtp::Mailer;

#[derive(Parser)]
#[command(
    name = "passlink-worker",
    version,
    about = "Passlink worker: sends registration emails"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume send-link jobs and send the emails (the default).
    Run,
    /// Inspect, resend or delete jobs that could not be sent.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Check the configuration and the email templates, and exit.
    CheckConfig,
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Show dead-lettered jobs with the reason; they stay in the queue.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send dead-lettered jobs again, as first attempts.
    Replay {
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Delete every dead-lettered job.
    Purge {
        /// Confirms that the jobs are to be deleted.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("passlink-worker: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let config = WorkerConfig::from_source(&EnvSource)?;
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => run(config).await,
            Command::DeadLetters(command) => dead_letter_command(config, command).await,
            Command::CheckConfig => {
                for name in passlink_shared::settings::unknown_settings_in_env() {
                    eprintln!("warning: {name}: no Passlink binary reads this setting; misspelt?");
                }
                let templates = Templates::load(config.templates_dir.as_deref())?;
                let languages: Vec<&str> = templates.languages().collect();
                println!(
                    "configuration is valid; email languages: {}",
                    languages.join(", ")
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("passlink-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: WorkerConfig) -> anyhow::Result<ExitCode> {
    telemetry::init(config.common.log_format, &config.common.log_filter);
    for name in passlink_shared::settings::unknown_settings_in_env() {
        tracing::warn!(setting = %name, "no Passlink binary reads this setting; misspelt?");
    }
    if config.common.dev_mode {
        tracing::warn!(
            "development mode: built-in secrets may be in use; never run it so in \
            production"
        );
    }
    let templates = Templates::load(config.templates_dir.as_deref())?;
    let mailer = Mailer::new(&config.smtp)?;
    let store = Store::connect(&config.common.redis, config.startup_patience)
        .await
        .context("cannot connect to redis")?;
    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.metrics_listen))?;
    let metrics = WorkerMetrics::new();
    tracing::info!(smtp.host = %config.smtp.host, smtp.port = config.smtp.port,
        languages = templates.languages().collect::<Vec<_>>().join(","),
        metrics.addr = %listener.local_addr()?, version = env!("CARGO_PKG_VERSION"),
        "worker starting");
    tokio::spawn(admin::serve(listener, metrics.clone()));
    tokio::spawn(monitor::run(
        config.common.amqp.clone(),
        metrics.clone(),
        config.queue_metrics_interval,
    ));

    let processor = Arc::new(Processor {
        config,
        store,
        templates,
        mailer,
        metrics,
    });
    let (stop, stopped) = watch::channel(false);
    let consumer = tokio::spawn(consumer::run(processor, stopped));

    passlink_shared::shutdown::signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = consumer.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn dead_letter_command(
    config: WorkerConfig,
    command: DeadLetterCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        DeadLetterCommand::List { limit } => {
            let shown = dead_letters::list(&config, limit).await?;
            eprintln!("{shown} dead-lettered jobs shown");
        }
        DeadLetterCommand::Replay { limit } => {
            let store = Store::connect(&config.common.redis, config.startup_patience)
                .await
                .context("cannot connect to redis")?;
            let replayed = dead_letters::replay(&config, &store, limit).await?;
            eprintln!("{replayed} jobs replayed");
        }
        DeadLetterCommand::Purge { yes } => {
            if !yes {
                eprintln!("purge deletes every dead-lettered job; add --yes to confirm");
                return Ok(ExitCode::from(2));
            }
            let purged = dead_letters::purge(&config).await?;
            eprintln!("{purged} dead-lettered jobs deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
