//! How a worker's memory is bounded (`memory_limit_mib`), and which bound is
//! in force, for `drivers list`:
//!
//! - **A memory cgroup of its own** where the host may create one (setting
//!   `memory_cgroup`, on by default): cgroup v2's `memory.max`, or the v1
//!   memory controller's `memory.limit_in_bytes` where the machine mounts
//!   the controller there. It bounds the memory the worker and everything it
//!   starts really use, shared mappings and page cache included; at the
//!   limit the kernel kills the worker, and the cgroup's `oom_kill` counter
//!   names the cause. Swap is not allowed past it either.
//! - **Else an address-space limit** (`RLIMIT_AS`, set in the child before
//!   `exec`): shared mappings cannot escape it, but it counts reservations
//!   as well as use, so glibc's arenas are capped ([`MALLOC_ARENAS`]).
//!
//! Invariants:
//! - A worker's cgroup is `<host's memory cgroup>/southbound-worker-<host
//!   pid>-<n>`. The worker joins it between `fork` and `exec` (so the limit
//!   holds from its first instruction); the host kills whatever is left in it
//!   when the worker ends, then removes it.
//! - A host killed with SIGKILL leaves empty directories behind: the next
//!   host that starts in the same cgroup removes those whose host is gone.
//! - On cgroup v2 a cgroup with processes cannot delegate a controller, so
//!   a host alone in its cgroup first moves itself into a leaf,
//!   `southbound-host`, beside its workers' cgroups.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// glibc malloc arenas in a worker under an address-space limit: each
/// reserves 64 MiB of address space, which would otherwise count against
/// the limit without being used.
pub const MALLOC_ARENAS: &str = "2";

/// The prefix of a worker's cgroup's name.
const WORKER_PREFIX: &str = "southbound-worker-";

/// The leaf a cgroup v2 host moves itself into (see the module comment).
const HOST_LEAF: &str = "southbound-host";

/// The interface the memory controller is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The legacy hierarchy, one per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

impl CgroupVersion {
    fn limit_file(self) -> &'static str {
        match self {
            Self::V1 => "memory.limit_in_bytes",
            Self::V2 => "memory.max",
        }
    }

    /// Memory plus swap (v1), or swap alone (v2).
    fn swap_file(self) -> &'static str {
        match self {
            Self::V1 => "memory.memsw.limit_in_bytes",
            Self::V2 => "memory.swap.max",
        }
    }

    /// The file with the `oom_kill <count>` line.
    fn events_file(self) -> &'static str {
        match self {
            Self::V1 => "memory.oom_control",
            Self::V2 => "memory.events",
        }
    }
}

impl std::fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V1 => "cgroup v1",
            Self::V2 => "cgroup v2",
        })
    }
}

/// The host's own memory cgroup: where its workers' cgroups are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupParent {
    /// Its directory.
    pub dir: PathBuf,
    /// Its interface.
    pub version: CgroupVersion,
}

/// The host's memory cgroups as `/proc/self/cgroup` and
/// `/proc/self/mountinfo` place them: the unified one first, then the v1
/// memory controller's. Neither is checked for use here.
pub fn locate(cgroups: &str, mountinfo: &str) -> Vec<CgroupParent> {
    let mut found = Vec::new();
    for (version, wanted) in [
        (CgroupVersion::V2, None),
        (CgroupVersion::V1, Some("memory")),
    ] {
        // `id:controllers:path`; the unified hierarchy is `0::path`.
        let path = cgroups.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let matches = match wanted {
                None => controllers.is_empty(),
                Some(name) => controllers.split(',').any(|c| c == name),
            };
            matches.then_some(path)
        });
        let Some(path) = path else { continue };
        let mount = mountinfo.lines().find_map(|line| {
            // `id parent dev root mountpoint options [optional...] - type source super`
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (root, point) = (left.get(3)?, left.get(4)?);
            let (fstype, options) = (right.first()?, right.get(2).copied().unwrap_or(""));
            let matches = match wanted {
                None => *fstype == "cgroup2",
                Some(name) => *fstype == "cgroup" && options.split(',').any(|o| o == name),
            };
            matches.then(|| (unescape(root), unescape(point)))
        });
        let Some((root, point)) = mount else { continue };
        // The mount shows the hierarchy from `root` down.
        let Some(inside) = Path::new(path).strip_prefix(&root).ok() else {
            continue;
        };
        found.push(CgroupParent {
            dir: point.join(inside),
            version,
        });
    }
    found
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Makes `parent` ready to hold worker cgroups; `Err` says why it cannot.
fn prepare(parent: &CgroupParent) -> Result<(), String> {
    let dir = &parent.dir;
    if parent.version == CgroupVersion::V2 {
        let has_memory = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map(|t| t.split_whitespace().any(|c| c == "memory"))
                .unwrap_or(false)
        };
        if !has_memory("cgroup.controllers") {
            return Err(format!(
                "the memory controller is not delegated to the host's cgroup {}",
                dir.display()
            ));
        }
        if !has_memory("cgroup.subtree_control") {
            let control = dir.join("cgroup.subtree_control");
            if std::fs::write(&control, "+memory").is_err() {
                // Busy: processes in the cgroup. Move this host into a leaf.
                let leaf = dir.join(HOST_LEAF);
                match std::fs::create_dir(&leaf) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(format!("cannot create {}: {e}", leaf.display())),
                }
                write(&leaf.join("cgroup.procs"), &std::process::id().to_string())?;
                write(&control, "+memory").map_err(|e| {
                    format!("{e} (other processes share the host's cgroup: give the host one of its own, e.g. systemd's Delegate=yes)")
                })?;
            }
        }
    }
    remove_stale(dir);
    Ok(())
}

