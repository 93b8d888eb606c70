//! Memory measurements for the soak (`cargo build --release -p controlplane --features
//! memstats`; not in the default build): jemalloc as the global allocator, and with
//! `MEMSTATS_FILE` set, a line a minute with jemalloc's counters (allocated, active,
//! resident, mapped, retained, metadata), tokio's alive tasks, VmRSS, anonymous memory
//! and threads. With `MEMSTATS_PROF_PREFIX` and `MALLOC_CONF=prof:true,lg_prof_sample:17`
//! (jemalloc is unprefixed: C libraries allocate through it too), a heap profile is dumped
//! each time, for `jeprof --base=<early> <late>`.
//! This is how issue 16's holder was found (docs/adr/022).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write;
use tikv_jemalloc_ctl::{epoch, stats};

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

/// Every MEMSTATS_SECS (60) seconds: jemalloc's counters, tokio's alive tasks, RSS and
/// threads, to MEMSTATS_FILE; with MEMSTATS_PROF_PREFIX, a heap profile each time.
pub fn spawn() {
    let Ok(path) = std::env::var("MEMSTATS_FILE") else {
        return;
    };
    let secs: u64 = std::env::var("MEMSTATS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let prof = std::env::var("MEMSTATS_PROF_PREFIX").ok();
    let handle = tokio::runtime::Handle::current();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut n = 0u32;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            n += 1;
            let _ = epoch::advance();
            let m = handle.metrics();
            let line = format!(
                "t={} allocated={} active={} resident={} mapped={} retained={} metadata={} alive_tasks={} global_queue={} rss={} anon={} threads={}\n",
                started.elapsed().as_secs(),
                stats::allocated::read().unwrap_or(0),
                stats::active::read().unwrap_or(0),
                stats::resident::read().unwrap_or(0),
                stats::mapped::read().unwrap_or(0),
                stats::retained::read().unwrap_or(0),
                stats::metadata::read().unwrap_or(0),
                m.num_alive_tasks(),
                m.global_queue_depth(),
                proc_field("/proc/self/status", "VmRSS:"),
                proc_field("/proc/self/smaps_rollup", "Anonymous:"),
                proc_field("/proc/self/status", "Threads:"),
            );
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                let _ = f.write_all(line.as_bytes());
            }
            if let Some(prefix) = &prof {
                let name = format!("{prefix}.{n:03}.heap\0");
                // SAFETY: prof.dump takes a NUL-terminated file name.
                let _ = unsafe {
                    tikv_jemalloc_ctl::raw::write(
                        b"prof.dump\0",
                        name.as_ptr() as *const std::ffi::c_char,
                    )
                };
            }
        }
    });
}
