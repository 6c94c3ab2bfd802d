//! The object rules, judged on the driver's own answers: the scan and each
//! system's objects go through the host's `validation` code, and each check
//! fails on the rules it covers only.

use southbound_host::discovery::check_discovery;
use southbound_host::validation::{self, Problem, Rule};

use super::{judge, systems};
use crate::suite::{Outcome, Session};

pub async fn scan_succeeds(s: &mut Session) -> Outcome {
    if let Err(skip) = s.loaded() {
        return skip;
    }
    match &s.scan {
        Some(Ok(scan)) if scan.systems.is_empty() => {
            Outcome::Failed("scan_provider found no storage system".into())
        }
        Some(Ok(scan)) => Outcome::Passed(format!(
            "{}: {}",
            systems(scan.systems.len()),
            scan.systems
                .iter()
                .map(|s| s.native_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(Err(e)) => Outcome::Failed(format!("scan_provider failed: {e}")),
        None => Outcome::Skipped("the driver did not load".into()),
    }
}

/// The scan's problems under `rules`.
fn scan_rules(s: &Session, rules: &[Rule]) -> Outcome {
    let driver = match s.loaded() {
        Ok(driver) => driver,
        Err(skip) => return skip,
    };
    let Some(Ok(scan)) = &s.scan else {
        return Outcome::Skipped("the scan failed (see scan.succeeds)".into());
    };
    let mut scan = scan.clone();
    let count = scan.systems.len();
    let problems = validation::check_scan(&driver.info().storage_system_types, &mut scan);
    judge(
        problems
            .iter()
            .filter(|p| rules.contains(&p.rule))
            .map(|p| (String::new(), p)),
        format!("{} keep the rule", systems(count)),
    )
}

pub async fn scan_native_ids(s: &mut Session) -> Outcome {
    scan_rules(s, &[Rule::EmptyNativeId, Rule::DuplicateNativeId])
}

pub async fn scan_system_types(s: &mut Session) -> Outcome {
    scan_rules(s, &[Rule::UndeclaredSystemType])
}

pub async fn scan_required_fields(s: &mut Session) -> Outcome {
    scan_rules(s, &[Rule::MissingSystemField])
}

pub async fn discover(s: &mut Session) -> Outcome {
    if let Err(skip) = s.scanned() {
        return skip;
    }
    let failures: Vec<String> = s
        .discoveries
        .iter()
        .filter_map(|(_, found)| found.as_ref().err().map(ToString::to_string))
        .collect();
    if !failures.is_empty() {
        return Outcome::Failed(failures.join("; "));
    }
    let (mut pools, mut ports, mut hosts) = (0, 0, 0);
    for (_, found) in &s.discoveries {
        if let Ok(raw) = found {
            pools += raw.inventory.pools.len();
            ports += raw.inventory.ports.len();
            hosts += raw.inventory.host_components.len();
        }
    }
    Outcome::Passed(format!(
        "{}: {pools} pools, {ports} ports, {hosts} host components",
        systems(s.discoveries.len())
    ))
}

/// Each discovered system's problems under `rules`.
fn object_rules(s: &Session, rules: &[Rule]) -> Outcome {
    if let Err(skip) = s.scanned() {
        return skip;
    }
    let mut found: Vec<(String, Problem)> = Vec::new();
    let mut judged = 0;
    for (system, discovery) in &s.discoveries {
        let Ok(raw) = discovery else { continue };
        judged += 1;
        let checked = check_discovery(raw.clone());
        found.extend(
            checked
                .problems
                .into_iter()
                .filter(|p| rules.contains(&p.rule))
                .map(|p| (format!("system '{}': ", system.native_id), p)),
        );
    }
    if judged == 0 {
        return Outcome::Skipped("no system was discovered (see objects.discover)".into());
    }
    judge(
        found.iter().map(|(place, p)| (place.clone(), p)),
        format!("{} keep the rule", systems(judged)),
    )
}

pub async fn native_ids(s: &mut Session) -> Outcome {
    object_rules(s, &[Rule::EmptyNativeId, Rule::DuplicateNativeId])
}

pub async fn belong_to_system(s: &mut Session) -> Outcome {
    object_rules(s, &[Rule::WrongSystem])
}

pub async fn capacities(s: &mut Session) -> Outcome {
    object_rules(s, &[Rule::FreeExceedsTotal])
}

pub async fn port_network_ids(s: &mut Session) -> Outcome {
    object_rules(s, &[Rule::MissingNetworkId])
}

pub async fn capabilities(s: &mut Session) -> Outcome {
    object_rules(
        s,
        &[
            Rule::UndeclaredCapability,
            Rule::UndeclaredCapabilityProperty,
            Rule::InvalidCapabilityDefinition,
        ],
    )
}
