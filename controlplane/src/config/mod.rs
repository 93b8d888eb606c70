//! Typed configuration from the environment (and `.env` when present), in sections
//! ([`sections`]); a missing or wrong variable is refused at start with its name
//! ([`ConfigError`]). Secrets are [`SecretString`]s: `Debug` shows them redacted.

mod env;
pub mod sections;

pub use env::ConfigError;
pub use sections::{
    AuthConfig, DatabaseConfig, HttpConfig, NatsConfig, PipelineConfig, ServerConfig,
    StreamsConfig, WorkersConfig,
};

use env::{error, Env};

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// `APP_ENV=development` or `test`: a random JWT secret when none is set, a weak one
    /// accepted, no NATS creds needed, no dead-letter capture unless asked for.
    pub development: bool,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub streams: StreamsConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub pipeline: PipelineConfig,
    pub workers: WorkersConfig,
}

impl Config {
    /// Reads the configuration through `var` (the process environment in `main`).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(&var);
        let development = match env.get("APP_ENV").as_deref() {
            None | Some("production") => false,
            Some("development") | Some("test") => true,
            Some(other) => {
                return Err(error(
                    "APP_ENV",
                    format!("must be production, development or test, not '{other}'"),
                ))
            }
        };
        let config = Config {
            development,
            database: DatabaseConfig::read(&env)?,
            nats: NatsConfig::read(&env)?,
            streams: StreamsConfig::read(&env, development)?,
            // Before NATS_CREDS below: a production start with neither names the secret.
            auth: AuthConfig::read(&env, development)?,
            server: ServerConfig::read(&env)?,
            http: HttpConfig::read(&env)?,
            pipeline: PipelineConfig::read(&env)?,
            workers: WorkersConfig::read(&env)?,
        };
        if config.nats.creds.is_none() && !development {
            return Err(error(
                "NATS_CREDS",
                "is required outside development and test: the control plane's NATS creds file (docs/nats-auth.md)",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;
    use std::time::Duration;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://localhost/x");

    #[test]
    fn production_refuses_a_missing_secret_and_names_it() {
        let err = Config::from_lookup(lookup(&[DB])).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
    }

    #[test]
    fn production_refuses_a_placeholder_secret() {
        let err = Config::from_lookup(lookup(&[
            DB,
            ("JWT_SECRET", "change-me-change-me-change-me-change-me"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        let err = Config::from_lookup(lookup(&[DB, ("JWT_SECRET", "short")])).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
    }

    #[test]
    fn websocket_settings_are_checked_and_named() {
        let dev = ("APP_ENV", "development");
        let config = Config::from_lookup(lookup(&[DB, dev, ("WS_PING_SECONDS", "5")])).unwrap();
        assert_eq!(config.http.live.ping_interval, Duration::from_secs(5));
        let err = Config::from_lookup(lookup(&[DB, dev, ("WS_IDLE_SECONDS", "10")])).unwrap_err();
        assert_eq!(err.variable, "WS_IDLE_SECONDS");
        let err = Config::from_lookup(lookup(&[DB, dev, ("WS_BUFFER_EVENTS", "2")])).unwrap_err();
        assert_eq!(err.variable, "WS_BUFFER_EVENTS");
        let config = Config::from_lookup(lookup(&[DB, dev, ("WS_THREADS", "3")])).unwrap();
        assert_eq!(config.http.live.threads, 3);
        let err = Config::from_lookup(lookup(&[DB, dev, ("WS_THREADS", "0")])).unwrap_err();
        assert_eq!(err.variable, "WS_THREADS");
    }

    #[test]
    fn stream_replicas_reach_every_stream_config_and_are_bounded() {
        let dev = ("APP_ENV", "development");
        let config = Config::from_lookup(lookup(&[DB, dev, ("JETSTREAM_REPLICAS", "3")])).unwrap();
        assert_eq!(config.streams.replicas, 3);
        assert_eq!(config.streams.dlq_capture.stream_config().num_replicas, 3);
        let defaults = Config::from_lookup(lookup(&[DB, dev])).unwrap();
        assert_eq!(defaults.streams.replicas, 1);
        for bad in ["0", "6", "three"] {
            let err =
                Config::from_lookup(lookup(&[DB, dev, ("JETSTREAM_REPLICAS", bad)])).unwrap_err();
            assert_eq!(err.variable, "JETSTREAM_REPLICAS");
        }
    }

    #[test]
    fn development_accepts_a_missing_secret() {
        let config = Config::from_lookup(lookup(&[DB, ("APP_ENV", "development")])).unwrap();
        assert_eq!(config.auth.jwt_secret.expose_secret().len(), 64);
    }

    #[test]
    fn defaults_are_localhost_8000() {
        let config = Config::from_lookup(lookup(&[
            DB,
            ("JWT_SECRET", &"x".repeat(40)),
            ("NATS_CREDS", "/run/secrets/controlplane.creds"),
        ]))
        .unwrap();
        assert_eq!(config.server.port, 8000);
        assert_eq!(config.server.host.to_string(), "127.0.0.1");
        assert_eq!(config.nats.prefix, "cp");
        assert_eq!(config.streams.events, "CP_EVENTS");
        assert_eq!(config.pipeline.read_wait, Duration::from_secs(2));
    }

    #[test]
    fn production_refuses_to_connect_to_nats_without_credentials() {
        let err = Config::from_lookup(lookup(&[DB, ("JWT_SECRET", &"x".repeat(40))])).unwrap_err();
        assert_eq!(err.variable, "NATS_CREDS");
    }

    #[test]
    fn a_stream_name_with_a_dot_is_refused() {
        let err = Config::from_lookup(lookup(&[
            DB,
            ("APP_ENV", "development"),
            ("EVENTS_STREAM", "CP.EVENTS"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "EVENTS_STREAM");
    }

    #[test]
    fn bad_numbers_name_their_variable() {
        let err = Config::from_lookup(lookup(&[
            DB,
            ("APP_ENV", "development"),
            ("PORT", "eighty"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "PORT");
    }

    #[test]
    fn the_warning_threshold_defaults_to_80_and_is_bounded() {
        let config = Config::from_lookup(lookup(&[DB, ("APP_ENV", "development")])).unwrap();
        assert_eq!(config.workers.warning_percent, 80);
        let err = Config::from_lookup(lookup(&[
            DB,
            ("APP_ENV", "development"),
            ("GOVERNANCE_WARNING_PERCENT", "0"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "GOVERNANCE_WARNING_PERCENT");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::from_lookup(lookup(&[
            DB,
            ("JWT_SECRET", &"s3cr3t".repeat(8)),
            ("ADMIN_PASSWORD", "hunter2hunter2"),
            ("NATS_CREDS", "/run/secrets/controlplane.creds"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cr3t")
                && !shown.contains("hunter2")
                && !shown.contains("postgres://")
        );
    }
}
