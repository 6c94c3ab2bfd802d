//! The object rules: what the host checks in a driver's answers before it
//! writes them. The one place these rules live: the discovery workflow
//! applies them before every write, `probe` reports them, and the
//! conformance suite reuses them (each [`Rule`] has a stable name).
//!
//! Invalid objects are dropped and reported as [`Problem`]s; the valid ones
//! are kept, so one bad pool does not hide the rest of a system.

use std::collections::HashSet;

use serde::Serialize;
use southbound_sdk::{
    CapabilityDefinition, CapabilityInstance, ProviderScan, RArc, RString, StorageSystem,
    SystemInventory,
};

/// One rule a driver's answer can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Every object has a non-empty native id.
    EmptyNativeId,
    /// Native ids are unique per kind within a system (systems: per scan).
    DuplicateNativeId,
    /// A system's type is one the driver declared.
    UndeclaredSystemType,
    /// A scanned system has a name and a serial number (CoprHD builds pool
    /// and port ids from the serial).
    MissingSystemField,
    /// Pools and ports name the system they were discovered for.
    WrongSystem,
    /// A pool's free capacity does not exceed its total.
    FreeExceedsTotal,
    /// Every port has a network id (CoprHD skips ports without one).
    MissingNetworkId,
    /// Capability instances fill in a declared definition...
    UndeclaredCapability,
    /// ...with declared properties only.
    UndeclaredCapabilityProperty,
    /// Capability definitions have a non-empty, unique uid.
    InvalidCapabilityDefinition,
}

impl Rule {
    /// The rule's stable name (for reports and the conformance suite).
    pub fn name(self) -> &'static str {
        match self {
            Self::EmptyNativeId => "empty-native-id",
            Self::DuplicateNativeId => "duplicate-native-id",
            Self::UndeclaredSystemType => "undeclared-system-type",
            Self::MissingSystemField => "missing-system-field",
            Self::WrongSystem => "wrong-system",
            Self::FreeExceedsTotal => "free-exceeds-total",
            Self::MissingNetworkId => "missing-network-id",
            Self::UndeclaredCapability => "undeclared-capability",
            Self::UndeclaredCapabilityProperty => "undeclared-capability-property",
            Self::InvalidCapabilityDefinition => "invalid-capability-definition",
        }
    }
}

/// One invalid object: what it is, which rule it breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `system`, `pool`, `port`, `host` or `capability-definition`.
    pub object: &'static str,
    /// The object's native id (or uid), as the driver gave it.
    pub native_id: String,
    /// The rule broken.
    pub rule: Rule,
    /// The details, for an operator.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} '{}' not written: {} ({})",
            self.object,
            self.native_id,
            self.message,
            self.rule.name()
        )
    }
}

fn problem(object: &'static str, native_id: &str, rule: Rule, message: String) -> Problem {
    Problem {
        object,
        native_id: native_id.to_string(),
        rule,
        message,
    }
}

/// Which items lose their place: an empty native id, or one an earlier item
/// already has (each reported). Reads the items only, so a shared list is
/// copied only when something must go.
fn unidentified<T>(
    items: &[T],
    object: &'static str,
    id: impl Fn(&T) -> &str,
    problems: &mut Vec<Problem>,
) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(items.len());
    items
        .iter()
        .map(|item| {
            let native_id = id(item);
            if native_id.trim().is_empty() {
                problems.push(problem(
                    object,
                    native_id,
                    Rule::EmptyNativeId,
                    "its native id is empty".into(),
                ));
                return true;
            }
            if !seen.insert(native_id) {
                problems.push(problem(
                    object,
                    native_id,
                    Rule::DuplicateNativeId,
                    format!("another {object} of this system has the same native id"),
                ));
                return true;
            }
            false
        })
        .collect()
}

/// Keeps the items whose native id is non-empty and first of its kind.
fn retain_identified<T>(
    items: &mut Vec<T>,
    object: &'static str,
    id: impl Fn(&T) -> &str,
    problems: &mut Vec<Problem>,
) {
    items.retain(unmarked(unidentified(items, object, id, problems)));
}

