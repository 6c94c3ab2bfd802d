//! Provider passwords sealed at rest: ChaCha20-Poly1305 (an AEAD) with a
//! 256-bit key from `SOUTHBOUND_SECRET_KEY` (base64) or a `secret.key` file
//! (mode 0600) in the data directory, created on first start.
//!
//! A sealed value is `v1:` + base64(nonce || ciphertext || tag). The provider
//! id is the associated data, so a sealed password copied onto another
//! provider row does not open.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use southbound_sdk::Secret;

/// Environment variable holding the key (base64 of 32 bytes).
pub const SECRET_KEY_ENV: &str = "SOUTHBOUND_SECRET_KEY";
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// What can go wrong with the key or a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key is not 32 bytes of base64.
    #[error("the secret key ({0}) is not 32 bytes of base64")]
    BadKey(String),
    /// The key file cannot be read or created.
    #[error("cannot use the secret key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A sealed value does not open with this key.
    #[error("a sealed credential cannot be opened: wrong secret key, or the value was altered")]
    Unseal,
}

/// Seals and opens credentials with one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// A sealer with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// The key from `SOUTHBOUND_SECRET_KEY` if set, else from `key_file`,
    /// which is created (0600, random key) when missing.
    pub fn from_env_or_file(key_file: &Path) -> Result<Self, SecretError> {
        if let Ok(text) = std::env::var(SECRET_KEY_ENV) {
            return Self::from_base64(&text, SECRET_KEY_ENV);
        }
        let file_error = |source| SecretError::KeyFile {
            path: key_file.display().to_string(),
            source,
        };
        if !key_file.exists() {
            let key = ChaCha20Poly1305::generate_key(&mut OsRng);
            crate::datadir::write_private(key_file, BASE64.encode(key).as_bytes())
                .map_err(file_error)?;
        }
        let text = std::fs::read_to_string(key_file).map_err(file_error)?;
        Self::from_base64(&text, &key_file.display().to_string())
    }

    fn from_base64(text: &str, origin: &str) -> Result<Self, SecretError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey(origin.into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretError::BadKey(origin.into()))?;
        Ok(Self::new(&key))
    }

    /// Seals `secret`, bound to `context` (the owning row's id).
    pub fn seal(&self, secret: &Secret, context: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: secret.expose().as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption with a valid key and nonce cannot fail for in-memory data.
        let sealed = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{PREFIX}{}", BASE64.encode(out))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret, SecretError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| BASE64.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(SecretError::Unseal)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unseal)?;
        let text = String::from_utf8(plain).map_err(|_| SecretError::Unseal)?;
        Ok(Secret::new(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_same_key_and_context() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(&Secret::new("Scaleio123"), "prov-1");
        assert!(!sealed.contains("Scaleio123"));
        assert_eq!(
            sealer.open(&sealed, "prov-1").unwrap().expose(),
            "Scaleio123"
        );
        assert!(sealer.open(&sealed, "prov-2").is_err());
        assert!(Sealer::new(&[8; 32]).open(&sealed, "prov-1").is_err());
        assert!(sealer.open("v1:AAAA", "prov-1").is_err());
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(sealed, sealer.seal(&Secret::new("Scaleio123"), "prov-1"));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = Sealer::from_env_or_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = first.seal(&Secret::new("pw"), "x");
        let second = Sealer::from_env_or_file(&path).unwrap();
        assert_eq!(second.open(&sealed, "x").unwrap().expose(), "pw");
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            Sealer::from_env_or_file(&path),
            Err(SecretError::BadKey(_))
        ));
    }
}
