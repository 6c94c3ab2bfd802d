//! Containment and hygiene: a crash under the driver is named as one, and
//! shutting the driver down leaves nothing behind.

use std::collections::BTreeSet;
use std::time::Duration;

use southbound_host::isolation::{DriverExt, Isolation};

use crate::suite::{Outcome, Session};

/// The name of the thread `hygiene.shutdown` loads the driver on; threads
/// the driver starts from it inherit it (Linux truncates names to 15 bytes).
const HYGIENE_THREAD: &str = "sb-hygiene";

/// How long leftovers get to go away after shutdown.
const SETTLE: Duration = Duration::from_secs(5);

/// This process's threads and open descriptors (Linux `/proc`).
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// `(tid, name)` of each thread.
    pub threads: Vec<(u32, String)>,
    /// `(fd, what it is)` of each open descriptor.
    pub fds: Vec<(u32, String)>,
}

impl Resources {
    /// Reads them now.
    pub fn now() -> Self {
        let entries = |dir: &str| -> Vec<u32> {
            let mut ids: Vec<u32> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            ids.sort_unstable();
            ids
        };
        let threads = entries("/proc/self/task")
            .into_iter()
            .filter_map(|tid| {
                let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
                Some((tid, name.trim_end().to_string()))
            })
            .collect();
        let fds = entries("/proc/self/fd")
            .into_iter()
            .filter_map(|fd| {
                let what = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
                Some((fd, what.display().to_string()))
            })
            .collect();
        Self { threads, fds }
    }

    /// What `self` has that the baselines had not: threads that are
    /// neither in `threads` nor of a pool the process already ran there
    /// (runtime threads come and go), and descriptors not open in `fds`.
    fn leftovers(&self, threads: &Self, fds: &Self) -> Vec<String> {
        let pid = std::process::id();
        let old: BTreeSet<u32> = threads.threads.iter().map(|(t, _)| *t).collect();
        let pools: BTreeSet<&str> = threads
            .threads
            .iter()
            .filter(|(t, _)| *t != pid)
            .map(|(_, n)| n.as_str())
            .collect();
        let open: BTreeSet<u32> = fds.fds.iter().map(|(fd, _)| *fd).collect();
        let threads = self
            .threads
            .iter()
            .filter(|(t, n)| {
                n.starts_with(HYGIENE_THREAD) || (!old.contains(t) && !pools.contains(n.as_str()))
            })
            .map(|(t, n)| format!("thread {t} '{n}'"));
        let fds = self
            .fds
            .iter()
            .filter(|(fd, _)| !open.contains(fd))
            .map(|(fd, what)| format!("fd {fd} -> {what}"));
        threads.chain(fds).collect()
    }
}

pub async fn crash_reported(s: &mut Session) -> Outcome {
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    if s.target.isolation == Isolation::InProcess {
        return Outcome::Skipped(
            "needs --isolation worker: in-process, a crash would end the suite itself".into(),
        );
    }
    // A call first, so that the worker killed is a live one (an earlier
    // check may have left one restarting).
    let provider = s.provider();
    if let Err(e) = driver
        .scan_provider(s.context("conformance-before-crash"), &provider)
        .await
    {
        return Outcome::Failed(format!("the driver did not answer before the crash: {e}"));
    }
    let Some(pid) = driver.worker_pid() else {
        return Outcome::Failed("the driver has no running worker to crash".into());
    };
    let restarts = driver.restarts();
    // SAFETY: a plain kill(2) of the worker process this suite started.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } != 0 {
        return Outcome::Failed(format!(
            "cannot kill worker {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // The first call may still reach the dying worker: then it must fail
    // naming the crash. Either way the next one must be answered.
    let first = driver
        .scan_provider(s.context("conformance-after-crash"), &provider)
        .await;
    if let Err(e) = &first {
        if !e.message.contains("SIGKILL") {
            return Outcome::Failed(format!(
                "a call to the killed worker failed without naming the crash: {e}"
            ));
        }
    }
    if let Err(e) = driver
        .scan_provider(s.context("conformance-after-restart"), &provider)
        .await
    {
        return Outcome::Failed(format!("the driver did not answer after its restart: {e}"));
    }
    match driver.last_crash() {
        Some(cause) if cause.contains("SIGKILL") && driver.restarts() > restarts => {
            Outcome::Passed(format!(
                "reported as: {cause}; answered again after a restart"
            ))
        }
        other => Outcome::Failed(format!(
            "the worker's death was not reported as a crash (last crash: {})",
            other.unwrap_or_else(|| "none".into())
        )),
    }
}

/// Processes still running the driver in a worker, by their command line.
fn worker_processes(driver_file: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let file = driver_file.as_os_str().as_encoded_bytes();
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_worker = args.get(1).is_some_and(|a| *a == b"__worker");
            (is_worker && args.contains(&file)).then(|| {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                format!("process {pid} ({})", cmdline.trim_end())
            })
        })
        .collect()
}

/// Loads the driver again in this process, scans once and drops it, all on
/// a thread named [`HYGIENE_THREAD`].
async fn load_call_drop(s: &Session) -> Result<(), String> {
    let path = s.target.driver.clone();
    let provider = s.provider();
    let ctx = s.context("conformance-hygiene");
    let cycle = std::thread::Builder::new()
        .name(HYGIENE_THREAD.into())
        .spawn(move || {
            let (driver, _) = southbound_host::loader::load_library(&path)
                .map_err(|r| format!("the driver did not load a second time: {r}"))?;
            let _ = southbound_host::isolation::dispatch(
                &driver,
                &ctx,
                &southbound_host::isolation::DriverRequest::ScanProvider { provider },
            );
            drop(driver);
            Ok(())
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    tokio::task::spawn_blocking(move || cycle.join())
        .await
        .map_err(|e| format!("the load-call-drop cycle did not finish: {e}"))?
        .map_err(|_| "the driver panicked outside a call".to_string())?
}

pub async fn shutdown(s: &mut Session) -> Outcome {
    if let Err(skip) = s.loaded() {
        return skip;
    }
    let Some(driver) = s.driver.take() else {
        return Outcome::Skipped("the driver did not load".into());
    };
    let isolation = driver.isolation();
    driver.retire().await;
    drop(driver);
    let before = Resources::now();
    if isolation == Isolation::InProcess {
        // Once per process, a library may keep what it never frees (its
        // tokio's signal pipe, say): judge a second load, call and shutdown,
        // on a thread of its own so that threads the driver starts carry
        // that thread's name.
        if let Err(e) = load_call_drop(s).await {
            return Outcome::Failed(e);
        }
    }
    let started = std::time::Instant::now();
    loop {
        let left = match isolation {
            Isolation::Worker => worker_processes(&s.target.driver),
            Isolation::InProcess => Resources::now().leftovers(&s.baseline, &before),
        };
        if left.is_empty() {
            return Outcome::Passed(match isolation {
                Isolation::Worker => "no worker process left".into(),
                Isolation::InProcess => "no thread or file descriptor left".into(),
            });
        }
        if started.elapsed() > SETTLE {
            return Outcome::Failed(format!(
                "{} s after shutdown: {}",
                SETTLE.as_secs(),
                left.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
