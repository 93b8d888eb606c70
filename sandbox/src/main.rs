//! `sandbox`: the code-execution service (port 8001 by default). Configuration is the
//! environment (see docs/sandbox.md); everything else lives in the library.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A `.env` in the working directory, when present, fills in unset variables.
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match sandbox::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sandbox: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let addr = SocketAddr::new(config.host, config.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sandbox: cannot listen on {addr}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    tracing::info!(%addr, config = ?config, "sandbox service listening");
    match sandbox::serve_with_shutdown(listener, config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: server error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down: finishing runs in progress");
}
