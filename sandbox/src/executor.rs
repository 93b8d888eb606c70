//! One run = one fresh container, created, attached, started, watched against the wall clock,
//! and always removed. Speaks only the Docker Engine API (bollard), so the same code drives
//! Docker Engine (with gVisor's `runsc` in production) and podman's compatible service.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerSummary, HostConfig,
    HostConfigLogConfig,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::config::{Config, Language, Limits};

/// Marks every container this service creates (value `1`).
pub const LABEL_SANDBOX: &str = "golden-arch.sandbox";
/// Which service instance created the container; the leftover sweep only touches its own.
pub const LABEL_INSTANCE: &str = "golden-arch.sandbox.instance";
pub const LABEL_LANGUAGE: &str = "golden-arch.sandbox.language";

/// What to run, after validation: limits are already within the server's maxima.
#[derive(Clone, Debug)]
pub struct Job {
    pub language: String,
    pub runtime: Language,
    pub code: String,
    pub stdin: Option<String>,
    pub timeout: Duration,
    pub memory_mb: u64,
}

/// The answer of `POST /execute`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Execution {
    pub stdout: String,
    pub stderr: String,
    /// The process's exit code; 137 (SIGKILL) after a timeout or an out-of-memory kill.
    pub exit_code: i64,
    pub duration_ms: u64,
    pub timed_out: bool,
    /// Some output past the per-stream cap was dropped.
    pub truncated: bool,
    pub oom_killed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine does not answer (socket missing, refused, timed out).
    #[error("container engine unreachable: {0}")]
    Unreachable(String),
    /// The language's image is not present on the engine.
    #[error("image {0} is not present on the container engine")]
    ImageMissing(String),
    /// The engine answered with an error we did not expect.
    #[error("container engine error: {0}")]
    Failed(String),
}

