//! The controller end to end on the simulator's `large` topology (8
//! protection domains, 64 pools, 512 SDSs, 2048 SDCs), against a real
//! `southbound serve` process, on SQLite and on PostgreSQL:
//! - `full`: register the gateway, then scan + discovery of every system +
//!   persist, until every system's discovery is COMPLETE;
//! - `unchanged`: rediscovery of every system with nothing changed (time, and
//!   the inventory rows written, read from the tasks: the goal is 0);
//! - the host process's peak resident memory (`VmHWM`) over the run;
//! - each with the driver in a worker and in-process, and the ratio of the
//!   unchanged rediscoveries: what isolation adds to the whole job (driver,
//!   channel, validation and store).
//!
//! The simulator runs in this process; the host in its own (its memory is
//! the host's alone; drivers run in workers, as in production).
//!
//! Then throughput on PostgreSQL (`throughput`): how many discoveries per
//! second one host, then two hosts sharing the database, sustain against 100
//! simulated gateways of the `small` topology and 10 of `large` (every system
//! due at once, as when a cycle comes round), with the CPU time and peak
//! memory of the host processes and of their driver workers, and the median
//! time of one discovery (small vs large).
//!
//! Run: `cargo bench -p southbound-host --bench controller` (both parts), or
//! `... -- single` / `... -- throughput`. PostgreSQL from `DATABASE_URL`,
//! default the local test database.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scaleio_simulator::{SimConfig, Simulator, TopologySpec};
use serde_json::{json, Value};

const UNCHANGED_ROUNDS: usize = 7;