/// Removes worker cgroups left by hosts that are gone (killed with SIGKILL).
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(host) = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORKER_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill(pid, 0) only asks whether the process exists.
        let gone = host != std::process::id() as libc::pid_t
            && unsafe { libc::kill(host, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            // Fails harmlessly if something still runs in it.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// The host's memory cgroup, ready for workers, found once per process;
/// `Err` says why workers get an address-space limit instead.
fn parent() -> &'static Result<CgroupParent, String> {
    static PARENT: OnceLock<Result<CgroupParent, String>> = OnceLock::new();
    PARENT.get_or_init(|| {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let mut why_not = Vec::new();
        for candidate in locate(&cgroups, &mountinfo) {
            match prepare(&candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) => why_not.push(e),
            }
        }
        Err(if why_not.is_empty() {
            "no memory controller is mounted".into()
        } else {
            why_not.join("; ")
        })
    })
}

/// A worker's own memory cgroup.
#[derive(Debug)]
pub struct WorkerCgroup {
    dir: PathBuf,
    version: CgroupVersion,
    /// Its `cgroup.procs`, ready for the child (see [`WorkerCgroup::join`]).
    procs: CString,
}

impl WorkerCgroup {
    /// Creates a cgroup under `parent` limited to `limit` bytes.
    pub fn create(parent: &CgroupParent, limit: u64) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{WORKER_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.dir.join(name);
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| format!("{} holds a NUL byte", dir.display()))?;
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let version = parent.version;
        let swap = match version {
            CgroupVersion::V1 => limit.to_string(),
            CgroupVersion::V2 => "0".into(),
        };
        let limited = write(&dir.join(version.limit_file()), &limit.to_string()).and_then(|()| {
            // Absent where the kernel accounts no swap: nothing to bound.
            let swap_file = dir.join(version.swap_file());
            if swap_file.exists() {
                write(&swap_file, &swap)
            } else {
                Ok(())
            }
        });
        // v2: an OOM kill takes the whole worker (absent before Linux 4.19).
        let limited = limited.and_then(|()| {
            let group = dir.join("memory.oom.group");
            if version == CgroupVersion::V2 && group.exists() {
                write(&group, "1")
            } else {
                Ok(())
            }
        });
        if let Err(e) = limited {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        Ok(Self {
            dir,
            version,
            procs,
        })
    }

    /// The path the child writes itself into.
    pub fn procs(&self) -> &CStr {
        &self.procs
    }

