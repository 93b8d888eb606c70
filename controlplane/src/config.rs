//! Typed configuration from the environment (and `.env` when present).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Everything `serve` needs. Secrets are never printed (see the `Debug` impl).
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub nats_url: String,
    /// The creds file this process connects to NATS with (`NATS_CREDS`: the control
    /// plane's identity, docs/nats-auth.md); required outside development and test.
    pub nats_creds: Option<std::path::PathBuf>,
    /// The account seed `controlplane service add` signs services' credentials with
    /// (`NATS_ACCOUNT_SEED_FILE`); `serve` does not need it.
    pub nats_account_seed: Option<std::path::PathBuf>,
    /// First token of every NATS subject (`<prefix>.cmd.<service>.budget.request`); tests
    /// use their own.
    pub nats_prefix: String,
    /// The JetStream stream events are published to (`CP_EVENTS`); tests use their own.
    pub events_stream: String,
    /// Replicas of every stream the control plane makes (`JETSTREAM_REPLICAS`, 1: one
    /// server; 3 on a three-node JetStream cluster).
    pub jetstream_replicas: usize,
    /// Longest wait of a read with `min_position` before it answers 503.
    pub read_wait: Duration,
    pub jwt_secret: String,
    pub token_ttl_seconds: i64,
    pub host: IpAddr,
    pub port: u16,
    pub admin_password: Option<String>,
    pub development: bool,
    pub db_max_connections: u32,
    pub expiry_interval: Duration,
    /// Dead-letter capture: the advisory stream (`DLQ_ADVISORY_STREAM`) and the streams
    /// watched (`DLQ_WATCH_STREAMS`; see `dlq_capture_config`).
    pub dlq_capture: commands::dlq_capture::CaptureConfig,
    /// The stream keeping sandbox run reports until they are recorded
    /// (`SANDBOX_AUDIT_STREAM`, default `CP_SANDBOX_AUDIT`).
    pub sandbox_audit_stream: String,
    pub secure_cookies: bool,
    /// A budget is `warning` in `/governance/status` from this share of its limit, in
    /// percent (`GOVERNANCE_WARNING_PERCENT`, default 80).
    pub warning_percent: u8,
    /// How often the business gauges of `/metrics` are read again (`METRICS_REFRESH_MS`).
    pub metrics_refresh: Duration,
    /// Longest wait of the publisher between two looks at the log when no notification
    /// comes (`PUBLISHER_POLL_MS`, default 50).
    pub publisher_poll: Duration,
    /// Rate limits and CORS origins (`RATE_LIMITS`, `LOGIN_RATE_PER_MINUTE`, `CORS_ORIGINS`).
    pub http_policy: gateway::hardening::HttpPolicy,
    /// WebSocket settings (`WS_*`).
    pub live: gateway::live::LiveConfig,
    /// The publisher records its running hash over the log every this many events
    /// (`AUDIT_HASH_CHECKPOINT_EVENTS`, default 1000)...
    pub hash_checkpoint_events: i64,
    /// ...or after this long with events published since (`AUDIT_HASH_CHECKPOINT_MS`,
    /// default 60000).
    pub hash_checkpoint_interval: Duration,
    /// The built dashboard (`UI_DIR`, default `frontend/dist`): served at `/` when it holds
    /// an `index.html`.
    pub ui_dir: std::path::PathBuf,
    /// The sandbox service the health card probes and `/sandbox/*` forwards to
    /// (`SANDBOX_URL`, default `http://127.0.0.1:8001`; `-`: none).
    pub sandbox_url: Option<String>,
    /// On SIGTERM/SIGINT, how long `serve` may take to answer what it took and close its
    /// WebSockets before it stops the rest (`SHUTDOWN_GRACE_SECONDS`, default 20).
    pub shutdown_grace: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("nats_url", &self.nats_url)
            .field("nats_prefix", &self.nats_prefix)
            .field("events_stream", &self.events_stream)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

/// A variable that is missing or wrong, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// `DLQ_ADVISORY_STREAM` (default `CP_DLQ_ADVISORIES`) and `DLQ_WATCH_STREAMS`
/// (comma-separated stream names, `*` for every stream, `-` for none).
fn dlq_capture_config(
    get: &dyn Fn(&str) -> Option<String>,
    development: bool,
) -> Result<commands::dlq_capture::CaptureConfig, ConfigError> {
    let stream_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let stream = get("DLQ_ADVISORY_STREAM").unwrap_or_else(|| "CP_DLQ_ADVISORIES".into());
    if !stream_name(&stream) {
        return Err(error(
            "DLQ_ADVISORY_STREAM",
            "must be 1-64 characters of [A-Za-z0-9_-] (a JetStream stream name)",
        ));
    }
    // Unset: every stream in production; none in development and test, where several
    // control planes share one NATS server and a catch-all advisory stream of one would
    // overlap (and so block) the advisory stream of every other.
    let watch = match get("DLQ_WATCH_STREAMS") {
        None if development => None,
        None => Some(vec![]),
        Some(v) if v.trim() == "*" => Some(vec![]),
        Some(v) if v.trim() == "-" => None,
        Some(v) => {
            let list: Vec<String> = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if let Some(bad) = list.iter().find(|s| !stream_name(s)) {
                return Err(error(
                    "DLQ_WATCH_STREAMS",
                    format!("'{bad}' is not a stream name (1-64 characters of [A-Za-z0-9_-]), '*' or '-'"),
                ));
            }
            Some(list)
        }
    };
    Ok(commands::dlq_capture::CaptureConfig {
        stream,
        watch,
        replicas: 1,
    })
}

