//! Determinism and concurrency: the same question asked again, or at the
//! same time, gets the same answer (volatile figures excepted).

use std::sync::Arc;

use serde_json::Value;
use southbound_host::discovery::{fetch_system, DiscoveryError, RawDiscovery};
use southbound_host::isolation::DriverExt;
use southbound_sdk::StorageSystem;

use super::systems as systems_count;
use crate::suite::{Outcome, Session};

/// Fields that may change between two discoveries of an unchanged system.
const VOLATILE: &[&str] = &["free_capacity_kib", "subscribed_capacity_kib"];

/// A comparable form: volatile fields dropped, lists of identified objects
/// sorted by id (drivers need not keep an order).
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in VOLATILE {
                map.remove(*key);
            }
            map.values_mut().for_each(normalize);
        }
        Value::Array(items) => {
            items.iter_mut().for_each(normalize);
            let key = |v: &Value| {
                ["native_id", "uid", "port"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
            };
            if items.iter().all(|v| key(v).is_some()) {
                items.sort_by_key(|v| key(v));
            }
        }
        _ => {}
    }
}

fn comparable(value: &impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    normalize(&mut value);
    value
}

/// Where `a` and `b` first differ, as a path with both values.
fn difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.iter().find_map(|(k, v)| {
            difference(&format!("{path}.{k}"), v, y.get(k).unwrap_or(&Value::Null))
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| difference(&format!("{path}[{i}]"), v, w)),
        (Value::Array(x), Value::Array(y)) => {
            Some(format!("{path}: {} items, then {} items", x.len(), y.len()))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} then {b}")),
    }
}

pub async fn repeat_scan(s: &mut Session) -> Outcome {
    let first = match s.scanned() {
        Ok(systems) => systems,
        Err(skip) => return skip,
    };
    let Ok(driver) = s.loaded() else {
        return Outcome::Skipped("the driver did not load".into());
    };
    let again = match driver
        .scan_provider(s.context("conformance-rescan"), &s.provider())
        .await
    {
        Ok(scan) => scan.systems.to_vec(),
        Err(e) => return Outcome::Failed(format!("the second scan failed: {e}")),
    };
    match difference("systems", &comparable(&first), &comparable(&again)) {
        Some(diff) => Outcome::Failed(format!("the second scan differs: {diff}")),
        None => Outcome::Passed(format!("the same {} twice", systems_count(first.len()))),
    }
}

/// Compares a discovery with the session's first one of the same system.
fn same_as_first(
    s: &Session,
    system: &StorageSystem,
    again: &Result<RawDiscovery, DiscoveryError>,
    when: &str,
) -> Option<String> {
    let first = s
        .discoveries
        .iter()
        .find(|(scanned, _)| scanned.native_id == system.native_id)
        .and_then(|(_, found)| found.as_ref().ok())?;
    match again {
        Err(e) => Some(format!("{when}: {e}")),
        Ok(again) => difference(
            &format!("system '{}'", system.native_id),
            &comparable(first),
            &comparable(again),
        )
        .map(|diff| format!("{when}: {diff}")),
    }
}

/// The scanned systems that were discovered the first time.
fn discovered(s: &Session) -> Result<Vec<StorageSystem>, Outcome> {
    s.scanned()?;
    let systems: Vec<StorageSystem> = s
        .discoveries
        .iter()
        .filter(|(_, found)| found.is_ok())
        .map(|(system, _)| system.clone())
        .collect();
    if systems.is_empty() {
        return Err(Outcome::Skipped(
            "no system was discovered (see objects.discover)".into(),
        ));
    }
    Ok(systems)
}

pub async fn repeat_discovery(s: &mut Session) -> Outcome {
    let (systems, driver) = match (discovered(s), s.loaded()) {
        (Ok(systems), Ok(driver)) => (systems, driver),
        (Err(skip), _) | (_, Err(skip)) => return skip,
    };
    let again = s.discover_all(driver.as_ref(), &systems).await;
    let differences: Vec<String> = systems
        .iter()
        .zip(&again)
        .filter_map(|(system, found)| same_as_first(s, system, found, "second discovery"))
        .collect();
    if differences.is_empty() {
        Outcome::Passed(format!(
            "{} discovered twice alike",
            systems_count(systems.len())
        ))
    } else {
        Outcome::Failed(differences.join("; "))
    }
}

pub async fn parallel_discovery(s: &mut Session) -> Outcome {
    let (systems, driver) = match (discovered(s), s.loaded()) {
        (Ok(systems), Ok(driver)) => (systems, driver),
        (Err(skip), _) | (_, Err(skip)) => return skip,
    };
    // Every system twice, all at once: the same system concurrently, and
    // different systems concurrently.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, system) in systems.iter().chain(&systems).enumerate() {
        let driver = Arc::clone(&driver);
        let provider = s.provider();
        let system = system.clone();
        let timeout = s.target.call_timeout;
        tasks.spawn(async move {
            let found = fetch_system(driver.as_ref(), &provider, &system, timeout).await;
            (i, system, found)
        });
    }
    let mut differences = Vec::new();
    let calls = tasks.len();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, system, found)) => differences.extend(same_as_first(
                s,
                &system,
                &found,
                &format!("parallel discovery #{}", i + 1),
            )),
            Err(e) => differences.push(format!("a parallel discovery did not finish: {e}")),
        }
    }
    if differences.is_empty() {
        Outcome::Passed(format!(
            "{calls} discoveries in parallel agree with the serial ones"
        ))
    } else {
        Outcome::Failed(differences.join("; "))
    }
}
