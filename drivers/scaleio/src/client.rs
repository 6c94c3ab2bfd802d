//! One gateway session: the HTTP client, the login token and the latest
//! inventory snapshot, shared by every call for the same provider.
//!
//! Invariants:
//! - One login serves every call and every discovery cycle; the driver logs
//!   in again only after a 401, once, and then retries the call once. A 401
//!   after that fresh login is an authentication error.
//! - 4.x gateways get the bearer flow (`/rest/auth/login`, refresh on 401);
//!   older ones answer it 404 and get the Basic-token flow (`/api/login`).
//! - Transient failures (502/503/504 without an HTML page, a dropped
//!   connection) are retried twice within the call's deadline, logins
//!   included; everything else maps straight to an error kind.
//! - Passwords and tokens never reach a log line or an error message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use southbound_sdk::{log, CallContext, DriverError, DriverResult, Secret, StorageProvider};
use tokio::sync::Mutex;

use crate::api::{self, Bulk, ErrorBody, Statistics, TokenAnswer};
use crate::tls;

/// How long an inventory snapshot serves later calls of the same cycle.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(60);

/// A system's discovery starts from a snapshot at most this old: the
/// snapshot of the scan that just queued it, or a fresh read when the
/// discovery comes later (a scheduled rediscovery, an operator's request).
pub const DISCOVERY_START_MAX_AGE: Duration = Duration::from_secs(2);
/// Retries after a transient failure.
const TRANSIENT_RETRIES: u32 = 2;
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// What one discovery reads from the gateway: bulk inventory + pool statistics.
#[derive(Debug)]
pub struct Snapshot {
    /// The gateway's API version (`/api/version`).
    pub api_version: String,
    /// Every object.
    pub bulk: Bulk,
    /// Statistics per pool id.
    pub pool_statistics: std::collections::HashMap<String, Statistics>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `/api/login` token, sent as the Basic-auth password.
    Basic(String),
    /// 4.x access token, sent as Bearer, with its refresh token.
    Bearer {
        access: String,
        refresh: Option<String>,
    },
}

#[derive(Debug, Default)]
struct AuthState {
    token: Option<Token>,
    api_version: Option<String>,
    /// Learnt at the first login: the gateway has no bearer flow.
    basic_only: bool,
}

/// A session with one gateway.
pub struct Gateway {
    client: reqwest::Client,
    base_url: String,
    username: String,
    password: Secret,
    /// Why pinned TLS last refused the gateway's certificate.
    tls_refusals: Option<tls::Refusals>,
    auth: Mutex<AuthState>,
    snapshot: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

/// The cache key of a provider's session: where and how to connect, and as whom.
pub fn session_key(provider: &StorageProvider) -> String {
    let pem = provider
        .ca_certificate_pem
        .as_ref()
        .map(|p| p.as_str())
        .unwrap_or("");
    format!(
        "{}|{}|{}|{}|{pem}",
        base_url(provider),
        provider.username,
        provider.use_ssl,
        provider.insecure
    )
}

fn base_url(provider: &StorageProvider) -> String {
    let scheme = if provider.use_ssl { "https" } else { "http" };
    let host = provider.host.as_str();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("{scheme}://{host}:{}", provider.port)
}

impl Gateway {
    /// A session for `provider`; no request is made yet.
    pub fn new(provider: &StorageProvider) -> DriverResult<Self> {
        if provider.host.trim().is_empty() {
            return Err(DriverError::invalid_input("the provider has no host"));
        }
        if provider.port == 0 {
            return Err(DriverError::invalid_input("the provider has no port"));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!(
                "southbound-scaleio-driver/",
                env!("CARGO_PKG_VERSION")
            ));
        let mut tls_refusals = None;
        if provider.use_ssl {
            if provider.insecure {
                log::warn(format!(
                    "TLS verification is OFF for ScaleIO gateway {}: the provider is marked insecure",
                    base_url(provider)
                ));
                builder = builder.danger_accept_invalid_certs(true);
            } else if let Some(pins) = provider.ca_certificate_pem.as_ref().into_option() {
                let (config, refusals) = tls::Pins::parse(pins)?.client_config()?;
                builder = builder.use_preconfigured_tls(config);
                tls_refusals = Some(refusals);
            }
        }
        let client = builder
            .build()
            .map_err(|e| DriverError::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base_url: base_url(provider),
            username: provider.username.to_string(),
            password: provider.password.clone(),
            tls_refusals,
            auth: Mutex::new(AuthState::default()),
            snapshot: Mutex::new(None),
        })
    }