/// Values that must never reach production (they are in `.env.example` and docs).
const PLACEHOLDER_SECRETS: [&str; 4] =
    ["change-me", "changeme", "secret", "CHANGE_ME_IN_PRODUCTION"];
/// HS256 keys shorter than this are brute-forceable.
const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the configuration through `var` (the process environment in `main`).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let development = match get("APP_ENV").as_deref() {
            None | Some("production") => false,
            Some("development") | Some("test") => true,
            Some(other) => {
                return Err(error(
                    "APP_ENV",
                    format!("must be production, development or test, not '{other}'"),
                ))
            }
        };
        let database_url =
            get("DATABASE_URL").ok_or_else(|| error("DATABASE_URL", "is required"))?;
        let nats_url = get("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into());
        let nats_creds = get("NATS_CREDS")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        let nats_account_seed = get("NATS_ACCOUNT_SEED_FILE")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        let nats_prefix = get("NATS_SUBJECT_PREFIX").unwrap_or_else(|| "cp".into());
        if !nats_prefix.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(error(
                "NATS_SUBJECT_PREFIX",
                "must be dot-separated tokens of [A-Za-z0-9_-]",
            ));
        }
        let events_stream = get("EVENTS_STREAM").unwrap_or_else(|| "CP_EVENTS".into());
        if events_stream.len() > 64
            || !events_stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(error(
                "EVENTS_STREAM",
                "must be 1-64 characters of [A-Za-z0-9_-] (a JetStream stream name)",
            ));
        }
        let jwt_secret = match get("JWT_SECRET") {
            Some(secret) => {
                let weak = secret.len() < MIN_SECRET_BYTES
                    || PLACEHOLDER_SECRETS.iter().any(|p| {
                        secret
                            .to_ascii_lowercase()
                            .contains(&p.to_ascii_lowercase())
                    });
                if weak && !development {
                    return Err(error(
                        "JWT_SECRET",
                        format!("is a placeholder or shorter than {MIN_SECRET_BYTES} bytes; set a random secret (e.g. `openssl rand -hex 32`)"),
                    ));
                }
                secret
            }
            None if development => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random one (tokens die with this process)"
                );
                random_secret()
            }
            None => {
                return Err(error(
                    "JWT_SECRET",
                    "is required outside development (APP_ENV=development)",
                ))
            }
        };
        let parse_num = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| error(name, format!("must be a whole number, not '{v}'"))),
            }
        };
        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h
                .parse()
                .map_err(|_| error("HOST", format!("must be an IP address, not '{h}'")))?,
        };
        let port = u16::try_from(parse_num("PORT", 8000)?)
            .map_err(|_| error("PORT", "must be at most 65535"))?;
        let token_ttl_seconds = parse_num("TOKEN_TTL_SECONDS", 3600)?;
        if !(60..=7 * 86_400).contains(&token_ttl_seconds) {
            return Err(error("TOKEN_TTL_SECONDS", "must be between 60 and 604800"));
        }
        let db_max_connections = parse_num("DB_MAX_CONNECTIONS", 32)?;
        if !(1..=1000).contains(&db_max_connections) {
            return Err(error("DB_MAX_CONNECTIONS", "must be between 1 and 1000"));
        }
        let expiry_ms = parse_num("EXPIRY_INTERVAL_MS", 1000)?.max(10);
        let read_wait_ms = parse_num("MIN_POSITION_WAIT_MS", 2000)?;
        if read_wait_ms > 30_000 {
            return Err(error("MIN_POSITION_WAIT_MS", "must be at most 30000"));
        }
        let secure_cookies = match get("SECURE_COOKIES").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(error(
                    "SECURE_COOKIES",
                    format!("must be true or false, not '{other}'"),
                ))
            }
        };
        let mut http_policy = gateway::hardening::HttpPolicy::default()
            .with_role_limits(&get("RATE_LIMITS").unwrap_or_default())
            .map_err(|problem| error("RATE_LIMITS", problem))?;
        http_policy.login_per_minute = u32::try_from(parse_num("LOGIN_RATE_PER_MINUTE", 5)?)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| error("LOGIN_RATE_PER_MINUTE", "must be between 1 and 4294967295"))?;
        http_policy.metrics_token = match get("METRICS_TOKEN").filter(|t| !t.is_empty()) {
            Some(token) if token.len() < 16 => {
                return Err(error("METRICS_TOKEN", "must be at least 16 characters"))
            }
            other => other.map(Arc::from),
        };
        http_policy.cors_origins = get("CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = http_policy
            .cors_origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(error(
                "CORS_ORIGINS",
                format!("'{bad}' is not an http(s) origin"),
            ));
        }
        let live = live_config(&parse_num, &http_policy.cors_origins)?;
        let sandbox_audit_stream =
            get("SANDBOX_AUDIT_STREAM").unwrap_or_else(|| "CP_SANDBOX_AUDIT".into());
        if sandbox_audit_stream.len() > 64
            || !sandbox_audit_stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(error(
                "SANDBOX_AUDIT_STREAM",
                "must be 1-64 characters of [A-Za-z0-9_-] (a JetStream stream name)",
            ));
        }
        let warning_percent = parse_num("GOVERNANCE_WARNING_PERCENT", 80)?;
        if !(1..=100).contains(&warning_percent) {
            return Err(error(
                "GOVERNANCE_WARNING_PERCENT",
                "must be between 1 and 100",
            ));
        }
        let metrics_refresh_ms = parse_num("METRICS_REFRESH_MS", 5000)?;
        if !(100..=600_000).contains(&metrics_refresh_ms) {
            return Err(error(
                "METRICS_REFRESH_MS",
                "must be between 100 and 600000",
            ));
        }
        let publisher_poll_ms = parse_num("PUBLISHER_POLL_MS", 50)?;
        if !(1..=60_000).contains(&publisher_poll_ms) {
            return Err(error("PUBLISHER_POLL_MS", "must be between 1 and 60000"));
        }
        let hash_checkpoint_events = parse_num("AUDIT_HASH_CHECKPOINT_EVENTS", 1000)?;
        if !(1..=10_000_000).contains(&hash_checkpoint_events) {
            return Err(error(
                "AUDIT_HASH_CHECKPOINT_EVENTS",
                "must be between 1 and 10000000",
            ));
        }
        let hash_checkpoint_ms = parse_num("AUDIT_HASH_CHECKPOINT_MS", 60_000)?;
        if !(10..=86_400_000).contains(&hash_checkpoint_ms) {
            return Err(error(
                "AUDIT_HASH_CHECKPOINT_MS",
                "must be between 10 and 86400000",
            ));
        }
        let jetstream_replicas = parse_num("JETSTREAM_REPLICAS", 1)?;
        if !(1..=5).contains(&jetstream_replicas) {
            return Err(error("JETSTREAM_REPLICAS", "must be between 1 and 5"));
        }
        let shutdown_grace_seconds = parse_num("SHUTDOWN_GRACE_SECONDS", 20)?;
        if !(1..=3600).contains(&shutdown_grace_seconds) {
            return Err(error(
                "SHUTDOWN_GRACE_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        let sandbox_url = match get("SANDBOX_URL") {
            None => Some("http://127.0.0.1:8001".to_string()),
            Some(url) if url.trim() == "-" => None,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => Some(url),
            Some(_) => {
                return Err(error(
                    "SANDBOX_URL",
                    "must start with http:// or https:// (or be - for no sandbox)",
                ))
            }
        };
        if nats_creds.is_none() && !development {
            return Err(error(
                "NATS_CREDS",
                "is required outside development and test: the control plane's NATS creds file (docs/nats-auth.md)",
            ));
        }
        Ok(Config {
            ui_dir: get("UI_DIR")
                .unwrap_or_else(|| "frontend/dist".into())
                .into(),
            sandbox_url,
            shutdown_grace: Duration::from_secs(shutdown_grace_seconds),
            hash_checkpoint_events: hash_checkpoint_events as i64,
            hash_checkpoint_interval: Duration::from_millis(hash_checkpoint_ms),
            warning_percent: warning_percent as u8,
            metrics_refresh: Duration::from_millis(metrics_refresh_ms),
            publisher_poll: Duration::from_millis(publisher_poll_ms),
            live,
            http_policy,
            database_url,
            nats_url,
            nats_creds,
            nats_account_seed,
            nats_prefix,
            events_stream,
            read_wait: Duration::from_millis(read_wait_ms),
            jwt_secret,
            token_ttl_seconds: token_ttl_seconds as i64,
            host,
            port,
            admin_password: get("ADMIN_PASSWORD"),
            development,
            db_max_connections: db_max_connections as u32,
            expiry_interval: Duration::from_millis(expiry_ms),
            dlq_capture: commands::dlq_capture::CaptureConfig {
                replicas: jetstream_replicas as usize,
                ..dlq_capture_config(&get, development)?
            },
            jetstream_replicas: jetstream_replicas as usize,
            sandbox_audit_stream,
            secure_cookies,
        })
    }
}