    /// Moves the calling process into the cgroup whose `cgroup.procs` is
    /// `procs`. Async-signal-safe: for the child between `fork` and `exec`.
    pub fn join(procs: &CStr) -> io::Result<()> {
        // SAFETY: open/write/close on a NUL-terminated path; no allocation.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // "0" is the writing process itself.
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let error = io::Error::last_os_error();
            libc::close(fd);
            if written != 1 {
                return Err(error);
            }
        }
        Ok(())
    }

    /// How many times the kernel killed a process here for memory.
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(self.dir.join(self.version.events_file()))
            .ok()
            .and_then(|events| {
                events.lines().find_map(|line| {
                    line.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// The pids still in the cgroup.
    fn members(&self) -> Vec<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|procs| {
                procs
                    .lines()
                    .filter_map(|p| p.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills whatever the worker left running in the cgroup (its PID
    /// namespace or process group has normally taken it along already), and
    /// removes the cgroup once it is empty.
    pub async fn end(self) {
        for _ in 0..100 {
            for pid in self.members() {
                if pid > 1 {
                    // SAFETY: a plain kill(2) of a process in this worker's cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                // Busy until the killed processes have left.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        tracing::warn!(cgroup = %self.dir.display(), "a worker's memory cgroup could not be removed");
    }
}

/// How one worker's memory is bounded.
#[derive(Debug)]
pub enum MemoryFence {
    /// Its own memory cgroup.
    Cgroup(WorkerCgroup),
    /// An address-space limit.
    AddressSpace,
}

impl MemoryFence {
    /// The fence for a worker limited to `limit_mib`: a cgroup if `cgroup`
    /// is asked for and the host can make one, else an address-space limit.
    pub fn for_worker(limit_mib: u64, cgroup: bool) -> Self {
        if !cgroup {
            return Self::AddressSpace;
        }
        let made = parent()
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|parent| WorkerCgroup::create(parent, limit_mib.saturating_mul(1024 * 1024)));
        match made {
            Ok(cgroup) => Self::Cgroup(cgroup),
            Err(why) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!("workers get an address-space limit (RLIMIT_AS), not a memory cgroup: {why}")
                });
                Self::AddressSpace
            }
        }
    }

    /// What `drivers list` shows: `256 MiB memory (cgroup v1)`.
    pub fn describe(&self, limit_mib: u64) -> String {
        match self {
            Self::Cgroup(cgroup) => format!("{limit_mib} MiB memory ({})", cgroup.version),
            Self::AddressSpace => format!("{limit_mib} MiB address space (RLIMIT_AS)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
24 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
35 31 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
40 31 0:33 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
";

    #[test]
    fn the_hosts_memory_cgroups_are_found_unified_first() {
        let cgroups = "4:memory:/jobs/42\n2:cpu,cpuacct:/\n0::/jobs/42\n";
        assert_eq!(
            locate(cgroups, MOUNTINFO),
            vec![
                CgroupParent {
                    dir: "/sys/fs/cgroup/unified/jobs/42".into(),
                    version: CgroupVersion::V2
                },
                CgroupParent {
                    dir: "/sys/fs/cgroup/memory/jobs/42".into(),
                    version: CgroupVersion::V1
                },
            ]
        );
    }

    #[test]
    fn a_mount_of_part_of_the_hierarchy_and_escapes_are_followed() {
        // A container sees only its own part, at /sys/fs/cgroup.
        let mountinfo = "50 40 0:33 /kubepods/pod1 /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            locate("0::/kubepods/pod1/app\n", mountinfo),
            vec![CgroupParent {
                dir: "/sys/fs/cgroup x/app".into(),
                version: CgroupVersion::V2
            }]
        );
        // No memory controller anywhere, or a cgroup outside the mount.
        assert!(locate("2:cpu:/\n", MOUNTINFO).is_empty());
        assert!(locate("0::/elsewhere\n", mountinfo).is_empty());
    }

    /// The files a worker's cgroup is given and read from, in a directory
    /// standing in for the kernel's (the integration tests use the kernel's).
    #[test]
    fn a_worker_cgroup_gets_its_limit_and_reads_its_oom_kills() {
        for (version, limit_file, events) in [
            (
                CgroupVersion::V1,
                "memory.limit_in_bytes",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            (
                CgroupVersion::V2,
                "memory.max",
                "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n",
            ),
        ] {
            let root = tempfile::tempdir().unwrap();
            let parent = CgroupParent {
                dir: root.path().into(),
                version,
            };
            let cgroup = WorkerCgroup::create(&parent, 1 << 20).unwrap();
            let name = cgroup.dir.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(
                name.starts_with(&format!("{WORKER_PREFIX}{}-", std::process::id())),
                "{name}"
            );
            assert_eq!(
                std::fs::read_to_string(cgroup.dir.join(limit_file)).unwrap(),
                "1048576"
            );
            assert!(cgroup.procs().to_str().unwrap().ends_with("/cgroup.procs"));
            assert_eq!(cgroup.oom_kills(), 0);
            std::fs::write(cgroup.dir.join(version.events_file()), events).unwrap();
            assert_eq!(cgroup.oom_kills(), 3);
            std::fs::write(cgroup.dir.join("cgroup.procs"), "12\n34\n").unwrap();
            assert_eq!(cgroup.members(), vec![12, 34]);
            let fence = MemoryFence::Cgroup(cgroup);
            assert_eq!(fence.describe(256), format!("256 MiB memory ({version})"));
        }
        assert_eq!(
            MemoryFence::AddressSpace.describe(2048),
            "2048 MiB address space (RLIMIT_AS)"
        );
    }

    #[test]
    fn cgroups_left_by_a_host_that_is_gone_are_removed() {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let root = tempfile::tempdir().unwrap();
        let names = [
            format!("{WORKER_PREFIX}{}-0", gone.id()),
            format!("{WORKER_PREFIX}{}-1", std::process::id()),
            format!("{WORKER_PREFIX}1-0"),
            "other".to_string(),
        ];
        for name in &names {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        remove_stale(root.path());
        let left: Vec<bool> = names.iter().map(|n| root.path().join(n).exists()).collect();
        // This host's and a live host's (pid 1) stay, as does anything else.
        assert_eq!(left, [false, true, true, true]);
    }
}
