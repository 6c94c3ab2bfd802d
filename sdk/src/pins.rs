//! What [`StorageProvider::ca_certificate_pem`](crate::StorageProvider::ca_certificate_pem)
//! holds: the operator's TLS pins. PEM certificates (a CA, or the device's
//! own certificate) and/or lines `sha256:<64 hex digits>` (colons allowed),
//! each the SHA-256 of a certificate the device may present. One definition
//! for the host that stores pins and the drivers that apply them.

/// The prefix of a fingerprint line.
pub const FINGERPRINT_PREFIX: &str = "sha256:";

/// Parses a SHA-256 fingerprint as operators write it: 64 hex digits,
/// optionally in colon-separated pairs, with or without the `sha256:` prefix.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let trimmed = text.trim();
    let hex = trimmed
        .get(..FINGERPRINT_PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(FINGERPRINT_PREFIX))
        .map_or(trimmed, |_| &trimmed[FINGERPRINT_PREFIX.len()..]);
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    let bad =
        || format!("'{trimmed}' is not a SHA-256 fingerprint (64 hex digits, colons allowed)");
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The pin line for a fingerprint: `sha256:ab:cd:...`.
pub fn fingerprint_line(fingerprint: &[u8; 32]) -> String {
    let hex: Vec<String> = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
    format!("{FINGERPRINT_PREFIX}{}", hex.join(":"))
}

/// The fingerprints among the pins.
pub fn fingerprints(pins: &str) -> Result<Vec<[u8; 32]>, String> {
    pins.lines()
        .map(str::trim)
        .filter(|l| {
            l.get(..FINGERPRINT_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(FINGERPRINT_PREFIX))
        })
        .map(parse_fingerprint)
        .collect()
}

/// Whether the pins hold a PEM certificate.
pub fn has_certificate(pins: &str) -> bool {
    pins.contains("-----BEGIN CERTIFICATE-----")
}

/// Checks pins: well-formed fingerprints, and at least one pin.
pub fn check(pins: &str) -> Result<(), String> {
    let fingerprints = fingerprints(pins)?;
    if fingerprints.is_empty() && !has_certificate(pins) {
        return Err(
            "holds no PEM certificate (BEGIN CERTIFICATE) and no sha256: fingerprint".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_as_operators_write_them() {
        let hex = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        for text in [
            hex.clone(),
            colons.clone(),
            format!("sha256:{colons}"),
            format!("SHA256:{hex}"),
        ] {
            assert_eq!(parse_fingerprint(&text), Ok([0xab; 32]), "{text}");
        }
        assert_eq!(fingerprint_line(&[0xab; 32]), format!("sha256:{colons}"));
        assert!(parse_fingerprint("sha256:abc").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        let pins = format!(
            "-----BEGIN CERTIFICATE-----\n...\n{}\n",
            fingerprint_line(&[1; 32])
        );
        assert_eq!(fingerprints(&pins), Ok(vec![[1; 32]]));
        assert!(check(&pins).is_ok());
        assert!(check("junk").is_err());
        assert!(check("sha256:12").is_err());
    }
}