/// The WebSocket gateway's settings; every one has a default.
fn live_config(
    parse_num: &dyn Fn(&'static str, u64) -> Result<u64, ConfigError>,
    cors_origins: &[String],
) -> Result<gateway::live::LiveConfig, ConfigError> {
    let defaults = gateway::live::LiveConfig::default();
    let seconds = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
        match parse_num(name, default.as_secs())? {
            0 => Err(error(name, "must be at least 1")),
            n => Ok(Duration::from_secs(n)),
        }
    };
    let ring_events = parse_num("WS_BUFFER_EVENTS", defaults.ring_events as u64)?;
    if !(16..=1_000_000).contains(&ring_events) {
        return Err(error("WS_BUFFER_EVENTS", "must be between 16 and 1000000"));
    }
    let config = gateway::live::LiveConfig {
        ring_events: ring_events as usize,
        max_connections: parse_num("WS_MAX_CONNECTIONS", defaults.max_connections as u64)? as usize,
        ping_interval: seconds("WS_PING_SECONDS", defaults.ping_interval)?,
        idle_timeout: seconds("WS_IDLE_SECONDS", defaults.idle_timeout)?,
        send_timeout: seconds("WS_SEND_TIMEOUT_SECONDS", defaults.send_timeout)?,
        stats_interval: seconds("WS_STATS_SECONDS", defaults.stats_interval)?,
        auth_timeout: defaults.auth_timeout,
        allowed_origins: cors_origins.to_vec(),
        threads: match parse_num("WS_THREADS", defaults.threads as u64)? {
            n @ 1..=256 => n as usize,
            _ => return Err(error("WS_THREADS", "must be between 1 and 256")),
        },
    };
    if config.idle_timeout <= config.ping_interval {
        return Err(error(
            "WS_IDLE_SECONDS",
            "must be longer than WS_PING_SECONDS (a live client answers every ping)",
        ));
    }
    Ok(config)
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(config.live.ping_interval, Duration::from_secs(5));
        let err = Config::from_lookup(lookup(&[DB, dev, ("WS_IDLE_SECONDS", "10")])).unwrap_err();
        assert_eq!(err.variable, "WS_IDLE_SECONDS");
        let err = Config::from_lookup(lookup(&[DB, dev, ("WS_BUFFER_EVENTS", "2")])).unwrap_err();
        assert_eq!(err.variable, "WS_BUFFER_EVENTS");
        let config = Config::from_lookup(lookup(&[DB, dev, ("WS_THREADS", "3")])).unwrap();
        assert_eq!(config.live.threads, 3);
        let err = Config::from_lookup(lookup(&[DB, dev, ("WS_THREADS", "0")])).unwrap_err();
        assert_eq!(err.variable, "WS_THREADS");
    }

    #[test]
    fn stream_replicas_reach_every_stream_config_and_are_bounded() {
        let dev = ("APP_ENV", "development");
        let config = Config::from_lookup(lookup(&[DB, dev, ("JETSTREAM_REPLICAS", "3")])).unwrap();
        assert_eq!(config.jetstream_replicas, 3);
        assert_eq!(config.dlq_capture.stream_config().num_replicas, 3);
        let defaults = Config::from_lookup(lookup(&[DB, dev])).unwrap();
        assert_eq!(defaults.jetstream_replicas, 1);
        for bad in ["0", "6", "three"] {
            let err =
                Config::from_lookup(lookup(&[DB, dev, ("JETSTREAM_REPLICAS", bad)])).unwrap_err();
            assert_eq!(err.variable, "JETSTREAM_REPLICAS");
        }
    }

    #[test]
    fn development_accepts_a_missing_secret() {
        let config = Config::from_lookup(lookup(&[DB, ("APP_ENV", "development")])).unwrap();
        assert_eq!(config.jwt_secret.len(), 64);
    }

    #[test]
    fn defaults_are_localhost_8000() {
        let config = Config::from_lookup(lookup(&[
            DB,
            ("JWT_SECRET", &"x".repeat(40)),
            ("NATS_CREDS", "/run/secrets/controlplane.creds"),
        ]))
        .unwrap();
        assert_eq!(config.port, 8000);
        assert_eq!(config.host.to_string(), "127.0.0.1");
        assert_eq!(config.nats_prefix, "cp");
        assert_eq!(config.events_stream, "CP_EVENTS");
        assert_eq!(config.read_wait, Duration::from_secs(2));
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
        assert_eq!(config.warning_percent, 80);
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
