//! The simulator seen from a plain HTTP client: auth rules, endpoints,
//! error bodies, statistics invariants, control API.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use scaleio_simulator::topology::GIB;
use scaleio_simulator::{ApiVersion, SessionLimits, SimConfig, Simulator, TopologySpec};
use serde_json::{json, Value};

async fn start(config: SimConfig) -> (Simulator, Client) {
    let sim = Simulator::start(config).await.expect("simulator starts");
    let client = match sim.cert_pem() {
        Some(pem) => Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap(),
        None => Client::new(),
    };
    (sim, client)
}

fn plain(version: ApiVersion, topology: TopologySpec) -> SimConfig {
    SimConfig {
        tls: false,
        api_version: version,
        topology,
        ..SimConfig::default()
    }
}

async fn login(sim: &Simulator, client: &Client) -> String {
    let response = client
        .get(format!("{}/api/login", sim.base_url()))
        .basic_auth("admin", Some(scaleio_simulator::DEFAULT_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with('"') && text.ends_with('"'),
        "the token is a quoted JSON string: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

async fn get(sim: &Simulator, client: &Client, token: &str, path: &str) -> (StatusCode, Value) {
    let response = client
        .get(format!("{}{path}", sim.base_url()))
        .basic_auth("anyone", Some(token))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(
    sim: &Simulator,
    client: &Client,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{}{path}", sim.base_url()))
        .basic_auth("anyone", Some(token))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn https_with_the_pinned_certificate_and_the_basic_token_flow() {
    let (sim, client) = start(SimConfig::default()).await;
    assert!(sim.base_url().starts_with("https://"));
    assert!(sim.cert_pem().unwrap().contains("BEGIN CERTIFICATE"));
    let token = login(&sim, &client).await;
    let (status, version) = get(&sim, &client, &token, "/api/version").await;
    assert_eq!((status, version), (StatusCode::OK, json!("3.6")));

    let (status, body) = get(&sim, &client, "wrong-token", "/api/version").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"message": "Unauthorized", "httpStatusCode": 401, "errorCode": 0})
    );

    let bad = client
        .get(format!("{}/api/login", sim.base_url()))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    let logout = client
        .get(format!("{}/api/logout", sim.base_url()))
        .basic_auth("admin", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(
        get(&sim, &client, &token, "/api/version").await.0,
        StatusCode::UNAUTHORIZED
    );

    // An unpinned client refuses the self-signed certificate.
    let stranger = Client::new()
        .get(format!("{}/api/version", sim.base_url()))
        .send()
        .await;
    assert!(stranger.is_err());
}

#[tokio::test]
async fn tokens_expire_when_idle_and_at_the_end_of_their_lifetime() {
    let sessions = SessionLimits {
        idle_timeout: Duration::from_millis(700),
        lifetime: Duration::from_millis(1200),
        max_sessions: 128,
    };
    let (sim, client) = start(SimConfig {
        sessions,
        ..plain(ApiVersion::V3_6, TopologySpec::small())
    })
    .await;
    let idle = login(&sim, &client).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        get(&sim, &client, &idle, "/api/version").await.0,
        StatusCode::UNAUTHORIZED
    );

    let busy = login(&sim, &client).await;
    // Used every 250 ms (well inside the idle timeout) until past the lifetime.
    let born = std::time::Instant::now();
    while born.elapsed() < Duration::from_millis(950) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            get(&sim, &client, &busy, "/api/version").await.0,
            StatusCode::OK,
            "use keeps it alive"
        );
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        get(&sim, &client, &busy, "/api/version").await.0,
        StatusCode::UNAUTHORIZED,
        "lifetime is absolute"
    );
}