    /// Whether this session was made with `password` (credentials changed otherwise).
    pub fn has_password(&self, password: &Secret) -> bool {
        &self.password == password
    }

    /// The inventory: the latest snapshot when it is younger than
    /// `max_age`, else a fresh read (`Duration::ZERO` always reads). A full
    /// discovery cycle therefore reads the gateway once, whatever the number
    /// of systems.
    pub async fn snapshot(
        &self,
        ctx: &CallContext,
        max_age: Duration,
    ) -> DriverResult<Arc<Snapshot>> {
        let mut cached = self.snapshot.lock().await;
        if let Some((taken, snapshot)) = cached.as_ref() {
            if taken.elapsed() < max_age {
                return Ok(Arc::clone(snapshot));
            }
        }
        let bulk: Bulk = self
            .request(ctx, Method::GET, "/api/instances", None)
            .await?;
        let query = json!({"selectedStatisticsList": [
            {"type": "StoragePool", "allIds": "", "properties": api::POOL_STATISTICS}
        ]});
        let stats: Value = self
            .request(
                ctx,
                Method::POST,
                "/api/instances/querySelectedStatistics",
                Some(&query),
            )
            .await?;
        let pool_statistics = match stats.get("StoragePool") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                DriverError::protocol(format!(
                    "POST /api/instances/querySelectedStatistics: unexpected StoragePool statistics: {e}"
                ))
            })?,
        };
        let api_version = self
            .auth
            .lock()
            .await
            .api_version
            .clone()
            .unwrap_or_default();
        let snapshot = Arc::new(Snapshot {
            api_version,
            bulk,
            pool_statistics,
        });
        *cached = Some((Instant::now(), Arc::clone(&snapshot)));
        Ok(snapshot)
    }

    /// One authenticated request, with the 401 rule above.
    async fn request<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> DriverResult<T> {
        let endpoint = format!("{method} {path}");
        let mut relogged = false;
        loop {
            let token = self.token(ctx).await?;
            let response = self
                .send(ctx, &endpoint, || {
                    Ok(self.authorized(self.builder(ctx, method.clone(), path, body)?, &token))
                })
                .await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                if relogged {
                    return Err(DriverError::authentication(format!(
                        "{endpoint}: the gateway answered 401 right after a fresh login"
                    )));
                }
                self.renew(ctx, &token).await?;
                relogged = true;
                continue;
            }
            return read_json(response, &endpoint).await;
        }
    }

    /// Sends a request, retrying transient failures (a dropped connection;
    /// 502/503/504 without an HTML page) twice within the deadline.
    async fn send(
        &self,
        ctx: &CallContext,
        endpoint: &str,
        make: impl Fn() -> DriverResult<reqwest::RequestBuilder>,
    ) -> DriverResult<reqwest::Response> {
        let mut retries = 0;
        loop {
            let error = match make()?.send().await {
                Ok(response) if !is_transient(&response) => return Ok(response),
                Ok(response) if retries >= TRANSIENT_RETRIES => return Ok(response),
                Ok(response) => format!("answered {}", response.status()),
                Err(e) => {
                    let refusal = self.tls_refusals.as_ref().and_then(tls::Refusals::take);
                    match transport_error(
                        e,
                        endpoint,
                        self.base_url.starts_with("http://"),
                        refusal,
                    ) {
                        Transport::Final(error) => return Err(error),
                        Transport::Transient(error) if retries >= TRANSIENT_RETRIES => {
                            return Err(error)
                        }
                        Transport::Transient(error) => error.to_string(),
                    }
                }
            };
            let backoff = RETRY_BACKOFF * (retries + 1);
            if ctx.remaining() <= backoff {
                return Err(DriverError::timeout(format!(
                    "{endpoint}: {error}, and no time is left to retry (request {})",
                    ctx.request_id
                )));
            }
            retries += 1;
            log::debug(format!(
                "{endpoint}: {error}; retry {retries} of {TRANSIENT_RETRIES}"
            ));
            tokio::time::sleep(backoff).await;
        }
    }

    fn builder(
        &self,
        ctx: &CallContext,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> DriverResult<reqwest::RequestBuilder> {
        let remaining = ctx.remaining();
        if remaining.is_zero() {
            return Err(DriverError::timeout(format!(
                "{method} {path}: the call's deadline passed (request {})",
                ctx.request_id
            )));
        }
        let mut builder = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .timeout(remaining)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            builder = builder.json(body);
        }
        Ok(builder)
    }

    fn authorized(
        &self,
        builder: reqwest::RequestBuilder,
        token: &Token,
    ) -> reqwest::RequestBuilder {
        match token {
            Token::Basic(token) => builder.basic_auth(&self.username, Some(token)),
            Token::Bearer { access, .. } => builder.bearer_auth(access),
        }
    }

    /// The current token, logging in first if there is none.
    async fn token(&self, ctx: &CallContext) -> DriverResult<Token> {
        let mut auth = self.auth.lock().await;
        if let Some(token) = &auth.token {
            return Ok(token.clone());
        }
        self.login(ctx, &mut auth).await
    }

    /// After a 401 with `stale`: refresh (bearer) or log in again, unless
    /// another call already did.
    async fn renew(&self, ctx: &CallContext, stale: &Token) -> DriverResult<()> {
        let mut auth = self.auth.lock().await;
        if auth.token.as_ref() != Some(stale) {
            return Ok(());
        }
        auth.token = None;
        if let Token::Bearer {
            refresh: Some(refresh),
            ..
        } = stale
        {
            let body = json!({"refresh_token": refresh});
            let endpoint = "POST /rest/auth/update-token";
            let sent = self
                .send(ctx, endpoint, || {
                    self.builder(ctx, Method::POST, "/rest/auth/update-token", Some(&body))
                })
                .await;
            if let Ok(response) = sent {
                if response.status().is_success() {
                    if let Ok(answer) = response.json::<TokenAnswer>().await {
                        let token = Token::Bearer {
                            access: answer.access_token,
                            refresh: answer.refresh_token.or_else(|| Some(refresh.clone())),
                        };
                        auth.token = Some(token);
                        return Ok(());
                    }
                }
            }
        }
        self.login(ctx, &mut auth).await.map(|_| ())
    }

    /// Logs in (bearer flow first unless the gateway is known to lack it),
    /// then reads the API version once.
    async fn login(&self, ctx: &CallContext, auth: &mut AuthState) -> DriverResult<Token> {
        let mut token = None;
        if !auth.basic_only {
            let body = json!({"username": self.username, "password": self.password.expose()});
            let response = self
                .send(ctx, "POST /rest/auth/login", || {
                    self.builder(ctx, Method::POST, "/rest/auth/login", Some(&body))
                })
                .await?;
            match response.status() {
                s if s.is_success() => {
                    let answer: TokenAnswer = read_json(response, "POST /rest/auth/login").await?;
                    token = Some(Token::Bearer {
                        access: answer.access_token,
                        refresh: answer.refresh_token,
                    });
                }
                // No bearer flow here (2.x/3.x); the Basic flow decides about the credentials.
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => auth.basic_only = true,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {}
                _ => {
                    return Err(read_json::<Value>(response, "POST /rest/auth/login")
                        .await
                        .err()
                        .unwrap_or_else(|| {
                            DriverError::protocol("POST /rest/auth/login: unexpected answer")
                        }));
                }
            }
        }
        let token = match token {
            Some(token) => token,
            None => {
                let response = self
                    .send(ctx, "GET /api/login", || {
                        Ok(self
                            .builder(ctx, Method::GET, "/api/login", None)?
                            .basic_auth(&self.username, Some(self.password.expose())))
                    })
                    .await?;
                if response.status() == StatusCode::UNAUTHORIZED {
                    return Err(DriverError::authentication(format!(
                        "the gateway {} rejected the credentials of user '{}'",
                        self.base_url, self.username
                    )));
                }
                let quoted: String = read_json(response, "GET /api/login").await?;
                Token::Basic(quoted)
            }
        };
        let response = self
            .send(ctx, "GET /api/version", || {
                Ok(self.authorized(
                    self.builder(ctx, Method::GET, "/api/version", None)?,
                    &token,
                ))
            })
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(DriverError::authentication(
                "GET /api/version: the gateway answered 401 right after a fresh login",
            ));
        }
        let version: String = read_json(response, "GET /api/version").await?;
        log::info(format!(
            "logged in to ScaleIO gateway {} (API {version}) as '{}'",
            self.base_url, self.username
        ));
        auth.api_version = Some(version);
        auth.token = Some(token.clone());
        Ok(token)
    }
}

