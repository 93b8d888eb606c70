//! The sections of [`super::Config`], each read from its own variables. Every variable is
//! explained in `.env.example`; the rules two binaries share live with what they protect
//! (the JWT secret's in `auth`, the subject prefix's in `natsauth`, the stream name's in
//! `streams`).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::env::{error, ConfigError, Env};

/// Where `serve` listens, and what it serves besides the API.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `HOST` (default 127.0.0.1).
    pub host: std::net::IpAddr,
    /// `PORT` (default 8000).
    pub port: u16,
    /// The built dashboard (`UI_DIR`, default `frontend/dist`): served at `/` when it holds
    /// an `index.html`.
    pub ui_dir: PathBuf,
    /// The sandbox service the health card probes and `/sandbox/*` forwards to
    /// (`SANDBOX_URL`, default `http://127.0.0.1:8001`; `-`: none).
    pub sandbox_url: Option<String>,
    /// On SIGTERM/SIGINT, how long `serve` may take to answer what it took and close its
    /// WebSockets before it stops the rest (`SHUTDOWN_GRACE_SECONDS`, default 20).
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let host = env.host("HOST")?;
        let port = u16::try_from(env.number("PORT", 8000)?)
            .map_err(|_| error("PORT", "must be at most 65535"))?;
        let shutdown_grace = env.ranged("SHUTDOWN_GRACE_SECONDS", 20, 1..=3600)?;
        let sandbox_url = match env.get("SANDBOX_URL") {
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
        Ok(Self {
            host,
            port,
            ui_dir: env.text("UI_DIR", "frontend/dist").into(),
            sandbox_url,
            shutdown_grace: Duration::from_secs(shutdown_grace),
        })
    }
}

/// PostgreSQL, the source of truth.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` (required). A secret: it usually carries the password.
    pub url: SecretString,
    /// `DB_MAX_CONNECTIONS` (default 32).
    pub max_connections: u32,
}

impl DatabaseConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let url = env
            .get("DATABASE_URL")
            .ok_or_else(|| error("DATABASE_URL", "is required"))?;
        Ok(Self {
            url: url.into(),
            max_connections: env.ranged("DB_MAX_CONNECTIONS", 32, 1..=1000)? as u32,
        })
    }
}

/// The NATS connection and the subjects of the command API.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// `NATS_URL` (default `nats://127.0.0.1:4222`).
    pub url: String,
    /// The creds file this process connects to NATS with (`NATS_CREDS`: the control
    /// plane's identity, docs/nats-auth.md); required outside development and test.
    pub creds: Option<PathBuf>,
    /// The account seed `controlplane service add` signs services' credentials with
    /// (`NATS_ACCOUNT_SEED_FILE`); `serve` does not need it.
    pub account_seed: Option<PathBuf>,
    /// First token of every NATS subject (`<prefix>.cmd.<service>.budget.request`); tests
    /// use their own (`NATS_SUBJECT_PREFIX`, default `cp`).
    pub prefix: String,
}

impl NatsConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let prefix = env.text("NATS_SUBJECT_PREFIX", "cp");
        natsauth::subjects::check_prefix(&prefix)
            .map_err(|problem| error("NATS_SUBJECT_PREFIX", problem))?;
        Ok(Self {
            url: env.text("NATS_URL", "nats://127.0.0.1:4222"),
            creds: env.path("NATS_CREDS"),
            account_seed: env.path("NATS_ACCOUNT_SEED_FILE"),
            prefix,
        })
    }
}

/// The JetStream streams the control plane makes.
#[derive(Clone, Debug)]
pub struct StreamsConfig {
    /// The stream events are published to (`EVENTS_STREAM`, default `CP_EVENTS`); tests
    /// use their own.
    pub events: String,
    /// Replicas of every stream the control plane makes (`JETSTREAM_REPLICAS`, 1: one
    /// server; 3 on a three-node JetStream cluster).
    pub replicas: usize,
    /// The stream keeping sandbox run reports until they are recorded
    /// (`SANDBOX_AUDIT_STREAM`, default `CP_SANDBOX_AUDIT`).
    pub sandbox_audit: String,
    /// Dead-letter capture: the advisory stream (`DLQ_ADVISORY_STREAM`) and the streams
    /// watched (`DLQ_WATCH_STREAMS`; see [`dlq_capture`]).
    pub dlq_capture: commands::dlq_capture::CaptureConfig,
}

