//! Trusting a gateway's certificate: the provider's pins.
//!
//! The provider's `ca_certificate_pem` holds PEM certificates and/or
//! `sha256:<hex>` fingerprint lines ([`southbound_sdk::pins`]). A gateway
//! whose certificate is byte-identical to a pinned one, or whose SHA-256
//! matches a pinned fingerprint, is trusted as that very certificate, as
//! curl, Python requests and PyPowerFlex trust a self-signed certificate
//! with `CA:TRUE` given as `--cacert`. Any other certificate must chain to
//! a pinned certificate as a CA, with its name and validity checked
//! (webpki). Either way the handshake signature is verified with the
//! certificate's key, and an expired certificate is refused.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use southbound_sdk::{DriverError, DriverResult};

/// What the operator pinned.
#[derive(Debug, Default)]
pub struct Pins {
    certificates: Vec<CertificateDer<'static>>,
    fingerprints: Vec<[u8; 32]>,
}

/// `sha256:ab:cd:...`: a certificate's fingerprint as operators pin it.
pub fn fingerprint_text(der: &[u8]) -> String {
    southbound_sdk::pins::fingerprint_line(&sha256(der))
}

fn sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

impl Pins {
    /// Reads PEM certificates and `sha256:` lines.
    pub fn parse(text: &str) -> DriverResult<Self> {
        let mut pins = Self {
            fingerprints: southbound_sdk::pins::fingerprints(text)
                .map_err(|e| DriverError::invalid_input(format!("pinned fingerprint {e}")))?,
            ..Self::default()
        };
        for certificate in CertificateDer::pem_slice_iter(text.as_bytes()) {
            pins.certificates.push(certificate.map_err(|e| {
                DriverError::invalid_input(format!(
                    "the provider's pinned certificate is not valid PEM: {e}"
                ))
            })?);
        }
        if pins.certificates.is_empty() && pins.fingerprints.is_empty() {
            return Err(DriverError::invalid_input(
                "the provider's pinned certificate holds no PEM certificate and no sha256: fingerprint",
            ));
        }
        Ok(pins)
    }

    fn pinned(&self, end_entity: &CertificateDer<'_>) -> bool {
        self.certificates
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
            || self.fingerprints.contains(&sha256(end_entity))
    }

    /// A TLS client configuration that trusts these pins only; the
    /// [`Refusals`] it returns say why the last certificate was refused.
    pub fn client_config(self) -> DriverResult<(rustls::ClientConfig, Refusals)> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        // A pinned certificate that cannot be a trust anchor (a leaf) is
        // still trusted byte for byte.
        roots.add_parsable_certificates(self.certificates.iter().cloned());
        let chain = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| {
                        DriverError::invalid_input(format!(
                            "cannot trust the pinned certificates: {e}"
                        ))
                    })?,
            )
        };
        let refusals = Refusals::default();
        let verifier = PinnedVerifier {
            pins: self,
            chain,
            provider: Arc::clone(&provider),
            refusals: refusals.clone(),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DriverError::internal(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok((config, refusals))
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pins: Pins,
    /// Chain verification to the pinned certificates that can be anchors.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    refusals: Refusals,
}

/// Why the verifier last refused a certificate, in words for operators
/// (the TLS stack's own error only shows it as debug output).
#[derive(Debug, Clone, Default)]
pub struct Refusals(Arc<std::sync::Mutex<Option<String>>>);

impl Refusals {
    /// The last refusal, taken.
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok()?.take()
    }

    fn refuse(&self, message: String) -> Error {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(message);
        }
        Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
    }
}

fn is_expiry(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidCertificate(
            CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
        )
    )
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let fingerprint = fingerprint_text(end_entity);
        let Some(chain) = &self.chain else {
            return if self.pins.pinned(end_entity) {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(self.refusals.refuse(format!(
                    "the gateway's certificate ({fingerprint}) matches no pinned fingerprint"
                )))
            };
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(e) if is_expiry(&e) => Err(self.refusals.refuse(format!(
                "the gateway's certificate ({fingerprint}) is expired or not yet valid ({e}): renew it on the gateway, then pin the new one"
            ))),
            // The very certificate pinned: trusted whatever its constraints
            // (CA:TRUE, no basic constraints, another name).
            Err(_) if self.pins.pinned(end_entity) => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(self.refusals.refuse(format!(
                "the gateway's certificate ({fingerprint}) is not one pinned and does not chain to one: {e}"
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
