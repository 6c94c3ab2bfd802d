//! Serde round trips, ABI layout checks and the small rules of the model.

use std::fmt::Debug;

use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::std_types::ROption;
use abi_stable::StableAbi;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::*;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> serde_json::Value {
    let json = serde_json::to_value(value).expect("serialize");
    let back: T = serde_json::from_value(json.clone()).expect("deserialize");
    assert_eq!(&back, value, "round trip through {json}");
    json
}

fn sample_pool() -> StoragePool {
    StoragePool {
        native_id: "pool-1".into(),
        storage_system_id: "sys-1".into(),
        name: "gold".into(),
        total_capacity_kib: 1 << 40,
        free_capacity_kib: 1 << 39,
        subscribed_capacity_kib: 3 << 39,
        supported_drive_types: vec![DriveType::SSD, DriveType::NL_SAS].into(),
        resource_type: ResourceType::THIN,
        protocols: vec![Protocol::SCALEIO].into(),
        operational_status: PoolOperationalStatus::NOT_READY,
        minimum_thin_volume_size_kib: ROption::RSome(8 << 20),
        maximum_thin_volume_size_kib: ROption::RNone,
        minimum_thick_volume_size_kib: ROption::RSome(8 << 20),
        maximum_thick_volume_size_kib: ROption::RSome(1 << 40),
        capabilities: vec![CapabilityInstance::new("autoTieringPolicy", "gold-policy")
            .with_property("POLICY_ID", ["gold-policy"])
            .with_property("PROVISIONING_TYPE", ["ThinlyProvisioned", "All"])]
        .into(),
    }
}

fn sample_inventory() -> SystemInventory {
    SystemInventory {
        system: StorageSystem {
            native_id: "pd-1".into(),
            system_type: "scaleio".into(),
            name: "domain1".into(),
            serial_number: "abc".into(),
            model: "PowerFlex".into(),
            firmware_version: "3.6".into(),
            port_number: ROption::RSome(443),
            protocols: vec![Protocol::SCALEIO].into(),
            is_supported_version: true,
            provisioning_type: ResourceType::THIN_AND_THICK,
            ..StorageSystem::default()
        },
        pools: vec![sample_pool()].into(),
        ports: vec![StoragePort {
            native_id: "sds-1".into(),
            port_network_id: "sds-1".into(),
            transport_type: TransportType::SCALEIO,
            tcp_port: ROption::RSome(7072),
            operational_status: OperationalStatus::OK,
            port_type: PortType::FRONTEND,
            ha_zone: "fs-1".into(),
            ..StoragePort::default()
        }]
        .into(),
        host_components: RArc::new(
            vec![StorageHostComponent {
                native_id: "GUID-1".into(),
                host_name: "10.0.0.5".into(),
                os_type: HostOsType::LINUX,
                initiators: vec![Initiator {
                    port: "sdc-1".into(),
                    protocol: InitiatorProtocol::SCALEIO,
                    ..Initiator::default()
                }]
                .into(),
                ..StorageHostComponent::default()
            }]
            .into(),
        ),
    }
}

