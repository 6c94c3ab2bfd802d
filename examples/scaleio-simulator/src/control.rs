//! The simulator's control API under `/sim/` (not part of the real API, and
//! not counted in the request statistics): change the topology, inject
//! faults, read and reset the counters.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::faults::Faults;
use crate::topology::{ObjectKind, PdSpec, PoolSpec, TopologyError, VolumeSpec, GIB};
use crate::SimState;

type AppState = Arc<SimState>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn created(result: Result<String, TopologyError>) -> Response {
    match result {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn removed(state: &SimState, kind: ObjectKind, id: &str) -> Response {
    if state.inventory_mut().remove(kind, id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no {kind:?} {id}"))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sim/stats", get(stats))
        .route("/sim/stats/reset", post(reset_stats))
        .route("/sim/faults", put(set_faults).delete(clear_faults))
        .route("/sim/faults/expire-tokens", post(expire_tokens))
        .route("/sim/protection-domains", post(add_pd))
        .route("/sim/protection-domains/{id}", delete(remove_pd))
        .route("/sim/pools", post(add_pool))
        .route("/sim/pools/{id}", delete(remove_pool))
        .route("/sim/pools/{id}/volumes", post(add_volume))
        .route("/sim/pools/{id}/device-capacity", put(set_device_capacity))
        .route("/sim/sds", post(add_sds))
        .route("/sim/sds/{id}", delete(remove_sds))
        .route("/sim/sdc", post(add_sdc))
        .route("/sim/sdc/{id}", delete(remove_sdc))
        .with_state(state)
}

async fn stats(State(state): State<AppState>) -> Response {
    Json(state.stats()).into_response()
}

async fn reset_stats(State(state): State<AppState>) -> Response {
    state.reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

async fn set_faults(State(state): State<AppState>, Json(faults): Json<Faults>) -> Response {
    match state.set_faults(faults) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(State(state): State<AppState>) -> Response {
    let _ = state.set_faults(Faults::default());
    StatusCode::NO_CONTENT.into_response()
}

async fn expire_tokens(State(state): State<AppState>) -> Response {
    state.expire_tokens();
    StatusCode::NO_CONTENT.into_response()
}

async fn add_pd(State(state): State<AppState>, Json(spec): Json<PdSpec>) -> Response {
    created(state.inventory_mut().add_protection_domain(&spec))
}

async fn remove_pd(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    removed(&state, ObjectKind::ProtectionDomain, &id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPool {
    protection_domain_id: String,
    #[serde(flatten)]
    pool: PoolSpec,
}

async fn add_pool(State(state): State<AppState>, Json(body): Json<NewPool>) -> Response {
    created(
        state
            .inventory_mut()
            .add_pool(&body.protection_domain_id, &body.pool),
    )
}

async fn remove_pool(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    removed(&state, ObjectKind::Pool, &id)
}

async fn add_volume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(spec): Json<VolumeSpec>,
) -> Response {
    let mut inv = state.inventory_mut();
    if !inv.pools.iter().any(|p| p.id == id) {
        return error(StatusCode::NOT_FOUND, format!("no pool {id}"));
    }
    created(inv.add_volume(&id, &spec))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceCapacity {
    gib: u64,
}

/// Sets the raw capacity of every device of a pool (grow or shrink the pool).
async fn set_device_capacity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<DeviceCapacity>,
) -> Response {
    let mut inv = state.inventory_mut();
    let mut changed = 0;
    for d in inv.devices.iter_mut().filter(|d| d.storage_pool_id == id) {
        d.capacity_kib = body.gib * GIB;
        changed += 1;
    }
    if changed == 0 {
        return error(StatusCode::NOT_FOUND, format!("no pool {id} with devices"));
    }
    Json(json!({"devices": changed})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSds {
    protection_domain_id: String,
    #[serde(default = "one")]
    devices: usize,
    #[serde(default = "default_device_gib")]
    device_capacity_gib: u64,
}

fn one() -> usize {
    1
}
fn default_device_gib() -> u64 {
    512
}

async fn add_sds(State(state): State<AppState>, Json(body): Json<NewSds>) -> Response {
    created(state.inventory_mut().add_sds(
        &body.protection_domain_id,
        body.devices,
        body.device_capacity_gib,
    ))
}

async fn remove_sds(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    removed(&state, ObjectKind::Sds, &id)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSdc {
    #[serde(default)]
    disconnected: bool,
}

async fn add_sdc(State(state): State<AppState>, body: Option<Json<NewSdc>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    created(Ok(state.inventory_mut().add_sdc(!body.disconnected)))
}

async fn remove_sdc(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    removed(&state, ObjectKind::Sdc, &id)
}