/// The containers (running or not) that match `filters`. Podman 4 lists a container that is
/// being cleaned up after its program ended in the state `stopped`, which Docker's API (and
/// so bollard's types) does not have, and the whole list then fails to parse; the state
/// passes once the cleanup is done (`exited`), so the list is asked again for a while.
pub async fn containers_labelled(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ContainerSummary>, BollardError> {
    const ATTEMPTS: u32 = 50;
    let mut attempt = 0;
    loop {
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(filters)
            .build();
        match docker.list_containers(Some(options)).await {
            Err(BollardError::JsonDataError { .. }) if attempt < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answer => return answer,
        }
    }
}

fn classify(e: BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::Failed(format!("{status_code}: {message}")),
        BollardError::SocketNotFoundError(path) => {
            EngineError::Unreachable(format!("no socket at {path}"))
        }
        other => {
            let text = other.to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("connect")
                || lower.contains("timed out")
                || lower.contains("timeout")
                || lower.contains("hyper")
                || lower.contains("broken pipe")
            {
                EngineError::Unreachable(text)
            } else {
                EngineError::Failed(text)
            }
        }
    }
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A lazily connected client: the service starts (and answers `/healthz` with 503) even when
/// the engine is not up yet, and connects as soon as it is.
pub struct Engine {
    host: String,
    request_timeout_secs: u64,
    client: tokio::sync::Mutex<Option<Docker>>,
}

impl Engine {
    pub fn new(host: &str, request_timeout: Duration) -> Self {
        Engine {
            host: host.to_string(),
            request_timeout_secs: request_timeout.as_secs().max(10),
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// A client whose API version is negotiated with the engine (bollard's default is newer
    /// than podman's 1.41, and Docker refuses versions newer than its own).
    pub async fn client(&self) -> Result<Docker, EngineError> {
        let mut slot = self.client.lock().await;
        if let Some(docker) = slot.as_ref() {
            return Ok(docker.clone());
        }
        let docker =
            Docker::connect_with_unix(&self.host, self.request_timeout_secs, API_DEFAULT_VERSION)
                .map_err(classify)?;
        let docker = tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
            .await
            .map_err(|_| EngineError::Unreachable("version negotiation timed out".into()))?
            .map_err(classify)?;
        *slot = Some(docker.clone());
        Ok(docker)
    }

    /// The engine's version, if it answers within `within`.
    pub async fn version(&self, within: Duration) -> Result<String, EngineError> {
        let docker = self.client().await?;
        let v = tokio::time::timeout(within, docker.version())
            .await
            .map_err(|_| EngineError::Unreachable("no answer".into()))?
            .map_err(classify)?;
        Ok(v.version.unwrap_or_default())
    }
}

/// Output of one stream, kept up to `limit` bytes; the rest is counted and dropped.
struct Capture {
    buf: Vec<u8>,
    limit: usize,
    total: usize,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Capture {
            buf: Vec::new(),
            limit,
            total: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        let room = self.limit.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn truncated(&self) -> bool {
        self.total > self.limit
    }

    /// Lossy UTF-8; a character cut in half by the cap is dropped rather than mangled.
    fn into_string(mut self) -> String {
        if self.truncated() {
            if let Err(e) = std::str::from_utf8(&self.buf) {
                if e.error_len().is_none() {
                    self.buf.truncate(e.valid_up_to());
                }
            }
        }
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// Creates, runs and removes the containers, and sweeps leftovers.
pub struct Executor {
    engine: Engine,
    limits: Limits,
    runtime: Option<String>,
    user: String,
    instance: String,
    /// Names of containers a run owns right now; the sweep never touches them.
    in_flight: Mutex<HashSet<String>>,
}

impl Executor {
    pub fn new(config: &Config) -> Self {
        Executor {
            // A request to the engine never legitimately takes longer than the longest run.
            engine: Engine::new(
                &config.docker_host,
                config.limits.max_timeout + Duration::from_secs(60),
            ),
            limits: config.limits.clone(),
            runtime: config.runtime.clone(),
            user: config.user.clone(),
            instance: config.instance.clone(),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Containers that runs own right now (running, or being removed).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().expect("poisoned").len()
    }

    /// Waits (at most `limit`) until no run owns a container: used at shutdown so that runs
    /// finish and their containers are removed before the process exits.
    pub async fn drain(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while self.in_flight() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The container definition: every isolation setting of the service lives here.
    pub fn container_body(&self, job: &Job) -> ContainerCreateBody {
        let memory = (job.memory_mb as i64) << 20;
        let tmpfs_bytes = (self.limits.tmpfs_mb as i64) << 20;
        let mut cmd = job.runtime.command.clone();
        cmd.push(job.code.clone());
        let with_stdin = job.stdin.is_some();
        let labels = HashMap::from([
            (LABEL_SANDBOX.to_string(), "1".to_string()),
            (LABEL_INSTANCE.to_string(), self.instance.clone()),
            (LABEL_LANGUAGE.to_string(), job.language.clone()),
        ]);
        // Only /tmp is writable. podman mounts writable tmpfs on /run and /var/tmp of a
        // read-only container by itself; read-only ones in their place keep "only /tmp" true on
        // both engines.
        let tmpfs = HashMap::from([
            (
                "/tmp".to_string(),
                format!(
                    "rw,nosuid,nodev,noexec,size={}m,mode=1777",
                    self.limits.tmpfs_mb
                ),
            ),
            (
                "/var/tmp".to_string(),
                "ro,nosuid,nodev,noexec,size=64k".to_string(),
            ),
            (
                "/run".to_string(),
                "ro,nosuid,nodev,noexec,size=64k".to_string(),
            ),
        ]);
        ContainerCreateBody {
            image: Some(job.runtime.image.clone()),
            cmd: Some(cmd),
            // The image's entrypoint, if any, must not wrap our command.
            entrypoint: Some(vec![]),
            user: Some(self.user.clone()),
            working_dir: Some("/tmp".into()),
            hostname: Some("sandbox".into()),
            env: Some(vec![
                "HOME=/tmp".into(),
                "LANG=C.UTF-8".into(),
                // Output written before a timeout kill must not die in a buffer.
                "PYTHONUNBUFFERED=1".into(),
                "PYTHONDONTWRITEBYTECODE=1".into(),
            ]),
            labels: Some(labels),
            network_disabled: Some(true),
            tty: Some(false),
            attach_stdin: Some(with_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(with_stdin),
            stdin_once: Some(with_stdin),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                tmpfs: Some(tmpfs),
                shm_size: Some(tmpfs_bytes),
                // Docker's and podman's default seccomp profile apply because none is named
                // here; `seccomp=default` is not a valid option and must never be sent.
                security_opt: Some(vec!["no-new-privileges".into()]),
                cap_drop: Some(vec!["ALL".into()]),
                privileged: Some(false),
                memory: Some(memory),
                // Equal to memory: no swap, so the memory limit is a real limit.
                memory_swap: Some(memory),
                nano_cpus: Some(self.limits.nano_cpus),
                pids_limit: Some(self.limits.pids_limit),
                // Under host memory pressure the sandbox is the first to go.
                oom_score_adj: Some(1000),
                runtime: self.runtime.clone(),
                // Output is read through the attach stream; the engine need not keep a copy.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                auto_remove: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Runs one job in a fresh container and removes the container, whatever happens.
    /// `deliver` gets the result as soon as the program has ended, before the removal, so the
    /// client does not wait for the clean-up; this future ends after it. Callers run this in a
    /// task of its own (and hold their concurrency permit until it ends), so a client hanging
    /// up cannot skip the removal.
    pub async fn execute(&self, job: Job, deliver: impl FnOnce(Result<Execution, EngineError>)) {
        let docker = match self.engine.client().await {
            Ok(d) => d,
            Err(e) => return deliver(Err(e)),
        };
        let name = format!(
            "ga-sandbox-{}-{}",
            self.instance,
            uuid::Uuid::new_v4().simple()
        );
        self.in_flight
            .lock()
            .expect("poisoned")
            .insert(name.clone());
        deliver(self.run(&docker, &name, &job).await);
        self.remove(&docker, &name).await;
        self.in_flight.lock().expect("poisoned").remove(&name);
    }

    async fn run(&self, docker: &Docker, name: &str, job: &Job) -> Result<Execution, EngineError> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        if let Err(e) = docker
            .create_container(Some(options), self.container_body(job))
            .await
        {
            return Err(if is_not_found(&e) {
                EngineError::ImageMissing(job.runtime.image.clone())
            } else {
                classify(e)
            });
        }
        // Attach before start, so not a byte of output is missed.
        let attach = docker
            .attach_container(
                name,
                Some(
                    AttachContainerOptionsBuilder::new()
                        .stream(true)
                        .stdin(job.stdin.is_some())
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .await
            .map_err(classify)?;
        let mut output = attach.output;
        let mut input = attach.input;
        docker.start_container(name, None).await.map_err(classify)?;
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + job.timeout);

        // Feed stdin concurrently: a program that never reads it must not stall the output.
        let feeder = job.stdin.clone().map(|data| {
            tokio::spawn(async move {
                let _ = input.write_all(data.as_bytes()).await;
                // Closing our side is the end of file the program sees (StdinOnce).
                let _ = input.shutdown().await;
            })
        });

        let mut stdout = Capture::new(self.limits.max_output_bytes);
        let mut stderr = Capture::new(self.limits.max_output_bytes);
        let mut timed_out = false;
        loop {
            tokio::select! {
                item = output.next() => match item {
                    Some(Ok(LogOutput::StdOut { message }))
                    | Some(Ok(LogOutput::Console { message })) => stdout.push(&message),
                    Some(Ok(LogOutput::StdErr { message })) => stderr.push(&message),
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(e)) => {
                        tracing::warn!(container = name, error = %e, "attach stream failed");
                        break;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    break;
                }
            }
        }
        drop(output);

        // The streams usually close because the program ended: one inspect then gives the exit
        // code and the OOM flag. A program can also close them itself and go on: wait for it.
        let mut exit = None;
        if !timed_out {
            exit = self.exited(docker, name).await;
            if exit.is_none() {
                match tokio::time::timeout_at(deadline, self.wait_exit(docker, name)).await {
                    Ok(code) => {
                        let code = code?;
                        exit = Some(self.exited(docker, name).await.unwrap_or((code, false)));
                    }
                    Err(_) => timed_out = true,
                }
            }
        }
        let duration = if timed_out {
            self.kill(docker, name).await;
            let code = tokio::time::timeout(Duration::from_secs(10), self.wait_exit(docker, name))
                .await
                .ok()
                .and_then(Result::ok);
            exit = self.exited(docker, name).await.or(code.map(|c| (c, false)));
            job.timeout
        } else {
            started.elapsed()
        };
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        let (exit_code, reported_oom) = exit.unwrap_or((137, false));
        // Not every engine reports OOMKilled (podman misses it on some cgroup-v1 hosts). The
        // program is PID 1 of its namespace, which cannot SIGKILL itself, and we sent no kill:
        // a SIGKILL exit then comes from outside, in practice the kernel's OOM killer.
        let oom_killed = reported_oom || (!timed_out && exit_code == 137);
        let truncated = stdout.truncated() || stderr.truncated();
        Ok(Execution {
            stdout: stdout.into_string(),
            stderr: stderr.into_string(),
            exit_code,
            duration_ms: duration.as_millis() as u64,
            timed_out,
            truncated,
            oom_killed,
        })
    }

    /// Exit code and OOM flag, if the container has exited.
    async fn exited(&self, docker: &Docker, name: &str) -> Option<(i64, bool)> {
        match docker.inspect_container(name, None).await {
            Ok(info) => info.state.and_then(|s| {
                (s.status == Some(ContainerStateStatusEnum::EXITED))
                    .then(|| (s.exit_code.unwrap_or(-1), s.oom_killed.unwrap_or(false)))
            }),
            Err(e) => {
                tracing::warn!(container = name, error = %e, "inspect after run failed");
                None
            }
        }
    }

    /// Blocks until the container is no longer running; its exit code.
    async fn wait_exit(&self, docker: &Docker, name: &str) -> Result<i64, EngineError> {
        let mut stream = docker.wait_container(name, None);
        match stream.next().await {
            Some(Ok(answer)) => Ok(answer.status_code),
            // bollard turns a non-zero exit into an error value.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(classify(e)),
            None => Err(EngineError::Failed("wait returned nothing".into())),
        }
    }

    async fn kill(&self, docker: &Docker, name: &str) {
        let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        if let Err(e) = docker.kill_container(name, Some(options)).await {
            // Already exited between the deadline and the kill: nothing to do.
            tracing::debug!(container = name, error = %e, "kill after timeout");
        }
    }

    /// Force-removes a container; one retry, then the periodic sweep takes over.
    async fn remove(&self, docker: &Docker, name: &str) {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        for attempt in 0..2 {
            match docker.remove_container(name, Some(options.clone())).await {
                Ok(()) => return,
                Err(e) if is_not_found(&e) => return,
                Err(e) => {
                    tracing::warn!(container = name, attempt, error = %e, "remove failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Removes this instance's containers that no run owns: leftovers of a previous process
    /// that was killed mid-run, or removals that failed. Returns how many were removed.
    pub async fn sweep(&self) -> Result<usize, EngineError> {
        let docker = self.engine.client().await?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.instance)],
        )]);
        let containers = containers_labelled(&docker, &filters)
            .await
            .map_err(classify)?;
        let mut removed = 0;
        for container in containers {
            let name = container
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            // Belt and braces: the engine filtered by label, but never touch a foreign one.
            let ours = container
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_INSTANCE))
                .is_some_and(|v| v == &self.instance);
            if !ours || self.in_flight.lock().expect("poisoned").contains(&name) {
                continue;
            }
            let Some(id) = container.id else { continue };
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => removed += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::warn!(container = %name, error = %e, "sweep: remove failed"),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_first_bytes_and_counts_the_rest() {
        let mut c = Capture::new(4);
        c.push(b"ab");
        c.push(b"cdef");
        assert!(c.truncated());
        assert_eq!(c.into_string(), "abcd");
        let mut c = Capture::new(4);
        c.push(b"abcd");
        assert!(!c.truncated());
    }

    #[test]
    fn capture_drops_a_character_cut_by_the_cap() {
        let mut c = Capture::new(5);
        c.push("abcdé".as_bytes()); // é is two bytes: the cap falls inside it
        assert_eq!(c.into_string(), "abcd");
    }

    fn job() -> Job {
        Job {
            language: "python".into(),
            runtime: Language {
                image: "img".into(),
                command: vec!["python3".into(), "-c".into()],
            },
            code: "print(1)".into(),
            stdin: None,
            timeout: Duration::from_secs(5),
            memory_mb: 64,
        }
    }

    #[test]
    fn the_container_is_locked_down() {
        let config = Config::from_lookup(|k| match k {
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef-x".into()),
            "SANDBOX_RUNTIME" => Some("runsc".into()),
            _ => None,
        })
        .unwrap();
        let body = Executor::new(&config).container_body(&job());
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_string()])
        );
        assert!(!host
            .security_opt
            .iter()
            .flatten()
            .any(|o| o.starts_with("seccomp")));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.runtime.as_deref(), Some("runsc"));
        assert!(host.tmpfs.unwrap()["/tmp"].contains("size=16m"));
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        assert_eq!(body.cmd.unwrap(), ["python3", "-c", "print(1)"]);
        assert_eq!(body.labels.unwrap()[LABEL_INSTANCE], "default");
    }
}