/// A transport failure: worth retrying, or not.
enum Transport {
    Transient(DriverError),
    Final(DriverError),
}

fn is_html(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("html"))
}

/// 502/503/504 from the gateway itself (an HTML page means a front end in
/// the way, reported as a protocol error instead).
fn is_transient(response: &reqwest::Response) -> bool {
    matches!(
        response.status(),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    ) && !is_html(response)
}

/// Reads a JSON answer, mapping every non-success to its error kind.
async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
    endpoint: &str,
) -> DriverResult<T> {
    let status = response.status();
    let html = is_html(&response);
    let bytes = response.bytes().await.map_err(|e| {
        DriverError::unavailable(format!(
            "{endpoint}: reading the answer failed: {}",
            error_chain(&e)
        ))
    })?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            DriverError::protocol(format!("{endpoint}: malformed JSON in the answer: {e}"))
        });
    }
    if html {
        return Err(DriverError::protocol(format!(
            "{endpoint}: the gateway answered {status} with an HTML page instead of JSON"
        )));
    }
    let error: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
    let message = format!(
        "{endpoint}: {status}: {}",
        error.message.as_deref().unwrap_or("no error message")
    );
    Err(match (status, error.error_code) {
        // ScaleIO reports a missing object as a 500 with errorCode 3.
        (StatusCode::INTERNAL_SERVER_ERROR, Some(3))
        | (StatusCode::NOT_FOUND | StatusCode::GONE, _) => DriverError::not_found(message),
        (StatusCode::UNAUTHORIZED, _) => DriverError::authentication(message),
        (StatusCode::FORBIDDEN, _) => DriverError::permission(message),
        (s, _) if s.is_server_error() => DriverError::unavailable(message),
        _ => DriverError::protocol(message),
    })
}

