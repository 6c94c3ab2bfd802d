//! The controller end to end, on both databases: the store's contract (jobs,
//! leases, sealing), the discovery workflow against the ScaleIO simulator,
//! the object rules, the REST API (auth, errors, OpenAPI), and the CLI
//! against a running `serve` across a restart.
//!
//! Every test that touches a database runs twice: on SQLite in a temporary
//! directory and on PostgreSQL in a fresh database of its own (from
//! `DATABASE_URL`, which must name a reachable PostgreSQL: `.ci/run` sets it).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use scaleio_simulator::stats::pool_capacity;
use scaleio_simulator::{ApiVersion, Faults, SimConfig, Simulator, TopologySpec};
use serde_json::{json, Value};
use southbound_host::datadir::DataDir;
use southbound_host::isolation::{DriverSettings, Isolation};
use southbound_host::secrets::Sealer;
use southbound_host::serve::{self, HostOptions, RunningHost};
use southbound_host::service::ControllerSettings;
use southbound_host::store::{JobKind, NewProvider, NewTask, Origin, Store, StoreError};
use southbound_sdk::{ProviderDetails, Secret, StorageSystem, SystemInventory};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file, or a fresh PostgreSQL database
/// dropped at the end.
struct TestDb {
    url: String,
    postgres: Option<support::PostgresDatabase>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}/test.db?mode=rwc", dir.path().display()),
                postgres: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let admin = std::env::var("DATABASE_URL").expect(
                    "DATABASE_URL must name a reachable PostgreSQL (for example postgres://postgres@127.0.0.1:5432/test)",
                );
                let database = support::PostgresDatabase::create(&admin, "sb_test").await;
                Self {
                    url: database.url.clone(),
                    postgres: Some(database),
                    _dir: dir,
                }
            }
        }
    }

    async fn drop_database(self) {
        if let Some(database) = &self.postgres {
            database.drop_database().await;
        }
    }
}

/// Runs `$test(Backend)` once per database.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both_databases!(
    store_contract,
    workflow_against_the_simulator,
    invalid_objects_are_named_and_the_rest_written,
    rest_api_contract,
);

fn sealer() -> Sealer {
    Sealer::new(&[42; 32])
}

fn settings() -> ControllerSettings {
    ControllerSettings {
        poll_interval: Duration::from_millis(100),
        call_timeout: Duration::from_secs(30),
        ..ControllerSettings::default()
    }
}

async fn start_host(
    db: &TestDb,
    data: &Path,
    plugins: &Path,
    settings: ControllerSettings,
) -> RunningHost {
    let driver_settings = DriverSettings {
        isolation: Isolation::Worker,
        ..Default::default()
    };
    serve::start(HostOptions {
        plugins_dir: plugins.to_path_buf(),
        policy: support::policy(driver_settings),
        data_dir: DataDir::resolve(Some(data)).unwrap(),
        database_url: Some(db.url.clone()),
        listen: "127.0.0.1:0".parse().unwrap(),
        token_file: None,
        settings,
        node: None,
    })
    .await
    .expect("host starts")
}

