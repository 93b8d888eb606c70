//! Typed configuration from the environment. Every variable is documented in
//! `docs/sandbox.md`; a wrong one is refused at start with its name.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;

/// A language the service runs: the image it runs in and the command the code is appended to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Language {
    pub image: String,
    /// The code is passed as the last argument, e.g. `python3 -c <code>`.
    pub command: Vec<String>,
}

/// Server-side limits. A request may lower the timeout and memory, never raise them past
/// the maxima.
#[derive(Clone, Debug)]
pub struct Limits {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub default_memory_mb: u64,
    pub max_memory_mb: u64,
    /// The smallest memory a request may ask for; less would not even start an interpreter.
    pub min_memory_mb: u64,
    /// CPU quota in billionths of a CPU (the Engine API's `NanoCpus`).
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub tmpfs_mb: u64,
    /// Per stream (stdout, stderr); past it the output is cut and `truncated` is set.
    pub max_output_bytes: usize,
    pub max_code_bytes: usize,
    pub max_stdin_bytes: usize,
}

/// Everything `build_app` needs. The secret is a [`SecretString`]: `Debug` shows it redacted.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub development: bool,
    /// The control plane's `JWT_SECRET`, to verify its tokens.
    pub jwt_secret: SecretString,
    /// `unix:///path/to.sock` (a bare path is accepted and prefixed).
    pub docker_host: String,
    /// OCI runtime for the containers (`runsc` for gVisor); `None` = the engine's default.
    pub runtime: Option<String>,
    pub languages: BTreeMap<String, Language>,
    /// `user[:group]` the code runs as inside the container; never root.
    pub user: String,
    /// Value of the `golden-arch.sandbox.instance` label on this service's containers. Leftovers
    /// carrying it are removed at start, so each replica sharing an engine needs its own.
    pub instance: String,
    pub limits: Limits,
    pub max_concurrent: usize,
    pub queue_size: usize,
    pub queue_timeout: Duration,
    pub nats_url: Option<String>,
    /// The sandbox's NATS creds file (`NATS_CREDS`; docs/nats-auth.md): the identity that
    /// alone may publish run reports.
    pub nats_creds: Option<std::path::PathBuf>,
    pub nats_prefix: String,
    pub audit_include_code: bool,
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

/// The image `scripts/sandbox-engine.sh up` builds.
pub const DEFAULT_PYTHON_IMAGE: &str = "golden-arch/python-runtime:latest";
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Commands of the languages that need no `SANDBOX_COMMANDS` entry.
fn builtin_command(language: &str) -> Option<Vec<String>> {
    let argv: &[&str] = match language {
        "python" | "python3" => &["python3", "-c"],
        "node" | "javascript" => &["node", "-e"],
        "ruby" => &["ruby", "-e"],
        "perl" => &["perl", "-e"],
        "sh" => &["sh", "-c"],
        "bash" => &["bash", "-c"],
        _ => return None,
    };
    Some(argv.iter().map(|s| s.to_string()).collect())
}

/// `a=x,b=y` into pairs; empty items are skipped.
fn pairs(variable: &'static str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(error(
                variable,
                format!("'{item}' is not of the form language=value"),
            )),
        })
        .collect()
}

