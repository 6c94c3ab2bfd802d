//! The real gateway API: `/api/...` and, on 4.x, `/rest/auth/...`.

// Handlers bail out early with a ready `Response` as the error; boxing it
// would only add an allocation to every rejected request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::LoginRefused;
use crate::faults::Fault;
use crate::{render, stats, ConnectionKill, SimState};

type AppState = Arc<SimState>;

const JSON_TYPE: &str = "application/json;charset=UTF-8";

/// The gateway's error body: `{"message", "httpStatusCode", "errorCode"}`.
pub fn api_error(status: StatusCode, message: &str, error_code: u32) -> Response {
    let body =
        json!({"message": message, "httpStatusCode": status.as_u16(), "errorCode": error_code});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, JSON_TYPE)], bytes).into_response()
}

fn ok_json(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

fn unauthorized() -> Response {
    api_error(StatusCode::UNAUTHORIZED, "Unauthorized", 0)
}

/// ScaleIO reports a missing object as a 500 with errorCode 3.
fn not_found() -> Response {
    api_error(StatusCode::INTERNAL_SERVER_ERROR, "Not found", 3)
}

fn bad_request(message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, message, 0)
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/login", get(login))
        .route("/api/logout", get(logout))
        .route("/api/version", get(version))
        .route("/api/instances", get(bulk))
        .route(
            "/api/instances/querySelectedStatistics",
            post(query_selected_statistics),
        )
        .route("/api/instances/{object}", get(instance))
        .route(
            "/api/instances/{object}/relationships/{relationship}",
            get(relationship),
        )
        .route(
            "/api/instances/{object}/action/{action}",
            post(instance_action),
        )
        .route("/api/types/{type_name}/instances", get(type_instances))
        .route(
            "/api/types/{type_name}/instances/action/{action}",
            post(type_action),
        )
        .route("/rest/auth/login", post(rest_login))
        .route("/rest/auth/update-token", post(rest_update_token))
        .route("/rest/auth/logout", post(rest_logout))
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "Not found", 0) });
    api.layer(middleware::from_fn_with_state(
        Arc::clone(&state),
        count_and_inject_faults,
    ))
    .with_state(state)
}

/// Counts the request, then applies latency and injected faults.
async fn count_and_inject_faults(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    state.count(format!("{} {}", request.method(), request.uri().path()));
    let (latency, fault) = {
        let mut faults = crate::lock(&state.faults);
        (faults.faults.latency_ms, faults.decide())
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match fault {
        Some(Fault::Close) => {
            if let Some(kill) = request.extensions().get::<ConnectionKill>() {
                kill.0.notify_one();
            }
            // The connection task drops the connection; never answer.
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
        Some(Fault::ServerError) => api_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", 0),
        Some(Fault::HtmlError) => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
        )
            .into_response(),
        Some(Fault::Malformed) => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
            let cut = &bytes[..bytes.len() / 2];
            let mut response = Response::from_parts(parts, Body::from(cut.to_vec()));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        None => next.run(request).await,
    }
}

/// `(user, password)` of a Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The session token a request presents: Basic (any user, token as the
/// password) or, on 4.x, Bearer.
fn presented_token(state: &SimState, headers: &HeaderMap) -> Option<String> {
    if let Some(token) = bearer_token(headers) {
        return state
            .config
            .api_version
            .has_bearer_auth()
            .then(|| token.to_owned());
    }
    basic_credentials(headers).map(|(_, token)| token)
}

/// Checks the request carries a live token.
fn authorize(state: &SimState, headers: &HeaderMap) -> Result<String, Response> {
    let token = presented_token(state, headers).ok_or_else(unauthorized)?;
    if state.sessions().touch(&state.config.sessions, &token) {
        Ok(token)
    } else {
        Err(unauthorized())
    }
}

fn start_session(state: &SimState, bearer: bool) -> Result<(String, Option<String>), Response> {
    state
        .sessions()
        .login(&state.config.sessions, bearer)
        .map_err(|LoginRefused::TooManySessions| {
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The maximum number of sessions has been reached",
                0,
            )
        })
}