impl StreamsConfig {
    pub(super) fn read(env: &Env, development: bool) -> Result<Self, ConfigError> {
        let events = env.stream_name("EVENTS_STREAM", "CP_EVENTS")?;
        let sandbox_audit = env.stream_name("SANDBOX_AUDIT_STREAM", "CP_SANDBOX_AUDIT")?;
        let replicas = env.ranged("JETSTREAM_REPLICAS", 1, 1..=5)? as usize;
        Ok(Self {
            events,
            replicas,
            sandbox_audit,
            dlq_capture: commands::dlq_capture::CaptureConfig {
                replicas,
                ..dlq_capture(env, development)?
            },
        })
    }
}

/// `DLQ_ADVISORY_STREAM` (default `CP_DLQ_ADVISORIES`) and `DLQ_WATCH_STREAMS`
/// (comma-separated stream names, `*` for every stream, `-` for none).
fn dlq_capture(
    env: &Env,
    development: bool,
) -> Result<commands::dlq_capture::CaptureConfig, ConfigError> {
    let stream = env.stream_name("DLQ_ADVISORY_STREAM", "CP_DLQ_ADVISORIES")?;
    // Unset: every stream in production; none in development and test, where several
    // control planes share one NATS server and a catch-all advisory stream of one would
    // overlap (and so block) the advisory stream of every other.
    let watch = match env.get("DLQ_WATCH_STREAMS") {
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
            if let Some(bad) = list.iter().find(|s| !streams::setup::is_stream_name(s)) {
                return Err(error(
                    "DLQ_WATCH_STREAMS",
                    format!(
                        "'{bad}' is not a stream name ({}), '*' or '-'",
                        streams::setup::STREAM_NAME_RULE
                    ),
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

/// Tokens, sessions and the first account.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Signs and verifies the session tokens (`JWT_SECRET`; outside development a missing,
    /// short or placeholder one is refused: [`auth::secret::check_secret`]).
    pub jwt_secret: SecretString,
    /// `TOKEN_TTL_SECONDS` (default 3600).
    pub token_ttl_seconds: i64,
    /// The `admin` account's password, set at start when given (`ADMIN_PASSWORD`).
    pub admin_password: Option<SecretString>,
    /// Mark the session cookie `Secure` (`SECURE_COOKIES`; set when served over HTTPS).
    pub secure_cookies: bool,
}

impl AuthConfig {
    pub(super) fn read(env: &Env, development: bool) -> Result<Self, ConfigError> {
        let jwt_secret = match env.get("JWT_SECRET") {
            Some(secret) => {
                if let Err(weak) = auth::secret::check_secret(&secret) {
                    if !development {
                        return Err(error(
                            "JWT_SECRET",
                            format!("{weak}; set a random secret (e.g. `openssl rand -hex 32`)"),
                        ));
                    }
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
        Ok(Self {
            jwt_secret: jwt_secret.into(),
            token_ttl_seconds: env.ranged("TOKEN_TTL_SECONDS", 3600, 60..=7 * 86_400)? as i64,
            admin_password: env.get("ADMIN_PASSWORD").map(SecretString::from),
            secure_cookies: env.flag("SECURE_COOKIES")?,
        })
    }
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rate limits, CORS, the `/metrics` secret and the WebSocket settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// `RATE_LIMITS`, `LOGIN_RATE_PER_MINUTE`, `CORS_ORIGINS`, `METRICS_TOKEN`.
    pub policy: gateway::hardening::HttpPolicy,
    /// WebSocket settings (`WS_*`).
    pub live: gateway::live::LiveConfig,
}

impl HttpConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let mut policy = gateway::hardening::HttpPolicy::default()
            .with_role_limits(&env.get("RATE_LIMITS").unwrap_or_default())
            .map_err(|problem| error("RATE_LIMITS", problem))?;
        policy.login_per_minute =
            env.ranged("LOGIN_RATE_PER_MINUTE", 5, 1..=u64::from(u32::MAX))? as u32;
        policy.metrics_token = match env.get("METRICS_TOKEN") {
            Some(token) if token.len() < 16 => {
                return Err(error("METRICS_TOKEN", "must be at least 16 characters"))
            }
            other => other.map(SecretString::from),
        };
        policy.cors_origins = env
            .get("CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = policy
            .cors_origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(error(
                "CORS_ORIGINS",
                format!("'{bad}' is not an http(s) origin"),
            ));
        }
        let live = live_config(env, &policy.cors_origins)?;
        Ok(Self { policy, live })
    }
}

/// The WebSocket gateway's settings; every one has a default.
fn live_config(
    env: &Env,
    cors_origins: &[String],
) -> Result<gateway::live::LiveConfig, ConfigError> {
    let defaults = gateway::live::LiveConfig::default();
    let seconds = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
        match env.number(name, default.as_secs())? {
            0 => Err(error(name, "must be at least 1")),
            n => Ok(Duration::from_secs(n)),
        }
    };
    let config = gateway::live::LiveConfig {
        ring_events: env.ranged(
            "WS_BUFFER_EVENTS",
            defaults.ring_events as u64,
            16..=1_000_000,
        )? as usize,
        max_connections: env.number("WS_MAX_CONNECTIONS", defaults.max_connections as u64)?
            as usize,
        ping_interval: seconds("WS_PING_SECONDS", defaults.ping_interval)?,
        idle_timeout: seconds("WS_IDLE_SECONDS", defaults.idle_timeout)?,
        send_timeout: seconds("WS_SEND_TIMEOUT_SECONDS", defaults.send_timeout)?,
        stats_interval: seconds("WS_STATS_SECONDS", defaults.stats_interval)?,
        auth_timeout: defaults.auth_timeout,
        allowed_origins: cors_origins.to_vec(),
        threads: env.ranged("WS_THREADS", defaults.threads as u64, 1..=256)? as usize,
        replays_per_minute: env.ranged(
            "WS_REPLAYS_PER_MINUTE",
            u64::from(defaults.replays_per_minute),
            1..=100_000,
        )? as u32,
    };
    if config.idle_timeout <= config.ping_interval {
        return Err(error(
            "WS_IDLE_SECONDS",
            "must be longer than WS_PING_SECONDS (a live client answers every ping)",
        ));
    }
    Ok(config)
}

/// The event pipeline: the publisher's pace and audit hash checkpoints, and how long a
/// read waits for its writes to be projected.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Longest wait of the publisher between two looks at the log when no notification
    /// comes (`PUBLISHER_POLL_MS`, default 50).
    pub publisher_poll: Duration,
    /// The publisher records its running hash over the log every this many events
    /// (`AUDIT_HASH_CHECKPOINT_EVENTS`, default 1000)...
    pub hash_checkpoint_events: i64,
    /// ...or after this long with events published since (`AUDIT_HASH_CHECKPOINT_MS`,
    /// default 60000).
    pub hash_checkpoint_interval: Duration,
    /// Longest wait of a read with `min_position` before it answers 503
    /// (`MIN_POSITION_WAIT_MS`, default 2000).
    pub read_wait: Duration,
}

impl PipelineConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let read_wait_ms = env.number("MIN_POSITION_WAIT_MS", 2000)?;
        if read_wait_ms > 30_000 {
            return Err(error("MIN_POSITION_WAIT_MS", "must be at most 30000"));
        }
        Ok(Self {
            publisher_poll: Duration::from_millis(env.ranged(
                "PUBLISHER_POLL_MS",
                50,
                1..=60_000,
            )?),
            hash_checkpoint_events: env.ranged(
                "AUDIT_HASH_CHECKPOINT_EVENTS",
                1000,
                1..=10_000_000,
            )? as i64,
            hash_checkpoint_interval: Duration::from_millis(env.ranged(
                "AUDIT_HASH_CHECKPOINT_MS",
                60_000,
                10..=86_400_000,
            )?),
            read_wait: Duration::from_millis(read_wait_ms),
        })
    }
}

/// The background workers' cadence and what the overview pages and gauges show.
#[derive(Clone, Debug)]
pub struct WorkersConfig {
    /// How often the expiry, breaker retry and redrive workers look for due work
    /// (`EXPIRY_INTERVAL_MS`, default 1000, at least 10).
    pub expiry_interval: Duration,
    /// A budget is `warning` in `/governance/status` from this share of its limit, in
    /// percent (`GOVERNANCE_WARNING_PERCENT`, default 80).
    pub warning_percent: u8,
    /// How often the business gauges of `/metrics` are read again (`METRICS_REFRESH_MS`).
    pub metrics_refresh: Duration,
}

impl WorkersConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            expiry_interval: Duration::from_millis(env.number("EXPIRY_INTERVAL_MS", 1000)?.max(10)),
            warning_percent: env.ranged("GOVERNANCE_WARNING_PERCENT", 80, 1..=100)? as u8,
            metrics_refresh: Duration::from_millis(env.ranged(
                "METRICS_REFRESH_MS",
                5000,
                100..=600_000,
            )?),
        })
    }
}
