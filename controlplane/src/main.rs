//! `controlplane serve | migrate | replay | audit verify | user add | service add|remove`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use controlplane::Config;
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(name = "controlplane", version, about = "Golden Arch control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, the NATS command listener and the background workers.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Rebuild every read model from the event table (safe while `serve` runs: readers
    /// see the old state until the rebuilt one commits).
    Replay,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the services that send commands over NATS (docs/nats-auth.md).
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Register a service with its tenants (or change them) and write its NATS creds file
    /// (mode 0600), signed with the account seed of NATS_ACCOUNT_SEED_FILE, for subject
    /// prefix NATS_SUBJECT_PREFIX. The service publishes on `<prefix>.cmd.NAME.<area>.<verb>`
    /// and receives replies under `<prefix>.reply.NAME`.
    Add {
        /// One subject token: a-z, 0-9, '-' and '_'.
        name: String,
        /// The tenants it may act on, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            required_unless_present = "all_tenants",
            conflicts_with = "all_tenants"
        )]
        tenants: Vec<String>,
        /// It may act on every tenant.
        #[arg(long)]
        all_tenants: bool,
        /// Where to write the creds file (default: NAME.creds).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Unregister a service: its commands are refused within seconds (its creds still
    /// connect, but may do nothing else than send commands that are refused).
    Remove { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every aggregate's hash chain; print the report as JSON and exit 1 when an
    /// event's content, order or hash does not match.
    Verify,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, or reset the password and role of an existing one. The password
    /// comes from USER_PASSWORD or, when that is unset, from standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["admin", "operator", "developer", "auditor", "viewer", "service"])]
        role: String,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr: stdout carries only the line saying where the server listens.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

// Memory measurements (`--features memstats`, docs/benchmarks/soak.md): jemalloc as the
// allocator, its counters and heap profiles every minute.
#[cfg(feature = "memstats")]
mod memstats;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    init_logging();
    #[cfg(feature = "memstats")]
    memstats::spawn();
    let cli = Cli::parse();
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            let addr = std::net::SocketAddr::new(config.server.host, config.server.port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let config_grace = config.server.shutdown_grace;
            let server = controlplane::start(config, listener).await?;
            tracing::info!(addr = %server.addr, "control plane listening");
            println!("control plane listening on http://{}", server.addr);
            server.run_until(shutdown_signal(), config_grace).await;
            Ok(())
        }
        Command::Migrate => {
            let pool = commands::store::connect(config.database.url.expose_secret(), 2).await?;
            commands::store::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Replay => {
            use std::io::{IsTerminal, Write};
            let pool = commands::store::connect(config.database.url.expose_secret(), 2).await?;
            commands::store::migrate(&pool).await?;
            let terminal = std::io::stderr().is_terminal();
            let report = projections::replay::replay(&pool, |done, total| {
                if terminal {
                    const WIDTH: u64 = 40;
                    let filled = (done.min(total) * WIDTH)
                        .checked_div(total)
                        .unwrap_or(WIDTH);
                    eprint!(
                        "\r[{}{}] {done}/{total} events",
                        "#".repeat(filled as usize),
                        " ".repeat((WIDTH - filled) as usize)
                    );
                    let _ = std::io::stderr().flush();
                }
            })
            .await?;
            if terminal {
                eprintln!();
            }
            println!(
                "replayed {} events in {:.2} s ({:.0} events/s)",
                report.events,
                report.elapsed.as_secs_f64(),
                report.events_per_second()
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            use std::io::{IsTerminal, Write};
            let pool = commands::store::connect(config.database.url.expose_secret(), 2).await?;
            // Where it is, on a terminal (a long log takes a while); stdout stays the report.
            let terminal = std::io::stderr().is_terminal();
            let mut on_progress = |p: &streams::audit::VerifyProgress| {
                if terminal {
                    eprint!("\r{}: {}/{} events   ", p.phase, p.done, p.total);
                    let _ = std::io::stderr().flush();
                }
                true
            };
            // The log's copies outside the database, when NATS answers (else not checked:
            // the stream anchor says "unreachable").
            let nats = match controlplane::nats_options(&config).await {
                Ok(options) => options
                    .connect(&config.nats.url)
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            let events = &config.streams.events;
            let report = match nats {
                Ok(nats) => {
                    let js = async_nats::jetstream::new(nats);
                    streams::audit::verify_anchored(&pool, &js, events, &mut on_progress).await?
                }
                Err(error) => streams::audit::verify_with(&pool, &[], &mut on_progress)
                    .await?
                    .map(|mut report| {
                        report.stream_anchor = Some(streams::audit::StreamAnchor {
                            stream: events.clone(),
                            result: "unreachable".into(),
                            global_position: None,
                            detail: error,
                        });
                        report
                    }),
            };
            if terminal {
                eprintln!();
            }
            let report = report.ok_or("the verification was stopped")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.ok {
                Ok(())
            } else {
                Err("the audit log does not verify".into())
            }
        }
        Command::Service { command } => service_command(command, config).await,
        Command::User {
            command: UserCommand::Add { username, role },
        } => {
            let password = match std::env::var("USER_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let mut input = String::new();
                    std::io::stdin().read_to_string(&mut input)?;
                    input.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            let role = auth::Role::parse(&role).ok_or("unknown role")?;
            let pool = commands::store::connect(config.database.url.expose_secret(), 2).await?;
            commands::store::migrate(&pool).await?;
            gateway::users::upsert_user(&pool, &username, &password, role).await?;
            println!("user {username} saved with role {}", role.as_str());
            Ok(())
        }
    }
}

async fn service_command(
    command: ServiceCommand,
    config: Config,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = commands::store::connect(config.database.url.expose_secret(), 2).await?;
    commands::store::migrate(&pool).await?;
    match command {
        ServiceCommand::Add {
            name,
            tenants,
            all_tenants,
            out,
        } => {
            natsauth::validate_service_name(&name)?;
            let seed = config
                .nats.account_seed
                .as_deref()
                .ok_or("NATS_ACCOUNT_SEED_FILE is not set: it names the account seed that signs services' creds (docs/nats-auth.md)")?;
            let account = natsauth::read_account_seed(seed)?;
            let scope = (!all_tenants).then_some(tenants.as_slice());
            let creds = natsauth::user_creds(
                &account,
                &natsauth::Role::Service(name.clone()),
                &config.nats.prefix,
            )?;
            commands::services::register(&pool, &name, scope)
                .await
                .map_err(|e| e.public_message())?;
            let out = out.unwrap_or_else(|| format!("{name}.creds").into());
            natsauth::write_secret(&out, &creds)?;
            let tenants = scope.map_or("every tenant".to_string(), |t| t.join(","));
            println!(
                "service {name} registered ({tenants}); creds written to {} (publish on {}, replies under {})",
                out.display(),
                natsauth::subjects::service_commands(&config.nats.prefix, &name),
                natsauth::subjects::inbox_prefix(&config.nats.prefix, &name),
            );
            Ok(())
        }
        ServiceCommand::Remove { name } => {
            if commands::services::remove(&pool, &name)
                .await
                .map_err(|e| e.public_message())?
            {
                println!("service {name} removed");
                Ok(())
            } else {
                Err(format!("no service named '{name}'").into())
            }
        }
    }
}

/// SIGTERM (a rolling deploy, `docker stop`, Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}