#[tokio::test]
async fn logins_beyond_the_session_cap_are_refused() {
    let (sim, client) = start(SimConfig {
        sessions: SessionLimits {
            max_sessions: 3,
            ..SimConfig::default().sessions
        },
        ..plain(ApiVersion::V3_6, TopologySpec::small())
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(login(&sim, &client).await);
    }
    let refused = client
        .get(format!("{}/api/login", sim.base_url()))
        .basic_auth("admin", Some(scaleio_simulator::DEFAULT_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sim.state().stats().live_sessions, 3);
    client
        .get(format!("{}/api/logout", sim.base_url()))
        .basic_auth("admin", Some(&tokens[0]))
        .send()
        .await
        .unwrap();
    login(&sim, &client).await;
}

#[tokio::test]
async fn the_bearer_flow_exists_on_4x_only() {
    let (sim, client) = start(plain(ApiVersion::V4_5, TopologySpec::small())).await;
    let url = |p: &str| format!("{}{p}", sim.base_url());
    let tokens: Value = client
        .post(url("/rest/auth/login"))
        .json(&json!({"username": "admin", "password": scaleio_simulator::DEFAULT_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let version = client
        .get(url("/api/version"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(version.json::<Value>().await.unwrap(), json!("4.5"));
    // The 3.x login still works on 4.x, and its token works as Bearer too.
    let basic = login(&sim, &client).await;
    let as_bearer = client
        .get(url("/api/version"))
        .bearer_auth(&basic)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), StatusCode::OK);

    let renewed: Value = client
        .post(url("/rest/auth/update-token"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_access = renewed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_access, access);
    let old = client
        .get(url("/api/version"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "a refreshed access token replaces the old one"
    );
    let logout = client
        .post(url("/rest/auth/logout"))
        .bearer_auth(&new_access)
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    let (old_sim, old_client) = start(plain(ApiVersion::V3_6, TopologySpec::small())).await;
    let missing = old_client
        .post(format!("{}/rest/auth/login", old_sim.base_url()))
        .json(&json!({"username": "admin", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let token = login(&old_sim, &old_client).await;
    let bearer = old_client
        .get(format!("{}/api/version", old_sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::UNAUTHORIZED,
        "3.x takes Basic only"
    );
}

#[tokio::test]
async fn objects_relationships_and_errors() {
    let (sim, client) = start(plain(ApiVersion::V3_6, TopologySpec::small())).await;
    let token = login(&sim, &client).await;
    let inv = sim.state().inventory().clone();
    let pool = &inv.pools[0];

    for t in scaleio_simulator::render::TYPES {
        let (status, list) = get(&sim, &client, &token, &format!("/api/types/{t}/instances")).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        for object in list.as_array().unwrap() {
            let links = object["links"].as_array().unwrap();
            assert_eq!(links[0]["rel"], "self", "{t} links start with self");
            let (status, one) =
                get(&sim, &client, &token, links[0]["href"].as_str().unwrap()).await;
            assert_eq!(
                (status, &one),
                (StatusCode::OK, object),
                "{t} by id matches the list"
            );
            let stats_href = format!(
                "{}/relationships/Statistics",
                links[0]["href"].as_str().unwrap()
            );
            assert_eq!(
                get(&sim, &client, &token, &stats_href).await.0,
                StatusCode::OK,
                "{t} statistics"
            );
        }
    }
    let (_, pool_obj) = get(
        &sim,
        &client,
        &token,
        &format!("/api/instances/StoragePool::{}", pool.id),
    )
    .await;
    assert_eq!(pool_obj["mediaType"], "HDD");
    assert_eq!(
        pool_obj["protectionDomainId"],
        pool.protection_domain_id.as_str()
    );
    let parent = pool_obj["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "/api/parent/relationship/protectionDomainId")
        .unwrap();
    assert_eq!(
        parent["href"],
        format!(
            "/api/instances/ProtectionDomain::{}",
            pool.protection_domain_id
        )
    );

    let (status, devices) = get(
        &sim,
        &client,
        &token,
        &format!(
            "/api/instances/StoragePool::{}/relationships/Device",
            pool.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(devices.as_array().unwrap().len(), 6);
    let (_, pd_pools) = get(
        &sim,
        &client,
        &token,
        &format!(
            "/api/instances/ProtectionDomain::{}/relationships/StoragePool",
            pool.protection_domain_id
        ),
    )
    .await;
    assert_eq!(pd_pools.as_array().unwrap().len(), 1);

    let (status, body) = get(
        &sim,
        &client,
        &token,
        "/api/instances/StoragePool::ffffffff00000000",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"message": "Not found", "httpStatusCode": 500, "errorCode": 3})
    );

    let (status, limits) = post(
        &sim,
        &client,
        &token,
        "/api/instances/System/action/querySystemLimits",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(limits["systemLimitEntryList"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "sdsPerProtectionDomain"));

    let (status, bulk) = get(&sim, &client, &token, "/api/instances").await;
    assert_eq!(status, StatusCode::OK);
    assert!(bulk["System"].is_object());
    for (key, count) in [
        ("protectionDomainList", 1),
        ("storagePoolList", 1),
        ("sdsList", 3),
        ("sdcList", 3),
        ("volumeList", 3),
    ] {
        assert_eq!(bulk[key].as_array().unwrap().len(), count, "{key}");
    }
}

#[tokio::test]
async fn statistics_queries_in_every_form() {
    let (sim, client) = start(plain(ApiVersion::V2_6, TopologySpec::small())).await;
    let token = login(&sim, &client).await;
    let pool = sim.state().inventory().pools[0].id.clone();
    let props = json!([
        "maxCapacityInKb",
        "thinCapacityAllocatedInKb",
        "thinCapacityAllocatedInKm"
    ]);
    for all_ids in [json!([]), json!("")] {
        let (status, body) = post(
            &sim,
            &client,
            &token,
            "/api/instances/querySelectedStatistics",
            json!({"selectedStatisticsList": [
                {"type": "StoragePool", "allIds": all_ids, "properties": props},
                {"type": "System", "properties": ["numOfSds", "numOfScsiInitiators"]}
            ]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let pool_stats = body["StoragePool"][&pool].as_object().unwrap();
        assert!(
            pool_stats.contains_key("thinCapacityAllocatedInKb"),
            "2.x spelling"
        );
        assert!(!pool_stats.contains_key("thinCapacityAllocatedInKm"));
        assert_eq!(
            body["System"],
            json!({"numOfSds": 3, "numOfScsiInitiators": 0})
        );
    }
    let (status, by_ids) = post(
        &sim,
        &client,
        &token,
        "/api/types/StoragePool/instances/action/querySelectedStatistics",
        json!({"ids": [pool], "properties": ["maxCapacityInKb"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_ids[&pool]["maxCapacityInKb"], json!(6 * 512 * GIB));

    let (sim3, client3) = start(plain(ApiVersion::V3_6, TopologySpec::small())).await;
    let token3 = login(&sim3, &client3).await;
    let (_, body) = post(
        &sim3,
        &client3,
        &token3,
        "/api/types/StoragePool/instances/action/querySelectedStatistics",
        json!({"allIds": "", "properties": ["thinCapacityAllocatedInKm"]}),
    )
    .await;
    let pool3 = sim3.state().inventory().pools[0].id.clone();
    assert!(
        body[&pool3].get("thinCapacityAllocatedInKm").is_some(),
        "misspelled after 3.5: {body}"
    );
}

/// The invariants real gateways show hold for every pool and the system.
#[tokio::test]
async fn large_topology_is_within_limits_and_its_statistics_obey_the_invariants() {
    let (sim, client) = start(plain(ApiVersion::V3_6, TopologySpec::large())).await;
    let inv = sim.state().inventory().clone();
    assert!(inv.protection_domains.len() >= 8);
    assert_eq!(
        (
            inv.sds.len(),
            inv.pools.len(),
            inv.sdcs.len(),
            inv.devices.len()
        ),
        (512, 64, 2048, 4096)
    );
    for pd in &inv.protection_domains {
        assert!(
            inv.sds
                .iter()
                .filter(|s| s.protection_domain_id == pd.id)
                .count()
                <= 128
        );
    }
    for pool in &inv.pools {
        assert!(
            inv.devices
                .iter()
                .filter(|d| d.storage_pool_id == pool.id)
                .count()
                <= 300
        );
    }
    let token = login(&sim, &client).await;
    let (_, body) = post(
        &sim,
        &client,
        &token,
        "/api/instances/querySelectedStatistics",
        json!({"selectedStatisticsList": [
            {"type": "StoragePool", "allIds": "", "properties": [
                "maxCapacityInKb", "capacityInUseInKb", "unusedCapacityInKb", "spareCapacityInKb",
                "thinCapacityInUseInKb", "thickCapacityInUseInKb", "snapCapacityInUseOccupiedInKb",
                "capacityAvailableForVolumeAllocationInKb"]},
            {"type": "System", "properties": ["maxCapacityInKb", "capacityInUseInKb", "unusedCapacityInKb", "spareCapacityInKb"]}
        ]}),
    )
    .await;
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let pools = body["StoragePool"].as_object().unwrap();
    assert_eq!(pools.len(), 64);
    let mut total_max = 0;
    for stats in pools.values() {
        assert_eq!(
            n(stats, "maxCapacityInKb"),
            n(stats, "capacityInUseInKb")
                + n(stats, "unusedCapacityInKb")
                + n(stats, "spareCapacityInKb")
        );
        assert_eq!(
            n(stats, "capacityInUseInKb"),
            n(stats, "thinCapacityInUseInKb")
                + n(stats, "thickCapacityInUseInKb")
                + n(stats, "snapCapacityInUseOccupiedInKb")
        );
        assert_eq!(
            n(stats, "capacityAvailableForVolumeAllocationInKb") % (8 * GIB),
            0
        );
        total_max += n(stats, "maxCapacityInKb");
    }
    let system = &body["System"];
    assert_eq!(
        n(system, "maxCapacityInKb"),
        total_max,
        "the system is the sum of its pools"
    );
    assert_eq!(
        n(system, "maxCapacityInKb"),
        n(system, "capacityInUseInKb")
            + n(system, "unusedCapacityInKb")
            + n(system, "spareCapacityInKb")
    );
}

#[tokio::test]
async fn the_control_api_changes_topology_and_faults_and_is_not_counted() {
    let (sim, client) = start(plain(ApiVersion::V3_6, TopologySpec::small())).await;
    let url = |p: &str| format!("{}{p}", sim.base_url());
    let token = login(&sim, &client).await;
    let pd = sim.state().inventory().protection_domains[0].id.clone();
    // The bulk body is rendered once per change (cached in between): every
    // change shows in the next read.
    let sds_in_bulk = || async {
        get(&sim, &client, &token, "/api/instances").await.1["sdsList"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(sds_in_bulk().await, 3);
    assert_eq!(sds_in_bulk().await, 3);

    let created: Value = client
        .post(url("/sim/sds"))
        .json(&json!({"protection_domain_id": pd, "devices": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sds_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&sim, &client, &token, "/api/types/Sds/instances")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(sds_in_bulk().await, 4);
    let deleted = client
        .delete(url(&format!("/sim/sds/{sds_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(sds_in_bulk().await, 3);
    let again = client
        .delete(url(&format!("/sim/sds/{sds_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let sdc: Value = client
        .post(url("/sim/sdc"))
        .json(&json!({"disconnected": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sdc["id"].is_string());
    let pool: Value = client
        .post(url("/sim/pools"))
        .json(&json!({"protection_domain_id": pd, "name": "extra", "media_type": "SSD"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(pool["id"].is_string());
    let bad_volume = client
        .post(url(&format!(
            "/sim/pools/{}/volumes",
            sim.state().inventory().pools[0].id
        )))
        .json(&json!({"size_gib": 10, "thin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_volume.status(),
        StatusCode::BAD_REQUEST,
        "volume sizes come in 8 GiB steps"
    );
    let resized = client
        .put(url(&format!(
            "/sim/pools/{}/device-capacity",
            sim.state().inventory().pools[0].id
        )))
        .json(&json!({"gib": 1024}))
        .send()
        .await
        .unwrap();
    assert_eq!(resized.status(), StatusCode::OK);

    let bad_faults = client
        .put(url("/sim/faults"))
        .json(&json!({"error_rate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_faults.status(), StatusCode::BAD_REQUEST);
    client
        .put(url("/sim/faults"))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&sim, &client, &token, "/api/version").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    client.delete(url("/sim/faults")).send().await.unwrap();
    assert_eq!(
        get(&sim, &client, &token, "/api/version").await.0,
        StatusCode::OK
    );
    client
        .post(url("/sim/faults/expire-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&sim, &client, &token, "/api/version").await.0,
        StatusCode::UNAUTHORIZED
    );

    let stats: Value = client
        .get(url("/sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["logins"], 1);
    assert_eq!(stats["live_sessions"], 0);
    let requests = stats["requests"].as_object().unwrap();
    assert!(
        requests.keys().all(|k| !k.contains("/sim/")),
        "control API not counted: {requests:?}"
    );
    assert_eq!(
        stats["requests_total"],
        requests.values().map(|v| v.as_u64().unwrap()).sum::<u64>()
    );
    assert_eq!(requests["GET /api/version"], 3);
}
