//! Operator input and its rules, defined once for every client (REST API,
//! CLI through the API, web form).

use serde::Deserialize;
use southbound_sdk::Secret;
use utoipa::ToSchema;

use super::ServiceError;
use crate::store::NewProvider;

/// Registration of a storage provider.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    /// Storage system type (picks the driver), e.g. `scaleio`.
    #[serde(rename = "type")]
    pub system_type: String,
    /// Management address (host name or IP).
    pub host: String,
    /// Management port; default 443.
    #[serde(default)]
    pub port: Option<u16>,
    /// User name.
    pub username: String,
    /// Password; stored sealed, never returned.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
    /// Display name; default `host:port`.
    #[serde(default)]
    pub name: Option<String>,
    /// Use TLS; default true.
    #[serde(default)]
    pub use_ssl: Option<bool>,
    /// TLS pins: PEM certificates (a CA, or the gateway's own certificate)
    /// and/or `sha256:<hex>` lines, each a certificate's SHA-256 fingerprint.
    #[serde(default)]
    pub ca_certificate_pem: Option<String>,
    /// Skip TLS verification (never together with a pinned certificate).
    #[serde(default)]
    pub insecure: bool,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        field,
        message: message.into(),
    }
}

impl ProviderRequest {
    /// Checks every field; `served_types` are the types a loaded driver serves.
    pub fn validate(self, served_types: &[String]) -> Result<NewProvider, ServiceError> {
        let system_type = self.system_type.trim().to_string();
        if system_type.is_empty() {
            return Err(invalid("type", "must not be empty"));
        }
        if !served_types.contains(&system_type) {
            return Err(invalid(
                "type",
                format!(
                    "no driver serves storage system type '{system_type}' (served: {})",
                    if served_types.is_empty() {
                        "none".to_string()
                    } else {
                        served_types.join(", ")
                    }
                ),
            ));
        }
        let host = self.host.trim().to_string();
        if host.is_empty() || host.len() > 253 || host.chars().any(char::is_whitespace) {
            return Err(invalid(
                "host",
                "must be a host name or address, without spaces",
            ));
        }
        let port = self.port.unwrap_or(443);
        if port == 0 {
            return Err(invalid("port", "must be between 1 and 65535"));
        }
        if self.username.trim().is_empty() {
            return Err(invalid("username", "must not be empty"));
        }
        if self.password.is_empty() {
            return Err(invalid("password", "must not be empty"));
        }
        let name = self
            .name
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| format!("{host}:{port}"));
        if name.is_empty() || name.len() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        let use_ssl = self.use_ssl.unwrap_or(true);
        let ca_certificate_pem = self.ca_certificate_pem.filter(|p| !p.trim().is_empty());
        if let Some(pem) = &ca_certificate_pem {
            southbound_sdk::pins::check(pem).map_err(|e| invalid("ca_certificate_pem", e))?;
            if !use_ssl {
                return Err(invalid(
                    "ca_certificate_pem",
                    "a pinned certificate needs use_ssl",
                ));
            }
        }
        if self.insecure && ca_certificate_pem.is_some() {
            return Err(invalid(
                "insecure",
                "cannot be combined with a pinned certificate",
            ));
        }
        Ok(NewProvider {
            name,
            system_type,
            host,
            port,
            username: self.username.trim().to_string(),
            password: self.password,
            use_ssl,
            ca_certificate_pem,
            insecure: self.insecure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ProviderRequest {
        serde_json::from_value(serde_json::json!({
            "type": "scaleio", "host": "10.0.0.1", "username": "admin", "password": "pw"
        }))
        .unwrap()
    }

    #[test]
    fn rules_name_the_field() {
        let served = vec!["scaleio".to_string()];
        let ok = request().validate(&served).unwrap();
        assert_eq!(
            (ok.port, ok.use_ssl, ok.name.as_str()),
            (443, true, "10.0.0.1:443")
        );
        let field = |r: ProviderRequest| match r.validate(&served) {
            Err(ServiceError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(ProviderRequest {
                system_type: "x".into(),
                ..request()
            }),
            "type"
        );
        assert_eq!(
            field(ProviderRequest {
                host: "a b".into(),
                ..request()
            }),
            "host"
        );
        assert_eq!(
            field(ProviderRequest {
                port: Some(0),
                ..request()
            }),
            "port"
        );
        assert_eq!(
            field(ProviderRequest {
                password: Secret::default(),
                ..request()
            }),
            "password"
        );
        assert_eq!(
            field(ProviderRequest {
                ca_certificate_pem: Some("junk".into()),
                ..request()
            }),
            "ca_certificate_pem"
        );
        assert!(
            serde_json::from_value::<ProviderRequest>(serde_json::json!({
                "type": "scaleio", "host": "h", "username": "u", "password": "p", "pasword": "typo"
            }))
            .is_err()
        );
    }
}