#[test]
fn model_types_round_trip_through_json() {
    let inventory = round_trip(&sample_inventory());
    assert_eq!(inventory["pools"][0]["resource_type"], "THIN");
    assert_eq!(
        inventory["pools"][0]["supported_drive_types"],
        serde_json::json!(["SSD", "NL_SAS"])
    );
    assert_eq!(
        inventory["pools"][0]["maximum_thin_volume_size_kib"],
        serde_json::Value::Null
    );
    assert_eq!(
        inventory["pools"][0]["capabilities"][0]["properties"],
        serde_json::json!({"POLICY_ID": ["gold-policy"], "PROVISIONING_TYPE": ["ThinlyProvisioned", "All"]})
    );
    assert_eq!(inventory["ports"][0]["transport_type"], "ScaleIO");
    assert_eq!(
        inventory["host_components"][0]["initiators"][0]["protocol"],
        "ScaleIO"
    );

    let provider = StorageProvider {
        host: "gw".into(),
        port: 443,
        username: "admin".into(),
        password: Secret::new("pa55"),
        use_ssl: true,
        ca_certificate_pem: ROption::RSome("-----BEGIN CERTIFICATE-----".into()),
        insecure: false,
        provider_type: "scaleioapi".into(),
        details: ProviderDetails {
            provider_version: "3.6".into(),
            manufacturer: "Dell".into(),
            description: "gateway".into(),
            is_supported_version: true,
        },
    };
    round_trip(&provider);
    round_trip(&ProviderScan {
        details: provider.details.clone(),
        systems: vec![sample_inventory().system].into(),
    });
    round_trip(
        &DriverInfo::new("d", "1.2.3-beta.1", "v")
            .with_system_type("t")
            .with_provider_type("p")
            .with_capability(CapabilityDefinition::new(
                "x",
                CapabilityCategory::STORAGE_PROTECTION,
                &["A", "B"],
            )),
    );
    round_trip(&DriverTask {
        task_id: "t-1".into(),
        status: TaskStatus::PARTIALLY_FAILED,
        progress: 50,
        message: "half".into(),
        start_time_ms: ROption::RSome(1),
        end_time_ms: ROption::RNone,
    });
    let error = round_trip(&DriverError::timeout("slow"));
    assert_eq!(
        error,
        serde_json::json!({"kind": "timeout", "message": "slow", "retryable": true})
    );
    round_trip(&CallContext::with_timeout(
        "r-1",
        std::time::Duration::from_secs(5),
    ));
}

#[test]
fn missing_fields_take_defaults() {
    let port: StoragePort =
        serde_json::from_str(r#"{"native_id": "p", "port_network_id": "n"}"#).unwrap();
    assert_eq!(port.operational_status, OperationalStatus::UNKNOWN);
    assert_eq!(port.port_type, PortType::FRONTEND);
    assert_eq!(port.tcp_port, ROption::RNone);
}

#[test]
fn open_enums_carry_unknown_codes_and_parse_names() {
    let future = TransportType::from_code(77);
    assert!(!future.is_known());
    assert_eq!(future.to_string(), "unknown(77)");
    assert_eq!(serde_json::to_value(future).unwrap(), serde_json::json!(77));
    let back: TransportType = serde_json::from_value(serde_json::json!(77)).unwrap();
    assert_eq!(back, future);

    assert_eq!(
        "scaleio".parse::<TransportType>().unwrap(),
        TransportType::SCALEIO
    );
    assert_eq!(
        "thin_and_thick".parse::<ResourceType>().unwrap(),
        ResourceType::THIN_AND_THICK
    );
    let err = "tape".parse::<DriveType>().unwrap_err();
    assert_eq!(err.to_string(), "'tape' is not a known DriveType");
    assert!(serde_json::from_str::<DriveType>("\"tape\"").is_err());
    assert_eq!(format!("{:?}", TaskStatus::READY), "TaskStatus::READY");
    for status in TaskStatus::KNOWN {
        assert_eq!(
            status.is_terminal(),
            !matches!(*status, TaskStatus::QUEUED | TaskStatus::PROVISIONING)
        );
    }
    assert!(TaskStatus::READY.is_success() && !TaskStatus::WARNING.is_success());
}

#[test]
fn error_kinds_are_complete_and_retryable_by_default_only_when_transient() {
    let names: Vec<&str> = ErrorKind::KNOWN.iter().filter_map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "authentication",
            "permission",
            "not_found",
            "unavailable",
            "timeout",
            "invalid_input",
            "unsupported",
            "protocol",
            "internal",
            "panicked"
        ]
    );
    assert!(DriverError::unavailable("x").retryable);
    assert!(!DriverError::authentication("x").retryable);
    assert!(DriverError::protocol("x").with_retryable(true).retryable);
    assert_eq!(
        DriverError::not_found("pool 7").to_string(),
        "not_found: pool 7"
    );
}

#[test]
fn secrets_never_print() {
    let provider = StorageProvider {
        password: Secret::new("hunter2"),
        ..StorageProvider::default()
    };
    let debug = format!("{provider:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("password: ***"),
        "{debug}"
    );
    assert_eq!(format!("{}", provider.password), "***");
    assert_eq!(provider.password.expose(), "hunter2");
}

