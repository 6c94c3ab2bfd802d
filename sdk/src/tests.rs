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
        host_components: vec![StorageHostComponent {
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

/// Every model type's layout is self-consistent for abi_stable's checker.
#[test]
fn model_layouts_check_against_themselves() {
    macro_rules! check_all {
        ($($t:ty),*) => {$(
            check_layout_compatibility(<$t as StableAbi>::LAYOUT, <$t as StableAbi>::LAYOUT)
                .unwrap_or_else(|e| panic!("{}: {e}", stringify!($t)));
        )*};
    }
    check_all!(
        StorageProvider,
        ProviderDetails,
        ProviderScan,
        StorageSystem,
        StoragePool,
        StoragePort,
        StorageHostComponent,
        Initiator,
        SystemInventory,
        CapabilityDefinition,
        CapabilityInstance,
        CapabilityProperty,
        DriverTask,
        DriverInfo,
        DriverError,
        CallContext,
        Secret,
        TransportType
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
