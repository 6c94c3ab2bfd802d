//! Figures for people, shared by the CLI's tables and the web console.

use southbound_sdk::StorageHostComponent;

/// A capacity in KiB for people: binary units (the figures are KiB-based),
/// the largest one that keeps the number at 1 or more, two decimals.
pub fn capacity(kib: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = kib as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SSZ`; `-` for none.
pub fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A host's initiators for people: `protocol port`, comma-separated.
pub fn initiators(host: &StorageHostComponent) -> String {
    host.initiators
        .iter()
        .map(|i| format!("{} {}", i.protocol, i.port))
        .collect::<Vec<_>>()
        .join(", ")
}
