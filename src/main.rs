//! The `reelay` binary: command line → configuration → server or catalog commands.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use reelay::catalog::{self, Catalog, Role};
use reelay::config::{Config, FlagOverrides};
use reelay::server;
use std::path::PathBuf;

/// Single-binary RTMP media server with built-in live processing.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// RTMP listen address [default: 0.0.0.0:1935].
    #[arg(long, global = true)]
    rtmp_addr: Option<String>,
    /// HTTP listen address [default: 0.0.0.0:8080].
    #[arg(long, global = true)]
    http_addr: Option<String>,
    /// Folder for the catalog and media files [default: ./reelay-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Base of every HTTP URL the API hands out.
    #[arg(long, global = true)]
    public_url: Option<String>,
    /// Base of ingest and RTMP playout URLs [default: rtmp://<host of public-url>:<rtmp port>].
    #[arg(long, global = true)]
    public_rtmp_url: Option<String>,
    /// Region shown in VOD URLs: eu, us or au [default: eu].
    #[arg(long, global = true)]
    region: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage API keys in the data folder (works beside a running server).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage organisations in the data folder.
    #[command(subcommand)]
    Orgs(OrgsCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print its secret once.
    Create {
        /// nanoAdmin, nanoUser or nanoReadOnly.
        #[arg(long)]
        role: String,
        /// Organisation hash [default: the only organisation].
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Create an organisation; prints its hash and first admin key.
    Create { name: String },
    /// List organisations with their packages.
    List,
    /// Turn an organisation's packages on or off (applies from the next ingest).
    Packages {
        /// Organisation hash.
        hash: String,
        #[arg(long)]
        vod: Option<Switch>,
        #[arg(long)]
        live_processing: Option<Switch>,
        #[arg(long)]
        transcoding: Option<Switch>,
        #[arg(long)]
        secure: Option<Switch>,
    },
}

/// A package switch on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        matches!(self, Switch::On)
    }
}

/// One line per organisation: hash, name, packages.
fn print_org(org: &catalog::Organisation) {
    let flag = |on: bool| if on { "on" } else { "off" };
    println!(
        "{}\t{}\tvod={} live_processing={} transcoding={} secure={}",
        org.hash,
        org.name,
        flag(org.vod),
        flag(org.live_processing),
        flag(org.transcoding),
        flag(org.secure)
    );
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reelay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let flags = FlagOverrides {
        rtmp_addr: cli.rtmp_addr,
        http_addr: cli.http_addr,
        data_dir: cli.data_dir,
        public_url: cli.public_url,
        public_rtmp_url: cli.public_rtmp_url,
        region: cli.region,
    };
    let config = Config::load(cli.config.as_deref(), std::env::vars(), &flags)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Keys(cmd) => with_catalog(&config, |catalog| keys(catalog, cmd)),
        Command::Orgs(cmd) => with_catalog(&config, |catalog| orgs(catalog, cmd)),
    }
}

/// Runs a catalog command (`keys`, `orgs`) on the data folder's catalog, beside a running
/// server or not.
fn with_catalog<F, Fut>(config: &Config, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Catalog) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let path = server::catalog_path(&config.server.data_dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move { command(Catalog::open_existing(&path)?).await })
}

async fn orgs(catalog: Catalog, cmd: OrgsCommand) -> anyhow::Result<()> {
    match cmd {
        OrgsCommand::Create { name } => {
            let (org, key) = catalog.create_org(&name).await?;
            println!("organisation {} ({})", org.hash, org.name);
            println!("admin key (shown once): {key}");
            Ok(())
        }
        OrgsCommand::List => {
            catalog.list_orgs().await?.iter().for_each(print_org);
            Ok(())
        }
        OrgsCommand::Packages {
            hash,
            vod,
            live_processing,
            transcoding,
            secure,
        } => {
            let change = catalog::PackageChange {
                vod: vod.map(Switch::on),
                live_processing: live_processing.map(Switch::on),
                transcoding: transcoding.map(Switch::on),
                secure: secure.map(Switch::on),
            };
            match catalog.set_packages(&hash, change).await? {
                Some(org) => {
                    print_org(&org);
                    Ok(())
                }
                None => bail!("no organisation {hash:?}"),
            }
        }
    }
}

async fn keys(catalog: Catalog, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { role, org, name } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}: nanoAdmin, nanoUser or nanoReadOnly")
            })?;
            let org = match org {
                Some(hash) => {
                    catalog
                        .get_org(&hash)
                        .await?
                        .with_context(|| format!("no organisation {hash:?}"))?
                        .hash
                }
                None => {
                    let mut orgs = catalog.list_orgs().await?;
                    if orgs.len() != 1 {
                        bail!("{} organisations exist: pass --org", orgs.len());
                    }
                    orgs.remove(0).hash
                }
            };
            let (info, secret) = catalog.create_key(&org, role, name.as_deref()).await?;
            println!(
                "id {} role {} org {}",
                info.id,
                role.as_str(),
                info.org_hash
            );
            println!("key (shown once): {secret}");
        }
        KeysCommand::List => {
            for key in catalog.list_keys(None).await? {
                println!(
                    "{}  {}  {:<12}  {}  {}{}",
                    key.id,
                    key.org_hash,
                    key.role.as_str(),
                    key.created_at,
                    key.name.unwrap_or_default(),
                    if key.revoked_at.is_some() {
                        "  (revoked)"
                    } else {
                        ""
                    }
                );
            }
        }
        KeysCommand::Revoke { id } => {
            if !catalog.revoke_key(&id, None).await? {
                bail!("no active key with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = server::start(config).await?;
        if let Some(key) = &server.first_admin_key {
            println!("First start: created the default organisation.");
            println!("Admin API key (shown once, also saved to <data>/admin-api-key): {key}");
        }
        let token = server.shutdown_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received: closing sessions and files");
            token.cancel();
        });
        server.wait().await;
        anyhow::Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