#[test]
fn driver_info_validation() {
    let ok = DriverInfo::new("d", "0.1.0", "v").with_system_type("t");
    assert_eq!(ok.sdk_version, SDK_VERSION);
    assert!(ok.validate().is_ok());
    assert!(DriverInfo::new("d", "one", "v")
        .with_system_type("t")
        .validate()
        .unwrap_err()
        .contains("not semver"));
    assert!(DriverInfo::new("d", "1.0.0", "v")
        .validate()
        .unwrap_err()
        .contains("no storage system type"));
    assert!(DriverInfo::new(" ", "1.0.0", "v")
        .with_system_type("t")
        .validate()
        .is_err());
    let twice = ok
        .clone()
        .with_capability(CapabilityDefinition::new(
            "a",
            CapabilityCategory::DATA_STORAGE,
            &[],
        ))
        .with_capability(CapabilityDefinition::new(
            "a",
            CapabilityCategory::DATA_STORAGE,
            &[],
        ));
    assert!(twice
        .validate()
        .unwrap_err()
        .contains("'a' is declared twice"));
}

#[test]
fn sdk_version_rule() {
    assert!(sdk_compatibility("0.1.0", "0.1.0").is_ok());
    assert!(
        sdk_compatibility("0.1.9", "0.1.0").is_ok(),
        "0.y: patch differences pass"
    );
    assert!(sdk_compatibility("0.1.0", "0.1.9").is_ok());
    let err = sdk_compatibility("0.2.0", "0.1.3").unwrap_err();
    assert_eq!(
        err.to_string(),
        "built for southbound-sdk 0.2.0; this host runs southbound-sdk 0.1.3 and accepts 0.1.x"
    );
    assert!(
        sdk_compatibility("1.2.0", "1.3.0").is_ok(),
        "older minor: prefix types fill the gaps"
    );
    assert!(
        sdk_compatibility("1.4.0", "1.3.0").is_err(),
        "newer minor than the host knows"
    );
    assert!(sdk_compatibility("2.0.0", "1.3.0").is_err());
    assert!(matches!(
        sdk_compatibility("x", "1.0.0"),
        Err(SdkMismatch::Unparsable(_))
    ));
}