/// Maps a transport error: untrusted certificate, TLS spoken to a plain-HTTP
/// client, deadline, or a transient failure.
fn transport_error(
    error: reqwest::Error,
    endpoint: &str,
    plain_http: bool,
    tls_refusal: Option<String>,
) -> Transport {
    if let Some(refusal) = tls_refusal {
        return Transport::Final(DriverError::authentication(format!(
            "{endpoint}: {refusal}; pin the gateway's certificate or its CA (--ca-cert), or its SHA-256 fingerprint (--cert-sha256), once checked out of band"
        )));
    }
    let chain = error_chain(&error);
    // A TLS server answers plain HTTP with a TLS record, which HTTP parsing
    // reads as a bad version line.
    if plain_http && chain.contains("invalid HTTP version") {
        return Transport::Final(DriverError::unavailable(format!(
            "{endpoint}: the gateway does not answer plain HTTP; it speaks TLS (HTTPS): connect with TLS (drop --no-ssl, or set use_ssl)"
        )));
    }
    if chain.contains("certificate") || chain.contains("UnknownIssuer") {
        return Transport::Final(DriverError::authentication(format!(
            "{endpoint}: the gateway's TLS certificate is not trusted ({chain}); pin the gateway's certificate or its CA (--ca-cert), or its SHA-256 fingerprint (--cert-sha256)"
        )));
    }
    if error.is_timeout() {
        return Transport::Final(DriverError::timeout(format!(
            "{endpoint}: no answer before the deadline"
        )));
    }
    Transport::Transient(DriverError::unavailable(format!("{endpoint}: {chain}")))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
