//! A client of a running host's REST API, for the CLI's client commands.
//!
//! Where the host is: `--server URL` / `SOUTHBOUND_SERVER`, else the URL the
//! host wrote to its data directory. The token: `--token-file FILE`, else
//! `SOUTHBOUND_TOKEN`, else the data directory's token file.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::datadir::{read_token, DataDir};

/// Environment variable holding the token itself.
pub const TOKEN_ENV: &str = "SOUTHBOUND_TOKEN";

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No host URL known.
    #[error("no running host found: {0}")]
    NoServer(String),
    /// No token known.
    #[error("no API token: {0}")]
    NoToken(String),
    /// The host cannot be reached.
    #[error("cannot reach the host at {url}: {error}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        error: String,
    },
    /// The host answered with an error.
    #[error("{error} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The host's message.
        error: String,
    },
    /// The answer is not what this client expects.
    #[error("unexpected answer from the host: {0}")]
    Decode(String),
}

/// A client bound to one host and token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) with `token`.
    pub fn new(base: &str, token: String) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Finds the host and token as the module docs say.
    pub fn discover(
        server: Option<&str>,
        token_file: Option<&Path>,
        data_dir: &DataDir,
    ) -> Result<Self, ClientError> {
        let base = match server {
            Some(url) => url.to_string(),
            None => {
                let file = data_dir.server_file();
                std::fs::read_to_string(&file)
                    .map(|u| u.trim().to_string())
                    .map_err(|_| {
                        ClientError::NoServer(format!(
                            "{} does not exist; start `southbound serve` with this data directory, or give --server URL",
                            file.display()
                        ))
                    })?
            }
        };
        let token = match token_file {
            Some(path) => read_token(path).map_err(|e| ClientError::NoToken(e.to_string()))?,
            None => match std::env::var(TOKEN_ENV) {
                Ok(token) if !token.trim().is_empty() => token.trim().to_string(),
                _ => read_token(&data_dir.token_file()).map_err(|e| {
                    ClientError::NoToken(format!("{e}; give --token-file FILE or set {TOKEN_ENV}"))
                })?,
            },
        };
        Ok(Self::new(&base, token))
    }

    /// The host's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            error: e.to_string(),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            let error = if status == StatusCode::UNAUTHORIZED {
                format!("{error}: the host refused the token")
            } else {
                error
            };
            return Err(ClientError::Api {
                status: status.as_u16(),
                error,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// GET `path` (under the host's base URL).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, None::<&()>).await
    }

    /// POST `body` to `path`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::DELETE, path, None::<&()>).await
    }
}

/// Percent-encodes one path segment (ids, GUIDs with `+`, names with spaces).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