fn valid_language_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var`, so tests can pass a map.
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
        // The control plane's rule (auth::secret): both sign or verify the same tokens.
        let jwt_secret = match get("JWT_SECRET") {
            Some(secret) => {
                if let Err(weak) = auth::secret::check_secret(&secret) {
                    if !development {
                        return Err(error(
                            "JWT_SECRET",
                            format!("{weak}; use the control plane's secret"),
                        ));
                    }
                }
                SecretString::from(secret)
            }
            // Unlike the control plane, a random secret is useless here: the sandbox only
            // verifies tokens, it never issues them.
            None => {
                return Err(error(
                    "JWT_SECRET",
                    "is required (the control plane's secret, to verify its tokens)",
                ))
            }
        };

        let num = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| error(name, format!("must be a whole number, not '{v}'"))),
            }
        };
        let ranged = |name: &'static str,
                      default: u64,
                      range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            let v = num(name, default)?;
            if range.contains(&v) {
                Ok(v)
            } else {
                Err(error(
                    name,
                    format!(
                        "must be between {} and {}, not {v}",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };

        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h
                .parse()
                .map_err(|_| error("HOST", format!("must be an IP address, not '{h}'")))?,
        };
        let port = u16::try_from(num("SANDBOX_PORT", 8001)?)
            .map_err(|_| error("SANDBOX_PORT", "must be at most 65535"))?;

        let docker_host = match get("DOCKER_HOST") {
            None => DEFAULT_DOCKER_HOST.to_string(),
            Some(h) if h.starts_with("unix://") => h,
            Some(h) if h.starts_with('/') => format!("unix://{h}"),
            Some(h) => {
                return Err(error(
                    "DOCKER_HOST",
                    format!("must be a unix socket (unix:///path or /path), not '{h}'"),
                ))
            }
        };
        let runtime = get("SANDBOX_RUNTIME").map(|r| r.trim().to_string());

        let commands: BTreeMap<String, Vec<String>> = match get("SANDBOX_COMMANDS") {
            None => BTreeMap::new(),
            Some(v) => pairs("SANDBOX_COMMANDS", &v)?
                .into_iter()
                .map(|(lang, cmd)| (lang, cmd.split_whitespace().map(String::from).collect()))
                .collect(),
        };
        let images = match get("SANDBOX_IMAGES") {
            None => vec![("python".to_string(), DEFAULT_PYTHON_IMAGE.to_string())],
            Some(v) => pairs("SANDBOX_IMAGES", &v)?,
        };
        let mut languages = BTreeMap::new();
        for (name, image) in images {
            if !valid_language_name(&name) {
                return Err(error(
                    "SANDBOX_IMAGES",
                    format!("language name '{name}' must be 1-32 of [a-z0-9_-]"),
                ));
            }
            let command = match commands
                .get(&name)
                .cloned()
                .or_else(|| builtin_command(&name))
            {
                Some(c) => c,
                None => {
                    return Err(error(
                        "SANDBOX_COMMANDS",
                        format!("no command for language '{name}' (e.g. {name}=interpreter -c)"),
                    ))
                }
            };
            languages.insert(name, Language { image, command });
        }
        if languages.is_empty() {
            return Err(error("SANDBOX_IMAGES", "names no language"));
        }
        if let Some(extra) = commands.keys().find(|k| !languages.contains_key(*k)) {
            return Err(error(
                "SANDBOX_COMMANDS",
                format!("'{extra}' has a command but no image in SANDBOX_IMAGES"),
            ));
        }

        let user = get("SANDBOX_USER").unwrap_or_else(|| "65534:65534".into());
        let uid = user.split(':').next().unwrap_or_default();
        if uid.is_empty() || uid == "0" || uid == "root" {
            return Err(error(
                "SANDBOX_USER",
                "must name a non-root user, e.g. 65534:65534",
            ));
        }
        let instance = get("SANDBOX_INSTANCE").unwrap_or_else(|| "default".into());
        if !instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            || instance.len() > 64
        {
            return Err(error("SANDBOX_INSTANCE", "must be 1-64 of [A-Za-z0-9_.-]"));
        }

        let max_timeout = ranged("SANDBOX_MAX_TIMEOUT_SECS", 30, 1..=3600)?;
        let default_timeout = ranged("SANDBOX_DEFAULT_TIMEOUT_SECS", 5, 1..=3600)?;
        if default_timeout > max_timeout {
            return Err(error(
                "SANDBOX_DEFAULT_TIMEOUT_SECS",
                "must not exceed SANDBOX_MAX_TIMEOUT_SECS",
            ));
        }
        let max_memory_mb = ranged("SANDBOX_MAX_MEMORY_MB", 512, 16..=65536)?;
        let default_memory_mb = ranged("SANDBOX_DEFAULT_MEMORY_MB", 128, 16..=65536)?;
        if default_memory_mb > max_memory_mb {
            return Err(error(
                "SANDBOX_DEFAULT_MEMORY_MB",
                "must not exceed SANDBOX_MAX_MEMORY_MB",
            ));
        }
        let cpus = match get("SANDBOX_CPUS") {
            None => 1.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(c) if (0.01..=64.0).contains(&c) => c,
                _ => {
                    return Err(error(
                        "SANDBOX_CPUS",
                        format!("must be a number of CPUs between 0.01 and 64, not '{v}'"),
                    ))
                }
            },
        };
        let limits = Limits {
            default_timeout: Duration::from_secs(default_timeout),
            max_timeout: Duration::from_secs(max_timeout),
            default_memory_mb,
            max_memory_mb,
            min_memory_mb: 16,
            nano_cpus: (cpus * 1e9) as i64,
            pids_limit: ranged("SANDBOX_PIDS_LIMIT", 64, 8..=100_000)? as i64,
            tmpfs_mb: ranged("SANDBOX_TMPFS_MB", 16, 1..=4096)?,
            max_output_bytes: ranged("SANDBOX_MAX_OUTPUT_BYTES", 64 * 1024, 1024..=16 << 20)?
                as usize,
            max_code_bytes: ranged("SANDBOX_MAX_CODE_BYTES", 64 * 1024, 1..=120 * 1024)? as usize,
            max_stdin_bytes: ranged("SANDBOX_MAX_STDIN_BYTES", 64 * 1024, 0..=16 << 20)? as usize,
        };

        let nats_prefix = get("NATS_SUBJECT_PREFIX").unwrap_or_else(|| "cp".into());
        natsauth::subjects::check_prefix(&nats_prefix)
            .map_err(|problem| error("NATS_SUBJECT_PREFIX", problem))?;
        let audit_include_code = match get("SANDBOX_AUDIT_INCLUDE_CODE").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(error(
                    "SANDBOX_AUDIT_INCLUDE_CODE",
                    format!("must be true or false, not '{other}'"),
                ))
            }
        };

        Ok(Config {
            host,
            port,
            development,
            jwt_secret,
            docker_host,
            runtime,
            languages,
            user,
            instance,
            limits,
            max_concurrent: ranged("SANDBOX_MAX_CONCURRENT", 4, 1..=1024)? as usize,
            queue_size: ranged("SANDBOX_QUEUE_SIZE", 32, 0..=100_000)? as usize,
            queue_timeout: Duration::from_secs(ranged("SANDBOX_QUEUE_TIMEOUT_SECS", 30, 1..=3600)?),
            nats_url: get("NATS_URL"),
            nats_creds: get("NATS_CREDS").filter(|p| !p.is_empty()).map(Into::into),
            nats_prefix,
            audit_include_code,
        })
    }
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

    const SECRET: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef-x");

    #[test]
    fn defaults_are_localhost_8001_python_and_the_docker_socket() {
        let c = Config::from_lookup(lookup(&[SECRET])).unwrap();
        assert_eq!(c.port, 8001);
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.docker_host, DEFAULT_DOCKER_HOST);
        assert_eq!(c.languages["python"].image, DEFAULT_PYTHON_IMAGE);
        assert_eq!(c.languages["python"].command, ["python3", "-c"]);
        assert_eq!(c.nats_prefix, "cp");
        assert!(c.nats_url.is_none() && !c.audit_include_code);
        assert_eq!(c.limits.max_output_bytes, 65536);
    }

    #[test]
    fn a_missing_or_weak_secret_is_refused_by_name() {
        assert_eq!(
            Config::from_lookup(lookup(&[])).unwrap_err().variable,
            "JWT_SECRET"
        );
        let weak = Config::from_lookup(lookup(&[("JWT_SECRET", "short")])).unwrap_err();
        assert_eq!(weak.variable, "JWT_SECRET");
        assert!(
            Config::from_lookup(lookup(&[("JWT_SECRET", "short"), ("APP_ENV", "test")])).is_ok()
        );
    }

    #[test]
    fn images_and_commands_are_configuration() {
        let c = Config::from_lookup(lookup(&[
            SECRET,
            ("SANDBOX_IMAGES", "python=img/py:1, lua=img/lua:5"),
            ("SANDBOX_COMMANDS", "lua=lua -e"),
            ("DOCKER_HOST", "/run/podman.sock"),
        ]))
        .unwrap();
        assert_eq!(c.languages.len(), 2);
        assert_eq!(c.languages["lua"].command, ["lua", "-e"]);
        assert_eq!(c.docker_host, "unix:///run/podman.sock");
    }

    #[test]
    fn a_language_without_a_command_is_refused() {
        let err = Config::from_lookup(lookup(&[SECRET, ("SANDBOX_IMAGES", "cobol=img/cobol")]))
            .unwrap_err();
        assert_eq!(err.variable, "SANDBOX_COMMANDS");
    }

    #[test]
    fn root_is_refused_as_the_sandbox_user() {
        for user in ["0", "0:0", "root"] {
            let err = Config::from_lookup(lookup(&[SECRET, ("SANDBOX_USER", user)])).unwrap_err();
            assert_eq!(err.variable, "SANDBOX_USER");
        }
    }

    #[test]
    fn bad_numbers_and_inverted_limits_name_their_variable() {
        let err = Config::from_lookup(lookup(&[SECRET, ("SANDBOX_PORT", "eighty")])).unwrap_err();
        assert_eq!(err.variable, "SANDBOX_PORT");
        let err = Config::from_lookup(lookup(&[
            SECRET,
            ("SANDBOX_DEFAULT_TIMEOUT_SECS", "60"),
            ("SANDBOX_MAX_TIMEOUT_SECS", "10"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "SANDBOX_DEFAULT_TIMEOUT_SECS");
        let err = Config::from_lookup(lookup(&[SECRET, ("DOCKER_HOST", "tcp://1.2.3.4:2375")]))
            .unwrap_err();
        assert_eq!(err.variable, "DOCKER_HOST");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        // Debug is derived: the secret is what keeps itself out of it.
        let c = Config::from_lookup(lookup(&[("JWT_SECRET", &"s3cr3t".repeat(8))])).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