/// A `retain` predicate that keeps the items not marked, in order.
fn unmarked<T>(marks: Vec<bool>) -> impl FnMut(&T) -> bool {
    let mut marks = marks.into_iter();
    move |_| !marks.next().unwrap_or(false)
}

/// Checks a provider scan: drops systems without a native id, duplicates,
/// systems of a type the driver does not declare, and systems without a name
/// or serial number.
pub fn check_scan(declared_types: &[RString], scan: &mut ProviderScan) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut systems: Vec<StorageSystem> = std::mem::take(&mut scan.systems).into_iter().collect();
    retain_identified(&mut systems, "system", |s| &s.native_id, &mut problems);
    systems.retain(|s| {
        let declared = declared_types.contains(&s.system_type);
        if !declared {
            problems.push(problem(
                "system",
                &s.native_id,
                Rule::UndeclaredSystemType,
                format!(
                    "its type '{}' is not one the driver declared ({})",
                    s.system_type,
                    declared_types
                        .iter()
                        .map(RString::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        declared
    });
    systems.retain(|s| {
        let missing: Vec<&str> = [("name", &s.name), ("serial number", &s.serial_number)]
            .into_iter()
            .filter(|(_, value)| value.trim().is_empty())
            .map(|(field, _)| field)
            .collect();
        let broken = (!missing.is_empty()).then(|| {
            (
                Rule::MissingSystemField,
                format!("its {} is empty", missing.join(" and ")),
            )
        });
        keep_or_report(broken, "system", &s.native_id, &mut problems)
    });
    scan.systems = systems.into_iter().collect();
    problems
}

/// Checks capability definitions: drops those with an empty or repeated uid,
/// or an empty or repeated property name.
pub fn check_definitions(definitions: &mut Vec<CapabilityDefinition>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    definitions.retain(|d| {
        let mut properties = HashSet::new();
        let broken = if d.uid.trim().is_empty() {
            Some("its uid is empty".to_string())
        } else if !seen.insert(d.uid.to_string()) {
            Some("its uid is declared twice".to_string())
        } else {
            d.property_names
                .iter()
                .find(|p| p.trim().is_empty() || !properties.insert(p.as_str()))
                .map(|p| format!("property name '{p}' is empty or declared twice"))
        };
        let broken = broken.map(|message| (Rule::InvalidCapabilityDefinition, message));
        keep_or_report(broken, "capability-definition", &d.uid, &mut problems)
    });
    problems
}

/// Checks one system's inventory against the rules; drops invalid pools,
/// ports and hosts and returns why. `definitions` are the capability
/// definitions the driver declared (already checked).
pub fn check_inventory(
    inventory: &mut SystemInventory,
    definitions: &[CapabilityDefinition],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let system_id = inventory.system.native_id.to_string();
    let capability_problem = |caps: &[CapabilityInstance]| -> Option<(Rule, String)> {
        for cap in caps {
            let Some(def) = definitions.iter().find(|d| d.uid == cap.definition_uid) else {
                return Some((
                    Rule::UndeclaredCapability,
                    format!(
                        "capability '{}' fills in undeclared definition '{}'",
                        cap.name, cap.definition_uid
                    ),
                ));
            };
            if let Some(prop) = cap
                .properties
                .iter()
                .find(|p| !def.property_names.contains(&p.name))
            {
                return Some((
                    Rule::UndeclaredCapabilityProperty,
                    format!(
                        "capability '{}' sets property '{}', which definition '{}' does not declare",
                        cap.name, prop.name, def.uid
                    ),
                ));
            }
        }
        None
    };

    // The system's own capabilities: dropped one by one, the system stays.
    let mut system_caps: Vec<CapabilityInstance> =
        std::mem::take(&mut inventory.system.capabilities)
            .into_iter()
            .collect();
    system_caps.retain(|cap| match capability_problem(std::slice::from_ref(cap)) {
        Some((rule, message)) => {
            problems.push(problem("system", &system_id, rule, message));
            false
        }
        None => true,
    });
    inventory.system.capabilities = system_caps.into_iter().collect();

    let mut pools: Vec<_> = std::mem::take(&mut inventory.pools).into_iter().collect();
    retain_identified(&mut pools, "pool", |p| &p.native_id, &mut problems);
    let wrong_system = |owner: &RString| -> Option<(Rule, String)> {
        (owner != system_id.as_str()).then(|| {
            (
                Rule::WrongSystem,
                format!("it names system '{owner}', not '{system_id}'"),
            )
        })
    };
    pools.retain(|p| {
        let broken = if let Some(wrong) = wrong_system(&p.storage_system_id) {
            Some(wrong)
        } else if p.free_capacity_kib > p.total_capacity_kib {
            Some((
                Rule::FreeExceedsTotal,
                format!(
                    "free capacity {} KiB exceeds total capacity {} KiB",
                    p.free_capacity_kib, p.total_capacity_kib
                ),
            ))
        } else {
            capability_problem(&p.capabilities)
        };
        keep_or_report(broken, "pool", &p.native_id, &mut problems)
    });
    inventory.pools = pools.into_iter().collect();

    let mut ports: Vec<_> = std::mem::take(&mut inventory.ports).into_iter().collect();
    retain_identified(&mut ports, "port", |p| &p.native_id, &mut problems);
    ports.retain(|p| {
        let broken = if let Some(wrong) = wrong_system(&p.storage_system_id) {
            Some(wrong)
        } else if p.port_network_id.trim().is_empty() {
            Some((Rule::MissingNetworkId, "it has no port network id".into()))
        } else {
            capability_problem(&p.capabilities)
        };
        keep_or_report(broken, "port", &p.native_id, &mut problems)
    });
    inventory.ports = ports.into_iter().collect();

    let dropped = unidentified(
        &inventory.host_components,
        "host",
        |h| &h.native_id,
        &mut problems,
    );
    if dropped.contains(&true) {
        RArc::make_mut(&mut inventory.host_components).retain(unmarked(dropped));
    }
    problems
}

fn keep_or_report(
    broken: Option<(Rule, String)>,
    object: &'static str,
    native_id: &str,
    problems: &mut Vec<Problem>,
) -> bool {
    match broken {
        Some((rule, message)) => {
            problems.push(problem(object, native_id, rule, message));
            false
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use southbound_sdk::{CapabilityCategory, StoragePool, StoragePort};

    fn pool(id: &str, system: &str, total: u64, free: u64) -> StoragePool {
        StoragePool {
            native_id: id.into(),
            storage_system_id: system.into(),
            total_capacity_kib: total,
            free_capacity_kib: free,
            ..Default::default()
        }
    }

    #[test]
    fn each_rule_drops_only_the_object_that_breaks_it() {
        let defs = vec![CapabilityDefinition::new(
            "tiering",
            CapabilityCategory::DATA_STORAGE,
            &["policy"],
        )];
        let mut good_port = StoragePort {
            native_id: "p1".into(),
            storage_system_id: "S".into(),
            port_network_id: "net".into(),
            ..Default::default()
        };
        good_port
            .capabilities
            .push(CapabilityInstance::new("tiering", "gold").with_property("policy", ["gold"]));
        let mut inv = SystemInventory {
            system: StorageSystem {
                native_id: "S".into(),
                ..Default::default()
            },
            pools: vec![
                pool("a", "S", 10, 5),
                pool("a", "S", 10, 5),
                pool("b", "OTHER", 10, 5),
                pool("c", "S", 10, 11),
                pool("", "S", 1, 1),
            ]
            .into(),
            ports: vec![
                good_port.clone(),
                StoragePort {
                    native_id: "p2".into(),
                    ..good_port.clone()
                }
                .with_network_id(""),
                StoragePort {
                    native_id: "p3".into(),
                    capabilities: vec![CapabilityInstance::new("dedup", "on")].into(),
                    ..good_port.clone()
                },
                StoragePort {
                    native_id: "p4".into(),
                    capabilities: vec![
                        CapabilityInstance::new("tiering", "x").with_property("speed", ["1"])
                    ]
                    .into(),
                    ..good_port
                },
            ]
            .into(),
            host_components: Default::default(),
        };
        let problems = check_inventory(&mut inv, &defs);
        let rules: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.native_id.as_str(), p.rule.name()))
            .collect();
        assert_eq!(
            rules,
            [
                ("a", "duplicate-native-id"),
                ("", "empty-native-id"),
                ("b", "wrong-system"),
                ("c", "free-exceeds-total"),
                ("p2", "missing-network-id"),
                ("p3", "undeclared-capability"),
                ("p4", "undeclared-capability-property"),
            ]
        );
        assert_eq!(inv.pools.len(), 1);
        assert_eq!(inv.ports.len(), 1);
        assert!(problems[3]
            .to_string()
            .contains("free capacity 11 KiB exceeds"));
    }

    #[test]
    fn a_shared_host_list_is_copied_only_when_a_host_must_go() {
        let host = |id: &str| southbound_sdk::StorageHostComponent {
            native_id: id.into(),
            ..Default::default()
        };
        let inventory = |hosts: &RArc<southbound_sdk::RVec<_>>| SystemInventory {
            system: StorageSystem {
                native_id: "S".into(),
                ..Default::default()
            },
            host_components: hosts.clone(),
            ..Default::default()
        };
        // Every system of a provider reports the same hosts: one list.
        let valid = RArc::new(vec![host("h1"), host("h2")].into());
        let mut inv = inventory(&valid);
        assert!(check_inventory(&mut inv, &[]).is_empty());
        assert!(std::ptr::eq(&*inv.host_components, &*valid));

        let broken = RArc::new(vec![host("h1"), host(""), host("h1"), host("h3")].into());
        let mut inv = inventory(&broken);
        let rules: Vec<_> = check_inventory(&mut inv, &[])
            .iter()
            .map(|p| (p.native_id.clone(), p.rule.name()))
            .collect();
        assert_eq!(
            rules,
            [
                ("".to_string(), "empty-native-id"),
                ("h1".to_string(), "duplicate-native-id"),
            ]
        );
        let kept: Vec<_> = inv.host_components.iter().map(|h| &*h.native_id).collect();
        assert_eq!(kept, ["h1", "h3"]);
        // The other holder of the list still has it whole.
        assert_eq!(broken.len(), 4);
    }

    #[test]
    fn scans_drop_undeclared_types_and_duplicates() {
        let system = |id: &str, t: &str| StorageSystem {
            native_id: id.into(),
            system_type: t.into(),
            name: id.into(),
            serial_number: id.into(),
            ..Default::default()
        };
        let unnamed = StorageSystem {
            name: "".into(),
            serial_number: "".into(),
            ..system("3", "x")
        };
        let mut scan = ProviderScan {
            details: Default::default(),
            systems: vec![
                system("1", "x"),
                system("1", "x"),
                system("2", "y"),
                unnamed,
            ]
            .into(),
        };
        let problems = check_scan(&["x".into()], &mut scan);
        assert_eq!(scan.systems.len(), 1);
        assert_eq!(problems.len(), 3);
        assert_eq!(problems[1].rule, Rule::UndeclaredSystemType);
        assert_eq!(problems[2].rule, Rule::MissingSystemField);
        assert!(problems[2].message.contains("name and serial number"));
    }

    trait WithNetworkId {
        fn with_network_id(self, id: &str) -> Self;
    }
    impl WithNetworkId for StoragePort {
        fn with_network_id(mut self, id: &str) -> Self {
            self.port_network_id = id.into();
            self
        }
    }
}
