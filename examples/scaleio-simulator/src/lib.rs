//! # scaleio-simulator
//!
//! A ScaleIO / PowerFlex gateway that speaks the real REST API (the parts a
//! discovery client uses), for the demo, tests and benchmarks. Start it
//! in-process with [`Simulator::start`], or as the `scaleio-sim` binary.
//!
//! - `api`: the real API (`/api/...`, and `/rest/auth/...` on 4.x).
//! - `control`: the simulator's own API under `/sim/` (topology changes,
//!   fault injection, request counters).
//! - `topology`, `stats`, `render`: the objects, their statistics and their
//!   JSON per API version.

mod api;
pub mod auth;
mod control;
pub mod faults;
pub mod render;
pub mod stats;
pub mod topology;
pub mod version;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::rustls;

pub use auth::SessionLimits;
pub use faults::Faults;
pub use topology::{Inventory, TopologySpec};
pub use version::ApiVersion;

/// Default gateway user name.
pub const DEFAULT_USERNAME: &str = "admin";
/// Default gateway password.
pub const DEFAULT_PASSWORD: &str = "Scaleio123";

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS with a self-signed certificate (the default) or plain HTTP.
    pub tls: bool,
    /// The certificate (PEM chain, leaf first) and PKCS#8 key (PEM) to serve;
    /// `None` makes a fresh self-signed one for localhost and 127.0.0.1.
    pub identity: Option<TlsIdentity>,
    /// API version to speak.
    pub api_version: ApiVersion,
    /// Gateway user name.
    pub username: String,
    /// Gateway password.
    pub password: String,
    /// Token lifetimes and the session cap.
    pub sessions: SessionLimits,
    /// The objects to serve.
    pub topology: TopologySpec,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            identity: None,
            api_version: ApiVersion::V3_6,
            username: DEFAULT_USERNAME.into(),
            password: DEFAULT_PASSWORD.into(),
            sessions: SessionLimits {
                idle_timeout: Duration::from_secs(600),
                lifetime: Duration::from_secs(8 * 3600),
                max_sessions: 128,
            },
            topology: TopologySpec::small(),
        }
    }
}

/// Request counters, as `GET /sim/stats` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Requests to the real API (the control API is not counted).
    pub requests_total: u64,
    /// Per `"<METHOD> <path>"`.
    pub requests: BTreeMap<String, u64>,
    /// Successful logins (both flows).
    pub logins: u64,
    /// Sessions alive now.
    pub live_sessions: u64,
}

/// Shared state behind every handler.
pub struct SimState {
    config: SimConfig,
    inventory: RwLock<Inventory>,
    /// Bumped whenever the inventory may change (under its write lock).
    inventory_generation: AtomicU64,
    /// `GET /api/instances` as last rendered, with the generation it shows.
    bulk_cache: Mutex<Option<(u64, Bytes)>>,
    sessions: Mutex<auth::Sessions>,
    faults: Mutex<faults::FaultState>,
    counters: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not wedge the simulator.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SimState {
    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Reads the inventory.
    pub fn inventory(&self) -> RwLockReadGuard<'_, Inventory> {
        self.inventory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the inventory.
    pub fn inventory_mut(&self) -> RwLockWriteGuard<'_, Inventory> {
        let guard = self
            .inventory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bumped while the write lock is held, so a reader that reads the
        // generation under its read lock sees the one its inventory shows.
        self.inventory_generation.fetch_add(1, Ordering::Relaxed);
        guard
    }

    /// The body of `GET /api/instances`, rendered once per inventory
    /// change: a real gateway answers from its in-memory model, and
    /// re-rendering 10 MB of JSON per request would make the simulator,
    /// not the driver, dominate what a discovery costs.
    pub fn bulk_body(&self) -> Bytes {
        let inventory = self.inventory();
        let generation = self.inventory_generation.load(Ordering::Relaxed);
        if let Some((cached, body)) = lock(&self.bulk_cache).as_ref() {
            if *cached == generation {
                return body.clone();
            }
        }
        let body = Bytes::from(
            serde_json::to_vec(&render::bulk(&inventory, self.config.api_version))
                .unwrap_or_default(),
        );
        *lock(&self.bulk_cache) = Some((generation, body.clone()));
        body
    }