/// Every type reachable from the root module the host loads (the driver
/// trait's methods, their parameters and results, recursively), one line
/// per type with its size, alignment, kind, repr and fields: what
/// abi_stable compares when the host loads a driver.
fn abi_layouts() -> String {
    use abi_stable::type_layout::TypeLayout;
    let mut seen = std::collections::HashSet::new();
    let mut described: Vec<String> = Vec::new();
    let mut pending: Vec<&'static TypeLayout> =
        vec![<crate::abi::DriverModRef as StableAbi>::LAYOUT];
    while let Some(layout) = pending.pop() {
        if !seen.insert(layout.get_utypeid()) {
            continue;
        }
        let referenced: Vec<&'static TypeLayout> = layout
            .shared_vars()
            .type_layouts()
            .iter()
            .map(|get| get())
            .collect();
        // Generic containers (RVec<T>) print without their parameters: name
        // the types each one refers to, so a changed parameter shows.
        let mut text = format!(
            "{}: size {} align {} {:?} {:?} refers to [{}]",
            layout.full_type(),
            layout.size(),
            layout.alignment(),
            layout.data_discriminant(),
            layout.repr_attr(),
            referenced
                .iter()
                .map(|r| r.full_type().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(fields) = layout.get_fields() {
            for field in fields.iter() {
                text.push_str(&format!(
                    "\n    {}: {}",
                    field.name(),
                    field.layout().full_type()
                ));
            }
        }
        described.push(text);
        pending.extend(referenced);
    }
    described.sort();
    described.push(String::new());
    described.join("\n")
}

/// The ABI guard: the layouts of this SDK version, frozen in
/// `sdk/abi/<major.minor>.txt` when the version was released, must not
/// change while the version stays (every driver built against it would be
/// refused). An intended change bumps the SDK version, then freezes the new
/// layouts: `SOUTHBOUND_FREEZE_ABI=1 cargo test -p southbound-sdk abi_layouts`.
#[test]
fn abi_layouts_match_the_frozen_layouts_of_this_sdk_version() {
    let version = semver::Version::parse(SDK_VERSION).expect("SDK version");
    let frozen_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("abi")
        .join(format!("{}.{}.txt", version.major, version.minor));
    let now = abi_layouts();
    if std::env::var_os("SOUTHBOUND_FREEZE_ABI").is_some() {
        std::fs::create_dir_all(frozen_file.parent().expect("abi dir")).expect("abi dir");
        std::fs::write(&frozen_file, &now).expect("freeze the layouts");
    }
    let frozen = std::fs::read_to_string(&frozen_file).unwrap_or_else(|e| {
        panic!(
            "no frozen layouts for SDK {}.{} ({}: {e}); freeze them with SOUTHBOUND_FREEZE_ABI=1",
            version.major,
            version.minor,
            frozen_file.display()
        )
    });
    if let Some((line, (was, is))) = frozen
        .lines()
        .zip(now.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "the ABI of southbound-sdk {SDK_VERSION} changed (line {}: frozen '{was}', now '{is}'): every driver built against it would be refused. Bump the SDK version and freeze the new layouts (SOUTHBOUND_FREEZE_ABI=1)",
            line + 1
        );
    }
    assert_eq!(
        frozen.lines().count(),
        now.lines().count(),
        "the ABI of southbound-sdk {SDK_VERSION} changed: types were added or removed"
    );
}

/// The checker the host runs at load time catches a driver built against a
/// model whose layout differs, even under the same type name.
#[test]
fn a_changed_layout_is_refused() {
    mod changed {
        use abi_stable::std_types::RString;
        use abi_stable::StableAbi;

        /// `CapabilityProperty` as a hypothetical driver would see it, with
        /// one field type changed.
        #[repr(C)]
        #[derive(StableAbi)]
        pub struct CapabilityProperty {
            pub name: RString,
            pub values: RString,
        }

        /// `CapabilityProperty` with the same fields: accepted.
        #[repr(C)]
        #[derive(StableAbi)]
        pub struct Same {
            pub name: RString,
            pub values: abi_stable::std_types::RVec<RString>,
        }
    }
    let err = check_layout_compatibility(
        <CapabilityProperty as StableAbi>::LAYOUT,
        <changed::CapabilityProperty as StableAbi>::LAYOUT,
    )
    .unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(
        check_layout_compatibility(
            <CapabilityProperty as StableAbi>::LAYOUT,
            <changed::Same as StableAbi>::LAYOUT
        )
        .is_err(),
        "a differently named type is refused too"
    );
}

/// The vendor guide's field reference lists every field of every model type,
/// in order: a field added or renamed without its row fails here.
#[test]
fn the_field_reference_lists_every_field() {
    let guide = include_str!("../README.md");
    macro_rules! check_types {
        ($($t:ident),*) => {$({
            let heading = format!("### `{}`", stringify!($t));
            let section = guide
                .split(&heading)
                .nth(1)
                .unwrap_or_else(|| panic!("the guide has no '{heading}' section"));
            let section = section.split("\n### ").next().unwrap_or_default();
            let rows: Vec<&str> = section
                .lines()
                .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
                .collect();
            let fields: Vec<&str> = <$t as StableAbi>::LAYOUT
                .get_fields()
                .expect("a struct")
                .iter()
                .map(|f| f.name())
                .collect();
            assert_eq!(rows, fields, "the guide's table of {}", stringify!($t));
        })*};
    }
    check_types!(
        DriverInfo,
        StorageProvider,
        ProviderScan,
        ProviderDetails,
        StorageSystem,
        StoragePool,
        StoragePort,
        StorageHostComponent,
        Initiator,
        CapabilityDefinition,
        CapabilityInstance,
        CapabilityProperty
    );
}

/// hello-driver is the guide's example: it needs no dependency the guide
/// says a driver does not need.
#[test]
fn hello_driver_has_no_dependency_the_guide_calls_unneeded() {
    let manifest = include_str!("../../examples/hello-driver/Cargo.toml");
    for unneeded in ["abi_stable", "abi-stable", "async-trait"] {
        assert!(
            !manifest.contains(unneeded),
            "examples/hello-driver depends on {unneeded}"
        );
    }
}