struct Host {
    child: std::process::Child,
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Host {
    /// Starts `serve` with its drivers in `isolation` (`worker` or `in-process`).
    fn start(data: &Path, plugins: &Path, database_url: &str, isolation: &str) -> Self {
        let port_file = data.join("port");
        std::fs::write(
            data.join("southbound.toml"),
            format!(
                "[isolation]\nmode = \"{isolation}\"\n\n[scheduler]\npoll_interval_ms = 100\nmin_discovery_interval_secs = 0\n"
            ),
        )
        .unwrap();
        // Hosts sharing a database share the key that seals its credentials.
        std::fs::write(
            data.join("secret.key"),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_southbound"))
            .arg("--config")
            .arg(data.join("southbound.toml"))
            .args(["serve", "--listen", "127.0.0.1:0", "--plugins"])
            .arg(plugins)
            .arg("--data-dir")
            .arg(data)
            .arg("--database-url")
            .arg(database_url)
            .arg("--port-file")
            .arg(&port_file)
            .env("SOUTHBOUND_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("serve starts");
        let port = loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                if !port.trim().is_empty() {
                    break port.trim().to_string();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let token = std::fs::read_to_string(data.join("api.token"))
            .unwrap()
            .trim()
            .to_string();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn settled_systems(&self) -> Vec<Value> {
        loop {
            let page = self
                .call(reqwest::Method::GET, "/api/v1/systems", json!(null))
                .await;
            let items = page["items"].as_array().unwrap().clone();
            if !items.is_empty()
                && items
                    .iter()
                    .all(|s| matches!(s["discovery_status"].as_str(), Some("COMPLETE" | "ERROR")))
            {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_task(&self, id: &str) -> Value {
        loop {
            let task = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/tasks/{id}"),
                    json!(null),
                )
                .await;
            if !matches!(task["status"].as_str(), Some("QUEUED" | "PROVISIONING")) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Peak resident memory of the host process, MiB.
    fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib(self.child.id())
    }

    /// The host's driver worker processes.
    fn workers(&self) -> Vec<u32> {
        let parent = self.child.id();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        let after = stat.rsplit_once(") ")?.1.to_string();
                        after.split(' ').nth(1)?.parse::<u32>().ok()
                    })
                    == Some(parent)
            })
            .collect()
    }
}

/// Peak resident memory of a process, MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU time (user + system) a process has used, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// One host discovering `large` from scratch, then rediscovering it
/// unchanged; prints the figures and returns the median unchanged
/// rediscovery, ms.
async fn run(
    name: &str,
    isolation: &str,
    database_url: &str,
    sim: &Simulator,
    plugins: &Path,
) -> f64 {
    let data = tempfile::tempdir().unwrap();
    let mut host = Host::start(data.path(), plugins, database_url, isolation);
    let started = Instant::now();
    let registered = host
        .call(
            reqwest::Method::POST,
            "/api/v1/providers",
            json!({
                "type": "scaleio", "host": "127.0.0.1", "port": sim.addr().port(),
                "username": scaleio_simulator::DEFAULT_USERNAME,
                "password": scaleio_simulator::DEFAULT_PASSWORD,
                "ca_certificate_pem": sim.cert_pem().unwrap(),
            }),
        )
        .await;
    host.wait_task(registered["task"]["id"].as_str().unwrap())
        .await;
    let systems = host.settled_systems().await;
    let full = started.elapsed();
    assert!(systems.iter().all(|s| s["discovery_status"] == "COMPLETE"));

    let mut times = Vec::new();
    let mut written = 0;
    for _ in 0..UNCHANGED_ROUNDS {
        // Past the driver's snapshot reuse window: each round reads the gateway.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for system in &systems {
            let id = system["id"].as_str().unwrap();
            tasks.push(
                host.call(
                    reqwest::Method::POST,
                    &format!("/api/v1/systems/{id}/discover"),
                    json!(null),
                )
                .await,
            );
        }
        for task in &tasks {
            let ended = host.wait_task(task["id"].as_str().unwrap()).await;
            assert_eq!(ended["status"], "READY", "{ended}");
            written += support::rows_written(&ended);
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let unchanged = support::median(times.clone());
    println!(
        "{name}/{isolation}: full scan + discovery + persist of large: {:.0} ms; unchanged rediscovery of all {} systems: median {:.0} ms (min {:.0}, max {:.0}, {UNCHANGED_ROUNDS} rounds), inventory rows written: {written}; host peak RSS {:.1} MiB",
        full.as_secs_f64() * 1000.0,
        systems.len(),
        unchanged,
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
        host.peak_rss_mib()
    );
    let _ = host.child.kill();
    let _ = host.child.wait();
    unchanged
}

/// A fresh PostgreSQL database for one run, on `DATABASE_URL`'s server
/// (default: the local test database).
async fn fresh_postgres(tag: &str) -> support::PostgresDatabase {
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    support::PostgresDatabase::create(&admin, &format!("sb_bench_{tag}")).await
}

/// `gateways` simulators of `topology`, discovered by `hosts` hosts on one
/// PostgreSQL; then every system is made due at once, `ROUNDS` times.
async fn throughput(
    label: &str,
    topology: TopologySpec,
    gateways: usize,
    hosts: usize,
    plugins: &Path,
) {
    const ROUNDS: usize = 3;
    let mut sims = Vec::new();
    for n in 0..gateways {
        sims.push(
            Simulator::start(SimConfig {
                topology: TopologySpec {
                    first_index: n * 1_000_000,
                    ..topology.clone()
                },
                ..SimConfig::default()
            })
            .await
            .expect("simulator"),
        );
    }
    let postgres = fresh_postgres(label).await;
    let url = postgres.url.clone();
    let dirs: Vec<tempfile::TempDir> = (0..hosts).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut running: Vec<Host> = dirs
        .iter()
        .map(|d| Host::start(d.path(), plugins, &url, "worker"))
        .collect();
    for (i, sim) in sims.iter().enumerate() {
        running[i % hosts]
            .call(
                reqwest::Method::POST,
                "/api/v1/providers",
                json!({
                    "type": "scaleio", "host": "127.0.0.1", "port": sim.addr().port(),
                    "name": format!("gw-{i}"),
                    "username": scaleio_simulator::DEFAULT_USERNAME,
                    "password": scaleio_simulator::DEFAULT_PASSWORD,
                    "ca_certificate_pem": sim.cert_pem().unwrap(),
                }),
            )
            .await;
    }
    let expected = gateways * topology.protection_domains.len();
    loop {
        let systems = running[0].settled_systems().await;
        if systems.len() == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let database = sqlx::AnyPool::connect(&url).await.unwrap();
    let processes = |hosts: &[Host]| -> Vec<u32> {
        hosts
            .iter()
            .flat_map(|h| std::iter::once(h.child.id()).chain(h.workers()))
            .collect()
    };
    let cpu_before: f64 = processes(&running).iter().map(|&p| cpu_seconds(p)).sum();
    let mut rates = Vec::new();
    let mut wall = 0.0;
    for _ in 0..ROUNDS {
        // Past the driver's snapshot window: every discovery reads its gateway.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let marker = southbound_host::store::now_ms();
        let started = Instant::now();
        sqlx::query("UPDATE systems SET next_discovery_at = 0")
            .execute(&database)
            .await
            .unwrap();
        loop {
            let done: (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM tasks WHERE operation = 'discover' AND origin = 'scheduler' \
                 AND status = 'READY' AND created_at >= $1",
            )
            .bind(marker)
            .fetch_one(&database)
            .await
            .unwrap();
            if done.0 as usize >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        wall += seconds;
        rates.push(expected as f64 / seconds);
    }
    let cpu_after: f64 = processes(&running).iter().map(|&p| cpu_seconds(p)).sum();
    let durations: Vec<f64> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT started_at, ended_at FROM tasks WHERE operation = 'discover' \
         AND origin = 'scheduler' AND status = 'READY'",
    )
    .fetch_all(&database)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, e)| (e - s) as f64)
    .collect();
    let peak_host = running.iter().map(Host::peak_rss_mib).fold(0.0, f64::max);
    let peak_worker = running
        .iter()
        .flat_map(Host::workers)
        .map(peak_rss_mib)
        .fold(0.0, f64::max);
    println!(
        "throughput {label}: {hosts} host(s), {gateways} gateways, {expected} systems: median {:.1} discoveries/s (min {:.1}, max {:.1}, {ROUNDS} rounds); one discovery (claim to write) median {:.0} ms; CPU {:.2} cores busy during the rounds (hosts and driver workers); peak RSS per host {:.1} MiB, per driver worker {:.1} MiB",
        support::median(rates.clone()),
        rates.iter().cloned().fold(f64::MAX, f64::min),
        rates.iter().cloned().fold(0.0, f64::max),
        support::median(durations),
        (cpu_after - cpu_before) / wall,
        peak_host,
        peak_worker,
    );
    database.close().await;
    for host in &mut running {
        let _ = host.child.kill();
        let _ = host.child.wait();
    }
    postgres.drop_database().await;
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // bench-like: only measure when asked to.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let filters: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted =
        |part: &str| filters.is_empty() || filters.iter().any(|f| part.contains(f.as_str()));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    runtime.block_on(async {
        if wanted("throughput") {
            for hosts in [1, 2] {
                throughput("small", TopologySpec::small(), 100, hosts, plugins.path()).await;
                throughput("large", TopologySpec::large(), 10, hosts, plugins.path()).await;
            }
        }
        if !wanted("single") {
            return;
        }

        let sim = Simulator::start(SimConfig {
            topology: TopologySpec::large(),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        // The same jobs with the driver in a worker and in-process: what
        // isolation adds to the discovery an operator waits for, store
        // included.
        for database in ["sqlite", "postgres"] {
            let mut unchanged = Vec::new();
            for isolation in ["worker", "in-process"] {
                let sqlite_dir = tempfile::tempdir().unwrap();
                let postgres = match database {
                    "postgres" => Some(fresh_postgres("single").await),
                    _ => None,
                };
                let url = match &postgres {
                    Some(postgres) => postgres.url.clone(),
                    None => format!("sqlite://{}/bench.db?mode=rwc", sqlite_dir.path().display()),
                };
                unchanged.push(run(database, isolation, &url, &sim, plugins.path()).await);
                if let Some(postgres) = postgres {
                    postgres.drop_database().await;
                }
            }
            println!(
                "{database}: unchanged rediscovery, worker/in-process {:.2}",
                unchanged[0] / unchanged[1]
            );
        }
    });
}
