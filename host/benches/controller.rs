//! The controller end to end on the simulator's `large` topology (8
//! protection domains, 64 pools, 512 SDSs, 2048 SDCs), against a real
//! `southbound serve` process, on SQLite and on PostgreSQL:
//! - `full`: register the gateway, then scan + discovery of every system +
//!   persist, until every system's discovery is COMPLETE;
//! - `unchanged`: rediscovery of every system with nothing changed (time, and
//!   the inventory rows written, read from the tasks: the goal is 0);
//! - the host process's peak resident memory (`VmHWM`) over the run.
//!
//! The simulator runs in this process; the host in its own (its memory is
//! the host's alone; drivers run in workers, as in production).
//!
//! Run: `cargo bench -p southbound-host --bench controller`
//! (PostgreSQL from `DATABASE_URL`, default the local test database).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scaleio_simulator::{SimConfig, Simulator, TopologySpec};
use serde_json::{json, Value};

const UNCHANGED_ROUNDS: usize = 5;

struct Host {
    child: std::process::Child,
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Host {
    fn start(data: &Path, plugins: &Path, database_url: &str) -> Self {
        let port_file = data.join("port");
        std::fs::write(
            data.join("southbound.toml"),
            "[scheduler]\npoll_interval_ms = 100\n",
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

fn rows_written(task: &Value) -> u64 {
    let message = task["message"].as_str().unwrap_or_default();
    let before = message
        .split(" inventory rows written")
        .next()
        .unwrap_or_default();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn run(name: &str, database_url: &str, sim: &Simulator, plugins: &Path) {
    let data = tempfile::tempdir().unwrap();
    let mut host = Host::start(data.path(), plugins, database_url);
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
            written += rows_written(&ended);
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "{name}: full scan + discovery + persist of large: {:.0} ms; unchanged rediscovery of all {} systems: median {:.0} ms (min {:.0}, max {:.0}, {UNCHANGED_ROUNDS} rounds), inventory rows written: {written}; host peak RSS {:.1} MiB",
        full.as_secs_f64() * 1000.0,
        systems.len(),
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
        host.peak_rss_mib()
    );
    let _ = host.child.kill();
    let _ = host.child.wait();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // bench-like: only measure when asked to.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    runtime.block_on(async {
        let sim = Simulator::start(SimConfig {
            topology: TopologySpec::large(),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let sqlite_dir = tempfile::tempdir().unwrap();
        run(
            "sqlite",
            &format!("sqlite://{}/bench.db?mode=rwc", sqlite_dir.path().display()),
            &sim,
            plugins.path(),
        )
        .await;
        let admin = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&admin).await.expect("PostgreSQL");
        let name = format!("sb_bench_{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        let base = admin.split('?').next().unwrap();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        run("postgres", &url, &sim, plugins.path()).await;
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
    });
}
