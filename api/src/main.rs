//! `passlink-api`: the HTTP API, its outbox relay and its admin commands.
//!
//! Settings come from `PASSLINK_*` environment variables (see the README).

mod app;
mod auth;
mod config;
mod front;
mod grpc;
mod handlers;
mod http;
mod import;
mod metrics;
mod rate_limit;
mod registration;
mod relay;
mod routes;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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

use crate::app::App;
use crate::auth::{Authenticator, TokenFile};
use crate::config::ApiConfig;

#[derive(Parser)]
#[command(
    name = "passlink-api",
    version,
    about = "Passlink API: WebAuthn registration links"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and run the outbox relay (the default).
    Serve,
    /// Import directory users from an NDJSON file ("-" for standard input).
    ImportUsers { file: PathBuf },
    /// Manage bearer tokens in the tokens file.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the configuration and exit.
    CheckConfig,
    /// Write the gRPC API's protobuf descriptor set (all .proto files with
    /// their imports) to a file, for `grpcurl -protoset` and gRPC-web
    /// clients that load descriptors at run time.
    Protoset { file: PathBuf },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token, add its hash to the tokens file and print the token.
    Create {
        /// Who the token stands for (a service name, or a user id for
        /// self-service tokens).
        #[arg(long)]
        subject: String,
        /// Organization the token may act in; repeat for several, "*" for all.
        #[arg(long = "org", required = true)]
        orgs: Vec<String>,
        /// Permission, such as user.passkey.write or user.write; repeatable.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Tokens file; defaults to PASSLINK_TOKENS_FILE or
        /// passlink-tokens.json.
        #[arg(long)]
        file: Option<PathBuf>,
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
            eprintln!("passlink-api: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::ImportUsers { file } => import_users(file).await,
            Command::Token(TokenCommand::Create {
                subject,
                orgs,
                permissions,
                file,
            }) => create_token(subject, orgs, permissions, file),
            Command::Protoset { file } => {
                std::fs::write(&file, passlink_proto::FILE_DESCRIPTOR_SET)
                    .with_context(|| format!("cannot write {}", file.display()))
                    .map(|()| ExitCode::SUCCESS)
            }
            Command::CheckConfig => load_config().map(|_| {
                for name in passlink_shared::settings::unknown_settings_in_env() {
                    eprintln!("warning: {name}: no Passlink binary reads this setting; misspelt?");
                }
                println!("configuration is valid");
                ExitCode::SUCCESS
            }),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("passlink-api: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config() -> anyhow::Result<ApiConfig> {
    Ok(ApiConfig::from_source(&EnvSource)?)
}

async fn serve() -> anyhow::Result<ExitCode> {
    let config = load_config()?;
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

    let auth = load_authenticator(&config).await?;
    let store = Store::connect(&config.common.redis, config.startup_patience)
        .await
        .context("cannot connect to redis")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let grace = config.shutdown_grace;
    let app = App::new(config, store, auth);

    tokio::spawn(
        app.limiter
            .clone()
            .sync_forever(app.store.clone(), app.config.limits.sync_interval),
    );
    let (stop_relay, relay_stop) = watch::channel(false);
    let relays = relay::spawn(&app, relay_stop);
    let (stop_server, server_stop) = watch::channel(false);
    tracing::info!(rp.id = %app.config.webauthn.id,
        rp.origins = ?app.config.webauthn.origins.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "passkeys are registered for this relying party");
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "listening");

    let server = tokio::spawn(server::serve(app.clone(), listener, server_stop, grace));
    passlink_shared::shutdown::signal().await;
    tracing::info!("shutting down");

    let _ = stop_server.send(true);
    let _ = server.await;

    // The server is closed, so the outbox no longer grows: let the relay
    // publish what is left while the grace period lasts. Whatever remains
    // stays in Redis for the next start or another API process.
    let _ = stop_relay.send(true);
    if tokio::time::timeout(grace, futures_util::future::join_all(relays))
        .await
        .is_err()
    {
        tracing::warn!("relay did not finish within the grace period; jobs stay in the outbox");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The tokens file, and the JWT verifier when an issuer is configured (then
/// the tokens file may be absent).
async fn load_authenticator(config: &ApiConfig) -> anyhow::Result<Authenticator> {
    let file_exists = config.tokens_file.exists();
    let auth = if file_exists || config.jwt.is_none() {
        Authenticator::from_file(&config.tokens_file).map_err(anyhow::Error::msg)?
    } else {
        Authenticator::from_entries(&[]).map_err(anyhow::Error::msg)?
    };
    let auth = match &config.jwt {
        Some(settings) => {
            let verifier =
                auth::jwt::JwtVerifier::new(settings.clone()).map_err(anyhow::Error::msg)?;
            verifier.warm_up().await;
            tracing::info!(issuer = %settings.issuer, "accepting JWTs");
            auth.with_jwt(verifier)
        }
        None => auth,
    };
    if auth.len() == 0 && auth.jwt().is_none() {
        tracing::warn!(file = %config.tokens_file.display(),
            "the tokens file has no tokens; every request will be refused");
    }
    Ok(auth)
}

async fn import_users(file: PathBuf) -> anyhow::Result<ExitCode> {
    let config = load_config()?;
    let store = Store::connect(&config.common.redis, Duration::from_secs(10))
        .await
        .context("cannot connect to redis")?;
    let summary = if file.as_os_str() == "-" {
        import::import(&store, std::io::stdin().lock(), None).await?
    } else {
        let f = std::fs::File::open(&file)
            .with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        import::import(&store, f, size).await?
    };
    println!(
        "imported {} users ({} new, {} replaced); {} lines skipped",
        summary.created + summary.updated,
        summary.created,
        summary.updated,
        summary.rejected
    );
    Ok(if summary.rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn create_token(
    subject: String,
    orgs: Vec<String>,
    permissions: Vec<String>,
    file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let path = file
        .or_else(|| std::env::var_os("PASSLINK_TOKENS_FILE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("passlink-tokens.json"));
    let mut tokens: TokenFile = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a tokens file", path.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => TokenFile::default(),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };

    let (token, entry) = auth::new_token(&subject, orgs, permissions);
    tokens.tokens.push(entry);
    Authenticator::from_entries(&tokens.tokens).map_err(anyhow::Error::msg)?;

    // Write beside the file and rename, so a crash never leaves half a file.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&tokens)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;

    eprintln!(
        "added a token for {subject} to {}; it is shown only once:",
        path.display()
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