    fn sessions(&self) -> MutexGuard<'_, auth::Sessions> {
        lock(&self.sessions)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let requests = lock(&self.counters).clone();
        let mut sessions = self.sessions();
        Stats {
            requests_total: requests.values().sum(),
            requests,
            logins: sessions.logins(),
            live_sessions: sessions.live(&self.config.sessions) as u64,
        }
    }

    /// Zeroes the request and login counters.
    pub fn reset_stats(&self) {
        lock(&self.counters).clear();
        self.sessions().reset_logins();
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        lock(&self.faults).set(faults);
        Ok(())
    }

    /// Ends every session now.
    pub fn expire_tokens(&self) {
        self.sessions().expire_all();
    }

    fn count(&self, key: String) {
        *lock(&self.counters).entry(key).or_insert(0) += 1;
    }
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    cert_pem: Option<String>,
    state: Arc<SimState>,
    server: tokio::task::JoinHandle<()>,
}

/// A simulator that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    /// The certificate could not be made.
    #[error("cannot create the TLS certificate: {0}")]
    Certificate(String),
    /// The address cannot be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Per-connection handle that lets a fault close the connection.
#[derive(Clone)]
pub(crate) struct ConnectionKill(pub Arc<Notify>);

impl Simulator {
    /// Builds the topology, binds, and serves in the background on the
    /// current tokio runtime.
    pub async fn start(config: SimConfig) -> Result<Self, StartError> {
        let inventory = Inventory::generate(&config.topology)?;
        let (acceptor, cert_pem) = if config.tls {
            let (acceptor, pem) = tls_acceptor(config.identity.as_ref())?;
            (Some(acceptor), Some(pem))
        } else {
            (None, None)
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let state = Arc::new(SimState {
            config,
            inventory: RwLock::new(inventory),
            inventory_generation: AtomicU64::new(0),
            bulk_cache: Mutex::new(None),
            sessions: Mutex::new(auth::Sessions::default()),
            faults: Mutex::new(faults::FaultState::default()),
            counters: Mutex::new(BTreeMap::new()),
        });
        let router = api::router(Arc::clone(&state)).merge(control::router(Arc::clone(&state)));
        let server = tokio::spawn(accept_loop(listener, acceptor, router));
        tracing::info!(%addr, tls = cert_pem.is_some(), version = %state.config.api_version, "ScaleIO simulator listening");
        Ok(Self {
            addr,
            cert_pem,
            state,
            server,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>` (or `http://`).
    pub fn base_url(&self) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The self-signed certificate (PEM) a client can pin; `None` for plain HTTP.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Shared state: inventory, counters, faults.
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        self.server.abort();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A certificate and key for the simulator to serve (tests of how drivers
/// trust gateways use their own).
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// PEM certificates, the leaf first.
    pub cert_pem: String,
    /// The leaf's PKCS#8 private key, PEM.
    pub key_pem: String,
}

fn tls_acceptor(
    identity: Option<&TlsIdentity>,
) -> Result<(tokio_rustls::TlsAcceptor, String), StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| StartError::Certificate(e.to_string());
    let (chain, key, pem) = match identity {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&e))?;
            let key =
                PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|e| bad(&e))?;
            (chain, key, identity.cert_pem.clone())
        }
        None => {
            let names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            let certified = rcgen::generate_simple_self_signed(names).map_err(|e| bad(&e))?;
            let key = PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
            (
                vec![certified.cert.der().clone()],
                key,
                certified.cert.pem(),
            )
        }
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| bad(&e))?;
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), pem))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let service = {
                let kill = Arc::clone(&kill);
                hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request
                            .extensions_mut()
                            .insert(ConnectionKill(Arc::clone(&kill)));
                        tower::ServiceExt::oneshot(router.clone(), request)
                    },
                )
            };
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let conn = http.serve_connection(TokioIo::new(tls), service);
                        tokio::select! { _ = conn => {}, _ = kill.notified() => {} }
                    }
                    Err(e) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                },
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    tokio::select! { _ = conn => {}, _ = kill.notified() => {} }
                }
            }
        });
    }
}
