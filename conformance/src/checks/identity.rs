//! Loading and identity: the loader's refusals, sorted by which part of the
//! contract they break, and the driver's own description.

use southbound_host::loader::Refusal;
use southbound_host::validation;
use southbound_sdk::SDK_VERSION;

use super::judge;
use crate::suite::{Outcome, Session};

/// The refusal is about the SDK the driver was built against.
fn is_sdk(refusal: &Refusal) -> bool {
    matches!(
        refusal,
        Refusal::AbiHeader
            | Refusal::InvalidSdkVersion { .. }
            | Refusal::SdkIncompatible { .. }
            | Refusal::LayoutMismatch { .. }
            | Refusal::SdkReportMismatch { .. }
    )
}

/// The refusal is about what the driver says of itself.
fn is_info(refusal: &Refusal) -> bool {
    matches!(
        refusal,
        Refusal::DescribeFailed { .. } | Refusal::InvalidInfo { .. }
    )
}

pub async fn loads(s: &mut Session) -> Outcome {
    match &s.refusal {
        None => {
            let info = s.driver.as_ref().map(|d| d.info());
            Outcome::Passed(format!(
                "{} loaded ({} isolation)",
                info.map(|i| format!("{} {}", i.name, i.version))
                    .unwrap_or_default(),
                s.target.isolation
            ))
        }
        Some(r) if is_sdk(r) || is_info(r) => Outcome::Passed("a driver library".into()),
        Some(r) => {
            let rlib = s.target.driver.extension().is_some_and(|e| e == "rlib");
            Outcome::Failed(if rlib {
                format!("{r}: this is a Rust library, not a driver; add `crate-type = [\"cdylib\"]` to the [lib] section of its Cargo.toml and check the .so it builds")
            } else {
                r.to_string()
            })
        }
    }
}

pub async fn sdk_version(s: &mut Session) -> Outcome {
    match (&s.refusal, &s.driver) {
        (Some(r), _) if is_sdk(r) => Outcome::Failed(r.to_string()),
        (Some(r), _) if is_info(r) => Outcome::Passed("the SDK version is accepted".into()),
        (_, Some(d)) => Outcome::Passed(format!(
            "built against southbound-sdk {}; this host speaks {SDK_VERSION}",
            d.info().sdk_version
        )),
        _ => Outcome::Skipped("the file did not load as a driver library".into()),
    }
}

pub async fn info(s: &mut Session) -> Outcome {
    if let Some(r) = &s.refusal {
        return if is_info(r) {
            Outcome::Failed(r.to_string())
        } else {
            Outcome::Skipped("the driver did not load".into())
        };
    }
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    let info = driver.info();
    let types: Vec<&str> = info
        .storage_system_types
        .iter()
        .map(|t| t.as_str())
        .collect();
    if let Some(wanted) = &s.target.system_type {
        if !types.contains(&wanted.as_str()) {
            return Outcome::Failed(format!(
                "the driver does not declare storage system type '{wanted}' (it declares: {})",
                types.join(", ")
            ));
        }
    }
    Outcome::Passed(format!(
        "{} {} by '{}', system types: {}",
        info.name,
        info.version,
        info.vendor,
        types.join(", ")
    ))
}

pub async fn capability_definitions(s: &mut Session) -> Outcome {
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    let mut definitions = driver.info().capability_definitions.to_vec();
    let count = definitions.len();
    let problems = validation::check_definitions(&mut definitions);
    judge(
        problems.iter().map(|p| (String::new(), p)),
        format!("{count} capability definition(s) declared"),
    )
}