/// A REST client of a test host.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn of(host: &RunningHost) -> Self {
        Self {
            base: host.url.clone(),
            token: host.token.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// The client of the `serve` process whose data directory is `data`
    /// (it writes its URL and token there).
    fn of_data_dir(data: &Path) -> Self {
        let read = |file: &str| {
            std::fs::read_to_string(data.join(file))
                .unwrap()
                .trim()
                .to_string()
        };
        Self {
            base: read("server.url"),
            token: read("api.token"),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(
            status == 200 || status == 202,
            "POST {path}: {status} {body}"
        );
        body
    }

    /// Polls a task until it ends.
    async fn wait_task(&self, id: &str) -> Value {
        for _ in 0..600 {
            let task = self.get(&format!("/api/v1/tasks/{id}")).await;
            if !matches!(task["status"].as_str(), Some("QUEUED" | "PROVISIONING")) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("task {id} did not end within 60 s");
    }

    /// Waits until no system has a discovery queued or running.
    async fn wait_discoveries(&self) -> Vec<Value> {
        for _ in 0..600 {
            let systems = self.get("/api/v1/systems").await;
            let items = systems["items"].as_array().unwrap().clone();
            if items
                .iter()
                .all(|s| matches!(s["discovery_status"].as_str(), Some("COMPLETE" | "ERROR")))
            {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("discoveries did not settle within 60 s");
    }
}

async fn start_simulator() -> Simulator {
    start_cluster(0).await
}

/// The `small` topology as ScaleIO cluster number `n`: its ids differ from
/// every other cluster's.
async fn start_cluster(n: usize) -> Simulator {
    Simulator::start(SimConfig {
        api_version: ApiVersion::V3_6,
        topology: TopologySpec {
            first_index: n * 1_000_000,
            ..TopologySpec::small()
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn registration(sim: &Simulator) -> Value {
    json!({
        "type": "scaleio",
        "name": "sim",
        "host": "127.0.0.1",
        "port": sim.addr().port(),
        "username": scaleio_simulator::DEFAULT_USERNAME,
        "password": scaleio_simulator::DEFAULT_PASSWORD,
        "ca_certificate_pem": sim.cert_pem().unwrap(),
    })
}

/// The ScaleIO driver's start-of-discovery snapshot reuse window
/// (`scaleio_driver::client::DISCOVERY_START_MAX_AGE`) plus a margin: past
/// it, a discovery reads the gateway afresh.
const FRESH_READ: Duration = Duration::from_millis(2100);

fn set<'a>(values: impl IntoIterator<Item = &'a Value>, key: &str) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

/// The whole inventory (through the API) equals the simulator's state.
async fn assert_inventory_matches(api: &Api, sim: &Simulator) {
    let inventory = api.get("/api/v1/inventory").await;
    let inv = sim.state().inventory().clone();
    let systems = inventory["systems"].as_array().unwrap();
    let guids: BTreeSet<String> = systems
        .iter()
        .map(|s| s["system"]["native_guid"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = inv
        .protection_domains
        .iter()
        .map(|pd| format!("scaleio+{}", pd.id))
        .collect();
    assert_eq!(guids, expected, "one system per protection domain");
    for view in systems {
        let pd_id = view["system"]["native_id"].as_str().unwrap();
        let visible_pools: Vec<&Value> = view["pools"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["discovery_status"] == "VISIBLE")
            .collect();
        let expected_pools: Vec<_> = inv
            .pools
            .iter()
            .filter(|p| p.protection_domain_id == pd_id)
            .collect();
        assert_eq!(
            set(visible_pools.iter().map(|p| &p["pool"]), "native_id"),
            expected_pools.iter().map(|p| p.id.clone()).collect(),
        );
        for pool in expected_pools {
            let got = visible_pools
                .iter()
                .find(|p| p["pool"]["native_id"] == pool.id.as_str())
                .unwrap();
            let c = pool_capacity(&inv, &pool.id);
            assert_eq!(
                got["pool"]["total_capacity_kib"],
                (c.max - c.spare) / 2,
                "pool {}",
                pool.name
            );
            assert_eq!(got["pool"]["name"], pool.name.as_str());
        }
        let visible_ports: Vec<&Value> = view["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["discovery_status"] == "VISIBLE")
            .map(|p| &p["port"])
            .collect();
        assert_eq!(
            set(visible_ports, "native_id"),
            inv.sds
                .iter()
                .filter(|s| s.protection_domain_id == pd_id)
                .map(|s| s.id.clone())
                .collect(),
        );
    }
    let hosts = inventory["hosts"].as_array().unwrap();
    assert_eq!(
        set(hosts, "native_id"),
        inv.sdcs.iter().map(|s| s.guid.clone()).collect(),
        "each SDC once"
    );
    for host in hosts {
        assert_eq!(
            host["systems"].as_array().unwrap().len(),
            systems.len(),
            "every PD reports every SDC"
        );
    }
}

async fn system_id(api: &Api) -> String {
    api.get("/api/v1/systems").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn rediscover(api: &Api, system: &str) -> Value {
    tokio::time::sleep(FRESH_READ).await;
    let task = api
        .post(&format!("/api/v1/systems/{system}/discover"), json!({}))
        .await;
    api.wait_task(task["id"].as_str().unwrap()).await
}

async fn workflow_against_the_simulator(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let sim = start_simulator().await;
    let host = start_host(&db, data.path(), plugins.path(), settings()).await;
    let api = Api::of(&host);

    // Register -> scan -> discovery of each new system.
    let registered = api.post("/api/v1/providers", registration(&sim)).await;
    assert!(!registered
        .to_string()
        .contains(scaleio_simulator::DEFAULT_PASSWORD));
    let scan = api
        .wait_task(registered["task"]["id"].as_str().unwrap())
        .await;
    assert_eq!(scan["status"], "READY", "{scan}");
    api.wait_discoveries().await;
    assert_inventory_matches(&api, &sim).await;
    let system = system_id(&api).await;
    let first = api.get(&format!("/api/v1/systems/{system}")).await;
    assert_eq!(first["discovery_status"], "COMPLETE");
    assert_eq!(first["compatibility"], "COMPATIBLE");
    assert!(first["last_discovery_success_at"].is_i64());
    assert!(
        first["next_discovery_at"].as_i64().unwrap() > first["last_discovery_at"].as_i64().unwrap()
    );

    // Nothing changed -> nothing written.
    let again = rediscover(&api, &system).await;
    assert_eq!(again["status"], "READY", "{again}");
    assert_eq!(support::rows_written(&again), 0, "{again}");

    // An SDS removed -> its port NOT_VISIBLE; back -> VISIBLE again.
    let (sds, devices) = {
        let mut inv = sim.state().inventory_mut();
        let sds = inv.sds.remove(0);
        let devices: Vec<_> = inv
            .devices
            .iter()
            .filter(|d| d.sds_id == sds.id)
            .cloned()
            .collect();
        inv.devices.retain(|d| d.sds_id != sds.id);
        (sds, devices)
    };
    let task = rediscover(&api, &system).await;
    assert_eq!(task["status"], "READY", "{task}");
    let ports = api.get(&format!("/api/v1/systems/{system}/ports")).await;
    let gone = ports["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"]["native_id"] == sds.id.as_str())
        .unwrap();
    assert_eq!(gone["discovery_status"], "NOT_VISIBLE");
    assert_eq!(ports["total"], 3, "never deleted");
    {
        let mut inv = sim.state().inventory_mut();
        inv.sds.push(sds.clone());
        inv.devices.extend(devices);
    }
    rediscover(&api, &system).await;
    let ports = api.get(&format!("/api/v1/systems/{system}/ports")).await;
    let back = ports["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"]["native_id"] == sds.id.as_str())
        .unwrap();
    assert_eq!(back["discovery_status"], "VISIBLE");
    assert_inventory_matches(&api, &sim).await;

    // A pool's capacity changed -> updated.
    let pool_id = sim.state().inventory().pools[0].id.clone();
    for device in sim
        .state()
        .inventory_mut()
        .devices
        .iter_mut()
        .filter(|d| d.storage_pool_id == pool_id)
    {
        device.capacity_kib *= 2;
    }
    let task = rediscover(&api, &system).await;
    assert!(support::rows_written(&task) >= 1, "{task}");
    assert_inventory_matches(&api, &sim).await;

    // A new protection domain -> a new system at the next scan, discovered.
    let provider = registered["provider"]["id"].as_str().unwrap();
    sim.state()
        .inventory_mut()
        .add_protection_domain(
            &TopologySpec::small().protection_domains[0]
                .clone()
                .renamed("domain2"),
        )
        .unwrap();
    tokio::time::sleep(FRESH_READ).await;
    let scan = api
        .post(&format!("/api/v1/providers/{provider}/scan"), json!({}))
        .await;
    let scan = api.wait_task(scan["id"].as_str().unwrap()).await;
    assert!(
        scan["message"].as_str().unwrap().contains("1 new"),
        "{scan}"
    );
    let systems = api.wait_discoveries().await;
    assert_eq!(systems.len(), 2);
    assert_inventory_matches(&api, &sim).await;

    // The gateway failing mid-discovery -> previous inventory intact, the
    // error on the system and its task.
    let before = api.get("/api/v1/inventory").await;
    sim.state()
        .set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let failed = rediscover(&api, &system).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let record = api.get(&format!("/api/v1/systems/{system}")).await;
    assert_eq!(record["discovery_status"], "ERROR");
    assert!(
        record["last_discovery_error"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{record}"
    );
    assert_eq!(
        record["last_discovery_success_at"],
        first_success(&before, &system)
    );
    let after = api.get("/api/v1/inventory").await;
    assert_eq!(
        objects(&before, &system),
        objects(&after, &system),
        "inventory untouched"
    );
    sim.state().set_faults(Faults::default()).unwrap();

    // Remove the provider: its systems stay, unreachable.
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/providers/{provider}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let record = api.get(&format!("/api/v1/systems/{system}")).await;
    assert_eq!(record["reachable"], false);
    assert_eq!(record["provider_id"], Value::Null);

    host.shutdown().await;
    db.drop_database().await;
}

fn first_success(inventory: &Value, system: &str) -> Value {
    inventory["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"]["id"] == system)
        .unwrap()["system"]["last_discovery_success_at"]
        .clone()
}

fn objects(inventory: &Value, system: &str) -> Value {
    let view = inventory["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"]["id"] == system)
        .unwrap();
    json!({"pools": view["pools"], "ports": view["ports"], "hosts": view["host_ids"], "details": view["system"]["details"]})
}

trait Renamed {
    fn renamed(self, name: &str) -> Self;
}

impl Renamed for scaleio_simulator::topology::PdSpec {
    fn renamed(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
}

async fn invalid_objects_are_named_and_the_rest_written(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let plugins = support::plugins_dir(&["misbehaving-driver"]);
    let host = start_host(&db, data.path(), plugins.path(), settings()).await;
    let api = Api::of(&host);
    let registered = api
        .post(
            "/api/v1/providers",
            json!({"type": "misbehaving", "host": "invalid", "username": "u", "password": "p"}),
        )
        .await;
    let scan = api
        .wait_task(registered["task"]["id"].as_str().unwrap())
        .await;
    assert_eq!(scan["status"], "READY", "{scan}");
    api.wait_discoveries().await;
    let tasks = api.get("/api/v1/tasks").await;
    let discovery = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["operation"] == "discover")
        .unwrap()
        .clone();
    assert_eq!(discovery["status"], "WARNING", "{discovery}");
    let message = discovery["message"].as_str().unwrap();
    for (object, rule) in [
        ("pool 'pool-ok'", "duplicate-native-id"),
        ("pool 'pool-free'", "free-exceeds-total"),
        ("pool 'pool-elsewhere'", "wrong-system"),
        ("port 'port-no-network'", "missing-network-id"),
        ("port 'port-capability'", "undeclared-capability"),
    ] {
        assert!(
            message.contains(&format!("{object} not written")) && message.contains(rule),
            "{rule}: {message}"
        );
    }
    let system = system_id(&api).await;
    let pools = api.get(&format!("/api/v1/systems/{system}/pools")).await;
    assert_eq!(
        set(
            pools["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["pool"]),
            "native_id"
        ),
        ["pool-ok".to_string()].into()
    );
    assert_eq!(
        pools["items"][0]["pool"]["free_capacity_kib"], 50,
        "the first of the duplicates"
    );
    let ports = api.get(&format!("/api/v1/systems/{system}/ports")).await;
    assert_eq!(
        set(
            ports["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["port"]),
            "native_id"
        ),
        ["port-ok".to_string()].into()
    );

    // Firmware the driver does not support: INCOMPATIBLE, unreachable, FAILED.
    let provider_id = registered["provider"]["id"].as_str().unwrap();
    api.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/providers/{provider_id}"),
        None,
    )
    .await;
    let old = api
        .post(
            "/api/v1/providers",
            json!({"type": "misbehaving", "host": "old-firmware", "username": "u", "password": "p"}),
        )
        .await;
    api.wait_task(old["task"]["id"].as_str().unwrap()).await;
    // Known systems are not rediscovered by a scan (CoprHD): ask for it.
    let task = api
        .post(&format!("/api/v1/systems/{system}/discover"), json!({}))
        .await;
    let task = api.wait_task(task["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "FAILED", "{task}");
    let record = api.get(&format!("/api/v1/systems/{system}")).await;
    assert_eq!(record["compatibility"], "INCOMPATIBLE", "{record}");
    assert_eq!(record["reachable"], false);
    assert_eq!(record["firmware_version"], "0.0.1");
    assert!(
        record["last_discovery_error"]
            .as_str()
            .unwrap()
            .contains("firmware version 0.0.1 which is not supported"),
        "{record}"
    );
    let pools = api.get(&format!("/api/v1/systems/{system}/pools")).await;
    assert_eq!(pools["total"], 1, "the inventory stays as it was");
    host.shutdown().await;
    db.drop_database().await;
}

async fn rest_api_contract(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let sim = start_simulator().await;
    let host = start_host(&db, data.path(), plugins.path(), settings()).await;
    let api = Api::of(&host);
    let http = reqwest::Client::new();

    // Health and the document need no token; everything else does.
    let health = http
        .get(format!("{}/healthz", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let document: Value = http
        .get(format!("{}/openapi.json", host.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes = documented_routes(&document);
    assert!(routes.len() >= 18, "{routes:?}");
    for (method, path) in &routes {
        let url = format!("{}{}", host.url, path.replace("{id}", "nope"));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let anonymous = http.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{method} {path} without a token");
        let wrong = http
            .request(method.clone(), &url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
        // With the token, every documented route is routed (no fallback 404 "no such route").
        let authed = http
            .request(method.clone(), &url)
            .bearer_auth(&host.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let body = authed.text().await.unwrap();
        assert!(
            !body.contains("no such route"),
            "{method} {path} is documented but not routed"
        );
    }
    validate_openapi(&document, data.path());

    // Bad input: 4xx naming the field; unknown ids: 404.
    for (body, field) in [
        (
            json!({"host": "h", "username": "u", "password": "p"}),
            "type",
        ),
        (
            json!({"type": "scaleio", "username": "u", "password": "p"}),
            "host",
        ),
        (
            json!({"type": "scaleio", "host": "h", "username": "u", "password": "p", "port": 70000}),
            "port",
        ),
        (
            json!({"type": "nope", "host": "h", "username": "u", "password": "p"}),
            "type",
        ),
        (
            json!({"type": "scaleio", "host": "h", "username": "u", "password": ""}),
            "password",
        ),
        (
            json!({"type": "scaleio", "host": "h", "username": "u", "password": "p", "colour": 1}),
            "colour",
        ),
    ] {
        let (status, error) = api
            .call(
                reqwest::Method::POST,
                "/api/v1/providers",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let raw = http
        .post(format!("{}/api/v1/providers", host.url))
        .bearer_auth(&host.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let (status, _) = api
        .call(reqwest::Method::GET, "/api/v1/systems?limit=0", None)
        .await;
    assert_eq!(status, 400);
    for path in [
        "/api/v1/providers/nope",
        "/api/v1/systems/nope",
        "/api/v1/tasks/nope",
        "/api/v1/hosts/nope",
        "/api/v1/systems/nope/pools",
    ] {
        let (status, body) = api.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }

    // A registered provider: its password is in no response.
    let registered = api.post("/api/v1/providers", registration(&sim)).await;
    api.wait_task(registered["task"]["id"].as_str().unwrap())
        .await;
    api.wait_discoveries().await;
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/providers",
            Some(registration(&sim)),
        )
        .await;
    assert_eq!(status, 409, "the same gateway twice");
    let system = system_id(&api).await;
    let mut everything = String::new();
    for path in [
        "/api/v1/providers".to_string(),
        format!(
            "/api/v1/providers/{}",
            registered["provider"]["id"].as_str().unwrap()
        ),
        "/api/v1/systems".into(),
        format!("/api/v1/systems/{system}"),
        format!("/api/v1/systems/{system}/pools"),
        format!("/api/v1/systems/{system}/ports"),
        format!("/api/v1/systems/{system}/hosts"),
        "/api/v1/hosts".into(),
        "/api/v1/tasks".into(),
        "/api/v1/inventory".into(),
        "/api/v1/drivers".into(),
        "/api/v1/capability-definitions".into(),
    ] {
        everything.push_str(&api.get(&path).await.to_string());
    }
    assert!(!everything.contains(scaleio_simulator::DEFAULT_PASSWORD));
    assert!(!everything.contains(&host.token));
    assert!(
        everything.contains("provisioningType"),
        "capability definitions are served"
    );

    // Paging.
    let page = api.get("/api/v1/hosts?limit=2&offset=1").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["offset"], 1);

    host.shutdown().await;
    db.drop_database().await;
}

fn documented_routes(document: &Value) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    routes
}

/// Validates the document with a real OpenAPI validator (openapi-spec-validator).
fn validate_openapi(document: &Value, dir: &Path) {
    let file = dir.join("openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect(
            "python3 runs (install openapi-spec-validator: pip install openapi-spec-validator)",
        );
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn store_contract(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.url, sealer()).await.unwrap();
    // A second host on the same database: PostgreSQL shares it (the
    // migrations run again as a no-op); SQLite is single-host and refuses.
    match (backend, Store::open(&db.url, sealer()).await) {
        (Backend::Postgres, Ok(again)) => again.close().await,
        (Backend::Sqlite, Err(StoreError::InUse(message))) => {
            assert!(
                message.contains("SQLite is single-host") && message.contains("pid"),
                "{message}"
            )
        }
        (_, other) => panic!("{backend:?}: {other:?}"),
    }

    // Providers: the password is sealed at rest and opens for the driver only.
    let new = NewProvider {
        name: "p1".into(),
        system_type: "scaleio".into(),
        host: "10.0.0.1".into(),
        port: 443,
        username: "admin".into(),
        password: Secret::new("Sup3rSecret"),
        use_ssl: true,
        ca_certificate_pem: None,
        insecure: false,
    };
    let provider = store.insert_provider(&new).await.unwrap();
    assert!(matches!(
        store.insert_provider(&new).await,
        Err(StoreError::Conflict(_))
    ));
    let connection = store
        .provider_connection(&provider.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connection.password.expose(), "Sup3rSecret");
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let sealed: (String,) = sqlx::query_as("SELECT password_sealed FROM providers")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(!sealed.0.contains("Sup3rSecret") && sealed.0.starts_with("v1:"));

    // Jobs: one per target; a second request joins it.
    let scan = NewTask {
        kind: JobKind::Scan,
        target_id: provider.id.clone(),
        target_name: provider.name.clone(),
        origin: Origin::User,
    };
    let task = store.request_job(&scan).await.unwrap();
    assert_eq!(store.request_job(&scan).await.unwrap().id, task.id);
    assert_eq!(store.pending_jobs().await.unwrap(), 1);

    // Claims are exclusive, even when two nodes race.
    let (a, b) = tokio::join!(
        store.claim_job("node-a", 60_000),
        store.claim_job("node-b", 60_000)
    );
    let claimed: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(claimed.len(), 1, "exactly one node claims the job");
    let job = claimed.into_iter().next().unwrap();
    let holder = if store.renew_lease(&job, "node-a", 60_000).await.unwrap() {
        "node-a"
    } else {
        "node-b"
    };
    let other_node = if holder == "node-a" {
        "node-b"
    } else {
        "node-a"
    };
    assert!(!store.renew_lease(&job, other_node, 60_000).await.unwrap());
    assert_eq!(
        store.task(&task.id).await.unwrap().unwrap().status,
        "PROVISIONING"
    );

    // An expired lease is taken over, and the old holder is fenced off.
    assert!(store.renew_lease(&job, holder, -1).await.unwrap());
    let taken = store
        .claim_job(other_node, 60_000)
        .await
        .unwrap()
        .expect("expired lease is claimable");
    assert_eq!(taken.previous_owner.as_deref(), Some(holder));
    let message = store.task(&task.id).await.unwrap().unwrap().message;
    assert!(message.contains("taken over from node"), "{message}");
    let details = ProviderDetails {
        provider_version: "3.6".into(),
        is_supported_version: true,
        ..Default::default()
    };
    let systems = vec![StorageSystem {
        native_id: "pd1".into(),
        system_type: "scaleio".into(),
        name: "pd1".into(),
        ..Default::default()
    }];
    let fenced = store
        .complete_scan(&job, holder, &details, &systems, 0, |_| {
            ("READY", "done".into())
        })
        .await;
    assert!(
        matches!(fenced, Err(StoreError::LeaseLost(_))),
        "{fenced:?}"
    );
    assert_eq!(
        store
            .systems(&Default::default(), Default::default())
            .await
            .unwrap()
            .total,
        0,
        "nothing written"
    );
    let written = store
        .complete_scan(&taken, other_node, &details, &systems, 0, |_| {
            ("READY", "done".into())
        })
        .await
        .unwrap();
    assert_eq!(written.new_systems, 1);
    assert_eq!(
        written.discovery_tasks.len(),
        1,
        "a new system is queued for discovery"
    );
    assert_eq!(store.task(&task.id).await.unwrap().unwrap().status, "READY");

    // Discovery: written in one transaction, only what changed.
    let discovery = store.claim_job("node-a", 60_000).await.unwrap().unwrap();
    let system = store.system("scaleio+pd1").await.unwrap().unwrap();
    let mut inventory = SystemInventory {
        system: systems[0].clone(),
        ..Default::default()
    };
    inventory.pools.push(southbound_sdk::StoragePool {
        native_id: "pool1".into(),
        storage_system_id: "pd1".into(),
        total_capacity_kib: 10,
        ..Default::default()
    });
    let first = store
        .complete_discovery(&discovery, "node-a", &inventory, &[], 0, |_| {
            ("READY", "ok".into())
        })
        .await
        .unwrap();
    assert_eq!(
        first.rows_written, 1,
        "one pool (the details are what the scan stored)"
    );
    let rerun = store
        .request_job(&NewTask {
            kind: JobKind::Discover,
            target_id: system.id.clone(),
            target_name: "pd1".into(),
            origin: Origin::User,
        })
        .await
        .unwrap();
    let job = store.claim_job("node-a", 60_000).await.unwrap().unwrap();
    assert_eq!(job.task_id, rerun.id);
    let same = store
        .complete_discovery(&job, "node-a", &inventory, &[], 0, |_| {
            ("READY", "ok".into())
        })
        .await
        .unwrap();
    assert_eq!(same.rows_written, 0);

    // Two systems reporting the same hosts, discovered at the same moment:
    // each host is created once and linked to both.
    let two = vec![
        StorageSystem {
            native_id: "pd2".into(),
            system_type: "scaleio".into(),
            ..Default::default()
        },
        StorageSystem {
            native_id: "pd3".into(),
            system_type: "scaleio".into(),
            ..Default::default()
        },
    ];
    store.request_job(&scan).await.unwrap();
    let rescan = store.claim_job("node-a", 60_000).await.unwrap().unwrap();
    store
        .complete_scan(&rescan, "node-a", &details, &two, 0, |_| {
            ("READY", "ok".into())
        })
        .await
        .unwrap();
    let first = store.claim_job("node-a", 60_000).await.unwrap().unwrap();
    let second = store.claim_job("node-b", 60_000).await.unwrap().unwrap();
    let inventory_of = |native_id: &str| {
        let hosts = (0..200)
            .map(|i| southbound_sdk::StorageHostComponent {
                native_id: format!("sdc-{i:03}").into(),
                host_name: format!("host-{i}").into(),
                ..Default::default()
            })
            .collect();
        SystemInventory {
            system: StorageSystem {
                native_id: native_id.into(),
                system_type: "scaleio".into(),
                ..Default::default()
            },
            host_components: southbound_sdk::RArc::new(hosts),
            ..Default::default()
        }
    };
    let (a, b) = (inventory_of("pd2"), inventory_of("pd3"));
    let (a_target, b_target) = if store
        .system(&first.target_id)
        .await
        .unwrap()
        .unwrap()
        .native_id
        == "pd2"
    {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let (one, two_written) = tokio::join!(
        store.complete_discovery(&first, "node-a", a_target, &[], 0, |_| (
            "READY",
            "ok".into()
        )),
        store.complete_discovery(&second, "node-b", b_target, &[], 0, |_| (
            "READY",
            "ok".into()
        )),
    );
    one.unwrap();
    two_written.unwrap();
    let hosts = store.hosts(None, Default::default()).await.unwrap();
    assert_eq!(hosts.total, 200, "each host once");
    assert!(
        hosts.items.iter().all(|h| h.systems.len() == 2),
        "linked to both systems"
    );

    // Graceful stop releases held jobs at once.
    store.request_job(&scan).await.unwrap();
    let held = store.claim_job("node-a", 60_000).await.unwrap().unwrap();
    assert_eq!(store.release_jobs("node-a").await.unwrap(), 1);
    let retaken = store.claim_job("node-b", 60_000).await.unwrap().unwrap();
    assert_eq!(retaken.id, held.id);
    assert_eq!(retaken.previous_owner, None, "released, not expired");

    raw.close().await;
    store.close().await;
    drop(store);

    // A host with another key is refused at once (not at its first driver
    // call, with credentials it cannot read); the lock went with the store.
    let other = Store::open(&db.url, Sealer::new(&[1; 32])).await;
    assert!(
        matches!(other, Err(StoreError::WrongSecretKey)),
        "{other:?}"
    );
    let same = Store::open(&db.url, sealer()).await.unwrap();
    assert_eq!(
        same.provider_connection(&provider.id)
            .await
            .unwrap()
            .unwrap()
            .password
            .expose(),
        "Sup3rSecret"
    );
    same.close().await;
    db.drop_database().await;
}

fn southbound(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_southbound"));
    cmd.env("SOUTHBOUND_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("SOUTHBOUND_SERVER")
        .env_remove("SOUTHBOUND_TOKEN")
        .arg("--config")
        .arg(data.join("southbound.toml"))
        .env("SOUTHBOUND_DATA_DIR", data);
    cmd
}

/// Starts `serve` and waits until its API answers; returns the child.
fn start_serve(data: &Path, plugins: &Path, db: &str) -> std::process::Child {
    let port_file = data.join("port");
    let _ = std::fs::remove_file(&port_file);
    let mut child = southbound(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(plugins)
        .arg("--database-url")
        .arg(db)
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if std::fs::read_to_string(&port_file).is_ok_and(|p| !p.trim().is_empty()) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start within 30 s");
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The CLI against a running `serve`: add --wait, inventory --json; then the
/// host is stopped and started again on the same data: everything is still
/// there and the schedule resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_against_serve_survives_a_restart() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let data = tempfile::tempdir().unwrap();
        let plugins = support::plugins_dir(&["scaleio-driver"]);
        let sim = start_simulator().await;
        // Scans every 2 s (the guard allows 1 s) so the resumed schedule shows.
        std::fs::write(
            data.path().join("southbound.toml"),
            "[scheduler]\nscan_interval_secs = 2\nmin_scan_interval_secs = 1\npoll_interval_ms = 200\n",
        )
        .unwrap();
        let pem = data.path().join("sim.pem");
        std::fs::write(&pem, sim.cert_pem().unwrap()).unwrap();
        let password = data.path().join("pw");
        std::fs::write(
            &password,
            format!("{}\n", scaleio_simulator::DEFAULT_PASSWORD),
        )
        .unwrap();

        let mut serve = start_serve(data.path(), plugins.path(), &db.url);
        let added = run_ok(
            southbound(data.path())
                .args([
                    "providers",
                    "add",
                    "--type",
                    "scaleio",
                    "--host",
                    "127.0.0.1",
                    "--username",
                    "admin",
                    "--wait",
                    "--json",
                    "--port",
                ])
                .arg(sim.addr().port().to_string())
                .arg("--password-file")
                .arg(&password)
                .arg("--ca-cert")
                .arg(&pem),
        );
        let added: Value = serde_json::from_str(&added).unwrap();
        assert_eq!(
            added["systems"][0]["discovery_status"], "COMPLETE",
            "{added}"
        );
        let before: Value = serde_json::from_str(&run_ok(
            southbound(data.path()).args(["inventory", "--json"]),
        ))
        .unwrap();
        assert_eq!(before["systems"][0]["pools"].as_array().unwrap().len(), 1);
        assert_eq!(before["hosts"].as_array().unwrap().len(), 3);
        let text = run_ok(southbound(data.path()).arg("inventory"));
        assert!(
            text.contains("Hosts (3)") && text.contains("pool1"),
            "{text}"
        );

        // SIGTERM: a graceful stop.
        // SAFETY: signals the child this test started.
        unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
        assert!(serve.wait().unwrap().success());
        let out = southbound(data.path()).arg("systems").output().unwrap();
        assert!(!out.status.success(), "no host is running now");

        let scans_before = sim.state().stats().requests_total;
        let mut serve = start_serve(data.path(), plugins.path(), &db.url);
        let after: Value = serde_json::from_str(&run_ok(
            southbound(data.path()).args(["inventory", "--json"]),
        ))
        .unwrap();
        assert_eq!(
            before["systems"], after["systems"],
            "the inventory survived the restart"
        );
        assert_eq!(before["hosts"], after["hosts"]);
        // The schedule resumes: a scheduled scan runs within a few seconds.
        let mut resumed = false;
        for _ in 0..50 {
            let tasks: Value =
                serde_json::from_str(&run_ok(southbound(data.path()).args(["tasks", "--json"])))
                    .unwrap();
            if tasks
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["origin"] == "scheduler" && t["status"] == "READY")
            {
                resumed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(resumed, "a scheduled scan ran after the restart");
        assert!(sim.state().stats().requests_total > scans_before);
        serve.kill().unwrap();
        serve.wait().unwrap();
        drop(sim);
        db.drop_database().await;
    }
}

// ---------------------------------------------------------------------------
// Scale-out: several hosts on one PostgreSQL, failover, database restarts,
// metrics.

/// Parses OpenMetrics text with the Prometheus client's own parser; returns
/// (name, labels, value) samples.
fn parse_metrics(text: &str) -> Vec<(String, Value, f64)> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, json\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
             print(json.dumps([[s.name, s.labels, s.value] for f in parse(sys.stdin.read()) for s in f.samples]))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus-client (pip install prometheus-client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, Value, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    samples
}

fn metric(samples: &[(String, Value, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| v)
        .sum()
}

async fn metrics_of(api: &Api) -> Vec<(String, Value, f64)> {
    let response = api
        .http
        .get(format!("{}/metrics", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    parse_metrics(&response.text().await.unwrap())
}

/// Two hosts on one PostgreSQL and ten gateways: every due discovery runs
/// exactly once per cycle across the hosts, never twice at once; both hosts
/// show the same inventory; /metrics counts what was done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_one_postgresql() {
    let db = TestDb::new(Backend::Postgres).await;
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let mut sims = Vec::new();
    for n in 0..10 {
        sims.push(start_cluster(n).await);
    }
    let shared = ControllerSettings {
        // Cycles are started by hand below (next_discovery_at moved to now on
        // every system at once), so both schedulers race for the same work.
        min_discovery_interval: Duration::ZERO,
        ..settings()
    };
    let (data_a, data_b) = shared_key_dirs();
    let host_a =
        start_named_host(&db, data_a.path(), plugins.path(), shared.clone(), "node-a").await;
    let host_b = start_named_host(&db, data_b.path(), plugins.path(), shared, "node-b").await;
    let (api_a, api_b) = (Api::of(&host_a), Api::of(&host_b));

    // Registrations through either host; each is scanned and discovered once.
    for (i, sim) in sims.iter().enumerate() {
        let mut body = registration(sim);
        body["name"] = format!("sim-{i}").into();
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        api.post("/api/v1/providers", body).await;
    }
    let systems = loop {
        let systems = api_b.wait_discoveries().await;
        if systems.len() == 10 {
            break systems;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        api_a.get("/api/v1/inventory").await,
        api_b.get("/api/v1/inventory").await
    );
    let reads_before: Vec<u64> = sims.iter().map(bulk_reads).collect();

    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&db.url).await.unwrap();
    for _cycle in 0..2 {
        // Past the driver's snapshot window: each discovery reads its gateway once.
        tokio::time::sleep(FRESH_READ).await;
        sqlx::query("UPDATE systems SET next_discovery_at = 0")
            .execute(&raw)
            .await
            .unwrap();
        // Every system's discovery is queued by one host, and both run them.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = all_tasks(&api_a).await;
            let done = tasks
                .iter()
                .filter(|t| {
                    t["operation"] == "discover"
                        && t["origin"] == "scheduler"
                        && t["status"] == "READY"
                })
                .count();
            if done == 10 * (_cycle + 1) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cycle {_cycle} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    raw.close().await;

    let tasks = all_tasks(&api_b).await;
    for system in &systems {
        let mut runs: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["operation"] == "discover" && t["target_id"] == system["id"])
            .collect();
        assert_eq!(
            runs.len(),
            3,
            "one discovery after the scan, one per cycle: {runs:?}"
        );
        runs.sort_by_key(|t| t["started_at"].as_i64());
        for pair in runs.windows(2) {
            assert!(
                pair[0]["ended_at"].as_i64() <= pair[1]["started_at"].as_i64(),
                "two discoveries of one system at once: {pair:?}"
            );
        }
    }
    let nodes: BTreeSet<&str> = tasks.iter().filter_map(|t| t["node"].as_str()).collect();
    assert_eq!(nodes, ["node-a", "node-b"].into(), "both hosts did work");
    for (sim, before) in sims.iter().zip(reads_before) {
        assert_eq!(
            bulk_reads(sim) - before,
            2,
            "each gateway was read once per cycle"
        );
    }

    // The metrics of both hosts add up to what ran.
    let (ma, mb) = (metrics_of(&api_a).await, metrics_of(&api_b).await);
    let sum =
        |name: &str, labels: &[(&str, &str)]| metric(&ma, name, labels) + metric(&mb, name, labels);
    assert_eq!(
        sum(
            "southbound_jobs_total",
            &[("operation", "discover"), ("outcome", "READY")]
        ),
        30.0
    );
    assert_eq!(
        sum(
            "southbound_jobs_total",
            &[("operation", "scan"), ("outcome", "READY")]
        ),
        10.0
    );
    assert_eq!(
        sum(
            "southbound_driver_calls_total",
            &[
                ("driver", "scaleio-driver"),
                ("call", "discover_pools"),
                ("outcome", "ok")
            ]
        ),
        30.0
    );
    assert_eq!(
        sum(
            "southbound_job_duration_seconds_count",
            &[("operation", "discover")]
        ),
        30.0
    );
    assert_eq!(
        metric(&ma, "southbound_inventory_objects", &[("kind", "systems")]),
        10.0
    );
    assert_eq!(
        metric(&ma, "southbound_inventory_objects", &[("kind", "hosts")]),
        30.0
    );
    assert_eq!(metric(&mb, "southbound_jobs_waiting", &[]), 0.0);
    assert_eq!(
        metric(&ma, "southbound_database_up", &[("node", "node-a")]),
        1.0
    );
    assert_eq!(
        metric(
            &mb,
            "southbound_driver_quarantined",
            &[("driver", "scaleio-driver"), ("node", "node-b")]
        ),
        0.0
    );

    host_a.shutdown().await;
    host_b.shutdown().await;
    db.drop_database().await;
}

/// Two data directories with the same secret key, as hosts sharing one
/// database must have.
fn shared_key_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for dir in [&a, &b] {
        std::fs::write(dir.path().join("secret.key"), key).unwrap();
    }
    (a, b)
}

fn bulk_reads(sim: &Simulator) -> u64 {
    sim.state()
        .stats()
        .requests
        .get("GET /api/instances")
        .copied()
        .unwrap_or(0)
}

async fn all_tasks(api: &Api) -> Vec<Value> {
    api.get("/api/v1/tasks?limit=10000").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn start_named_host(
    db: &TestDb,
    data: &Path,
    plugins: &Path,
    settings: ControllerSettings,
    node: &str,
) -> RunningHost {
    serve::start(HostOptions {
        plugins_dir: plugins.to_path_buf(),
        policy: support::policy(DriverSettings::default()),
        data_dir: DataDir::resolve(Some(data)).unwrap(),
        database_url: Some(db.url.clone()),
        listen: "127.0.0.1:0".parse().unwrap(),
        token_file: None,
        settings,
        node: Some(node.to_string()),
    })
    .await
    .expect("host starts")
}

/// A host killed with SIGKILL in the middle of a discovery: its lease
/// expires, the other host takes the job over and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_hosts_discovery_is_taken_over() {
    let db = TestDb::new(Backend::Postgres).await;
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let sim = start_simulator().await;
    let config = "[scheduler]\nlease_secs = 3\npoll_interval_ms = 200\n";
    let (data_a, data_b) = shared_key_dirs();
    for data in [&data_a, &data_b] {
        std::fs::write(data.path().join("southbound.toml"), config).unwrap();
    }
    let mut serve_a = start_serve(data_a.path(), plugins.path(), &db.url);
    let mut serve_b = start_serve(data_b.path(), plugins.path(), &db.url);
    let api_b = Api::of_data_dir(data_b.path());
    // Every gateway request takes 1.5 s: the discovery is long enough to kill its host.
    let registered = api_b.post("/api/v1/providers", registration(&sim)).await;
    api_b
        .wait_task(registered["task"]["id"].as_str().unwrap())
        .await;
    api_b.wait_discoveries().await;
    sim.state()
        .set_faults(Faults {
            latency_ms: 1500,
            ..Faults::default()
        })
        .unwrap();
    tokio::time::sleep(FRESH_READ).await;
    let system = system_id(&api_b).await;
    let task = api_b
        .post(&format!("/api/v1/systems/{system}/discover"), json!({}))
        .await;
    let task_id = task["id"].as_str().unwrap().to_string();
    let holder = loop {
        let task = api_b.get(&format!("/api/v1/tasks/{task_id}")).await;
        if let Some(node) = task["node"].as_str() {
            break node.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pid: u32 = holder.rsplit('-').next().unwrap().parse().unwrap();
    let (victim, survivor_api) = if pid == serve_a.id() {
        (&mut serve_a, api_b)
    } else {
        assert_eq!(pid, serve_b.id(), "the holder is one of the two hosts");
        let api_a = Api::of_data_dir(data_a.path());
        (&mut serve_b, api_a)
    };
    victim.kill().unwrap(); // SIGKILL: no release, the lease must expire
    victim.wait().unwrap();
    let ended = survivor_api.wait_task(&task_id).await;
    assert_eq!(ended["status"], "READY", "{ended}");
    assert_ne!(ended["node"].as_str(), Some(holder.as_str()));
    assert!(
        ended["message"]
            .as_str()
            .unwrap()
            .contains(&format!("taken over from node {holder}")),
        "{ended}"
    );
    sim.state().set_faults(Faults::default()).unwrap();
    assert_inventory_matches(&survivor_api, &sim).await;
    for serve in [&mut serve_a, &mut serve_b] {
        let _ = serve.kill();
        let _ = serve.wait();
    }
    db.drop_database().await;
}

/// A PostgreSQL of the test's own, in a temporary directory, started with
/// the machine's binaries (as the `postgres` user when running as root).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn as_postgres(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL binaries under /usr/lib/postgresql")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let pg = Self { dir, bin, port };
        let out = pg
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(pg.data())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.ctl("start");
        pg
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .as_postgres("pg_ctl")
            .args(["-w", "-D"])
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg(action)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// PostgreSQL restarted while two hosts run: they report unhealthy, recover
/// by themselves, and nothing is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_recover_from_a_postgresql_restart() {
    let pg = PrivatePostgres::start();
    let db = TestDb {
        url: pg.url(),
        postgres: None,
        _dir: tempfile::tempdir().unwrap(),
    };
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let sim = start_simulator().await;
    let fast = ControllerSettings {
        discovery_interval: Duration::from_secs(2),
        min_discovery_interval: Duration::from_secs(1),
        ..settings()
    };
    let (data_a, data_b) = shared_key_dirs();
    let host_a = start_named_host(&db, data_a.path(), plugins.path(), fast.clone(), "node-a").await;
    let host_b = start_named_host(&db, data_b.path(), plugins.path(), fast, "node-b").await;
    let (api_a, api_b) = (Api::of(&host_a), Api::of(&host_b));
    let registered = api_a.post("/api/v1/providers", registration(&sim)).await;
    api_a
        .wait_task(registered["task"]["id"].as_str().unwrap())
        .await;
    api_a.wait_discoveries().await;
    let before = api_a.get("/api/v1/inventory").await;

    pg.ctl("stop");
    for api in [&api_a, &api_b] {
        let health = api
            .http
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 503, "unhealthy while the database is down");
        let body: Value = health.json().await.unwrap();
        assert_eq!(body["status"], "unhealthy");
    }
    // Scheduled rediscoveries come due while the database is down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.ctl("start");

    // Both recover with no manual step, and the schedule goes on.
    for api in [&api_a, &api_b] {
        let mut healthy = false;
        for _ in 0..100 {
            let health = api
                .http
                .get(format!("{}/healthz", api.base))
                .send()
                .await
                .unwrap();
            if health.status() == 200 {
                healthy = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(healthy, "{} recovered", api.base);
    }
    let restarted_at = store_now();
    let mut rediscovered = false;
    for _ in 0..100 {
        let system = api_b
            .get(&format!("/api/v1/systems/{}", system_id(&api_b).await))
            .await;
        if system["last_discovery_success_at"].as_i64().unwrap() > restarted_at
            && system["discovery_status"] == "COMPLETE"
        {
            rediscovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        rediscovered,
        "scheduled discoveries resumed after the restart"
    );
    let after = api_a.get("/api/v1/inventory").await;
    for (b, a) in before["systems"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["systems"].as_array().unwrap())
    {
        assert_eq!(
            b["pools"].as_array().unwrap().len(),
            a["pools"].as_array().unwrap().len()
        );
        assert_eq!(b["ports"], a["ports"], "no port lost or duplicated");
        assert_eq!(b["host_ids"], a["host_ids"]);
    }
    assert_eq!(before["hosts"], after["hosts"]);
    assert_eq!(after["systems"].as_array().unwrap().len(), 1);
    assert_inventory_matches(&api_a, &sim).await;
    host_a.shutdown().await;
    host_b.shutdown().await;
}

fn store_now() -> i64 {
    southbound_host::store::now_ms()
}