async fn login(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((user, password)) = basic_credentials(&headers) else {
        return unauthorized();
    };
    if user != state.config.username || password != state.config.password {
        return unauthorized();
    }
    match start_session(&state, false) {
        Ok((token, _)) => ok_json(&Value::String(token)),
        Err(refused) => refused,
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match authorize(&state, &headers) {
        Ok(token) => {
            state.sessions().logout(&token);
            StatusCode::OK.into_response()
        }
        Err(denied) => denied,
    }
}

async fn version(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    ok_json(&Value::String(state.config.api_version.as_str().into()))
}

async fn bulk(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, JSON_TYPE)],
        state.bulk_body(),
    )
        .into_response()
}

/// Splits `Type::id` and checks the type is served.
fn typed_object(object: &str) -> Result<(&str, &str), Response> {
    let (type_name, id) = object
        .split_once("::")
        .ok_or_else(|| bad_request(&format!("Invalid instance {object}")))?;
    check_type(type_name)?;
    Ok((type_name, id))
}

fn check_type(type_name: &str) -> Result<(), Response> {
    if render::TYPES.contains(&type_name) {
        Ok(())
    } else {
        Err(bad_request(&format!("Invalid type {type_name}")))
    }
}

async fn instance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(object): Path<String>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    let (type_name, id) = match typed_object(&object) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    match render::instance(&state.inventory(), state.config.api_version, type_name, id) {
        Some(o) => ok_json(&o),
        None => not_found(),
    }
}

async fn relationship(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((object, rel)): Path<(String, String)>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    let (type_name, id) = match typed_object(&object) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let inv = state.inventory();
    let version = state.config.api_version;
    if rel == "Statistics" {
        return match stats::statistics(&inv, version, type_name, id) {
            Some(s) => ok_json(&Value::Object(s)),
            None => not_found(),
        };
    }
    if render::instance(&inv, version, type_name, id).is_none() {
        return not_found();
    }
    match render::related(&inv, version, type_name, id, &rel) {
        Some(objects) => ok_json(&Value::Array(objects)),
        None => bad_request(&format!("Invalid relationship {rel} for {type_name}")),
    }
}

async fn type_instances(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(type_name): Path<String>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    if let Err(e) = check_type(&type_name) {
        return e;
    }
    let objects = render::instances(&state.inventory(), state.config.api_version, &type_name)
        .unwrap_or_default();
    ok_json(&Value::Array(objects))
}

/// One entry of a statistics query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatisticsQuery {
    #[serde(rename = "type", default)]
    type_name: Option<String>,
    #[serde(default)]
    ids: Option<Vec<String>>,
    /// `[]` or `""`: all objects. Any present value selects all.
    #[serde(default)]
    all_ids: Option<Value>,
    properties: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SelectedStatistics {
    selected_statistics_list: Vec<StatisticsQuery>,
}

fn select(all: Map<String, Value>, properties: &[String]) -> Value {
    // Only the requested properties; names this version does not have are left out.
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| properties.contains(k))
            .collect(),
    )
}

/// Answers one statistics query: `{id: {props}}` (or the props for System).
fn answer_query(
    state: &SimState,
    type_name: &str,
    query: &StatisticsQuery,
    system_flat: bool,
) -> Result<Value, Response> {
    check_type(type_name)?;
    let inv = state.inventory();
    let version = state.config.api_version;
    if type_name == "System" && system_flat {
        let all = stats::statistics(&inv, version, "System", &inv.system.id).unwrap_or_default();
        return Ok(select(all, &query.properties));
    }
    let ids = match (&query.ids, &query.all_ids) {
        (Some(ids), _) => ids.clone(),
        (None, Some(_)) => stats::all_ids(&inv, type_name).unwrap_or_default(),
        (None, None) => return Err(bad_request("Either ids or allIds must be given")),
    };
    let mut out = Map::new();
    for id in ids {
        match stats::statistics(&inv, version, type_name, &id) {
            Some(all) => {
                out.insert(id, select(all, &query.properties));
            }
            None => return Err(not_found()),
        }
    }
    Ok(Value::Object(out))
}

async fn query_selected_statistics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SelectedStatistics>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    let Ok(Json(body)) = body else {
        return bad_request("Invalid request body");
    };
    let mut out = Map::new();
    for query in &body.selected_statistics_list {
        let Some(type_name) = query.type_name.as_deref() else {
            return bad_request("Each selected statistics entry needs a type");
        };
        match answer_query(&state, type_name, query, true) {
            Ok(v) => {
                out.insert(type_name.to_owned(), v);
            }
            Err(e) => return e,
        }
    }
    ok_json(&Value::Object(out))
}

async fn type_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((type_name, action)): Path<(String, String)>,
    body: Result<Json<StatisticsQuery>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    if action != "querySelectedStatistics" {
        return bad_request(&format!("Unsupported action {action}"));
    }
    let Ok(Json(query)) = body else {
        return bad_request("Invalid request body");
    };
    match answer_query(&state, &type_name, &query, false) {
        Ok(v) => ok_json(&v),
        Err(e) => e,
    }
}

async fn instance_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((object, action)): Path<(String, String)>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    if object == "System" && action == "querySystemLimits" {
        let limits = [
            ("volumeSizeGb", "Maximum volume size in GB", "1048576"),
            (
                "sdsPerProtectionDomain",
                "Maximum SDSs per protection domain",
                "128",
            ),
            ("sdsPerSystem", "Maximum SDSs per system", "512"),
            ("sdcPerSystem", "Maximum SDCs per system", "2048"),
            (
                "protectionDomainsPerSystem",
                "Maximum protection domains per system",
                "256",
            ),
            (
                "storagePoolsPerProtectionDomain",
                "Maximum storage pools per protection domain",
                "64",
            ),
            (
                "devicesPerStoragePool",
                "Maximum devices per storage pool",
                "300",
            ),
        ];
        let entries: Vec<Value> = limits
            .iter()
            .map(|(t, d, m)| json!({"type": t, "description": d, "maxVal": m}))
            .collect();
        return ok_json(&json!({"systemLimitEntryList": entries}));
    }
    bad_request(&format!("Unsupported action {action} on {object}"))
}

#[derive(Debug, Deserialize)]
struct RestLogin {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

fn bearer_only(state: &SimState) -> Result<(), Response> {
    if state.config.api_version.has_bearer_auth() {
        Ok(())
    } else {
        Err(api_error(StatusCode::NOT_FOUND, "Not found", 0))
    }
}

fn token_body(state: &SimState, access: &str, refresh: &str) -> Value {
    let limits = &state.config.sessions;
    json!({
        "access_token": access,
        "expires_in": limits.idle_timeout.as_secs(),
        "refresh_token": refresh,
        "refresh_expires_in": limits.lifetime.as_secs(),
        "token_type": "Bearer",
        "scope": "openid profile email",
    })
}

async fn rest_login(
    State(state): State<AppState>,
    body: Result<Json<RestLogin>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(e) = bearer_only(&state) {
        return e;
    }
    let Ok(Json(body)) = body else {
        return bad_request("Invalid request body");
    };
    if body.username != state.config.username || body.password != state.config.password {
        return unauthorized();
    }
    match start_session(&state, true) {
        Ok((access, Some(refresh))) => ok_json(&token_body(&state, &access, &refresh)),
        Ok((_, None)) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No refresh token issued",
            0,
        ),
        Err(refused) => refused,
    }
}

async fn rest_update_token(
    State(state): State<AppState>,
    body: Result<Json<RefreshBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(e) = bearer_only(&state) {
        return e;
    }
    let Ok(Json(body)) = body else {
        return bad_request("Invalid request body");
    };
    let refreshed = state
        .sessions()
        .refresh(&state.config.sessions, &body.refresh_token);
    match refreshed {
        Some(access) => ok_json(&token_body(&state, &access, &body.refresh_token)),
        None => unauthorized(),
    }
}

async fn rest_logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = bearer_only(&state) {
        return e;
    }
    match authorize(&state, &headers) {
        Ok(token) => {
            state.sessions().logout(&token);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(denied) => denied,
    }
}
