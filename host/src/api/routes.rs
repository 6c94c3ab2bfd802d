//! The `/api/v1` handlers, each documented for OpenAPI where it is defined.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, PageParams};
use crate::catalog::PluginEntry;
use crate::service::{InventoryView, ProviderRequest};
use crate::store::{
    CapabilityDefinitionRecord, HostRecord, Page, PoolRecord, PortRecord, ProviderRecord,
    SystemRecord, TaskRecord,
};

type ApiResult<T> = Result<Json<T>, ApiError>;

pub(super) fn register(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(list_providers, register_provider))
        .routes(routes!(show_provider, remove_provider))
        .routes(routes!(scan_provider))
        .routes(routes!(list_systems))
        .routes(routes!(show_system))
        .routes(routes!(discover_system))
        .routes(routes!(system_pools))
        .routes(routes!(system_ports))
        .routes(routes!(system_hosts))
        .routes(routes!(list_hosts))
        .routes(routes!(show_host))
        .routes(routes!(list_capability_definitions))
        .routes(routes!(list_tasks))
        .routes(routes!(show_task))
        .routes(routes!(list_drivers))
        .routes(routes!(rescan_drivers))
        .routes(routes!(inventory))
        .routes(routes!(metrics))
}

fn page(
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<crate::store::PageRequest, ApiError> {
    let Query(params) = params?;
    params.request()
}

/// A provider just registered, and the task of its first scan.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The provider.
    provider: ProviderRecord,
    /// Its first scan.
    task: TaskRecord,
}

/// Every registered provider.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers",
    responses((status = 200, body = Vec<ProviderRecord>), (status = 401, body = ApiError)))]
async fn list_providers(State(c): State<AppState>) -> ApiResult<Vec<ProviderRecord>> {
    Ok(Json(c.providers().await?))
}

/// Registers a provider and starts its first scan (poll the task).
#[utoipa::path(post, path = "/api/v1/providers", tag = "providers", request_body = ProviderRequest,
    responses((status = 202, body = Registered), (status = 400, body = ApiError),
              (status = 409, body = ApiError), (status = 401, body = ApiError)))]
async fn register_provider(
    State(c): State<AppState>,
    body: Result<Json<ProviderRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let Json(request) = body?;
    let (provider, task) = c.register_provider(request).await?;
    Ok((StatusCode::ACCEPTED, Json(Registered { provider, task })))
}

/// One provider, by id or name.
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = String, Path, description = "Provider id or name")),
    responses((status = 200, body = ProviderRecord), (status = 404, body = ApiError)))]
async fn show_provider(
    State(c): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ProviderRecord> {
    Ok(Json(c.provider(&id).await?))
}

/// Removes a provider. Its systems stay in the inventory, unreachable.
#[utoipa::path(delete, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = String, Path, description = "Provider id or name")),
    responses((status = 200, body = ProviderRecord), (status = 404, body = ApiError)))]
async fn remove_provider(
    State(c): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ProviderRecord> {
    Ok(Json(c.remove_provider(&id).await?))
}

/// Scans a provider now (joins a scan already queued or running).
#[utoipa::path(post, path = "/api/v1/providers/{id}/scan", tag = "providers",
    params(("id" = String, Path, description = "Provider id or name")),
    responses((status = 202, body = TaskRecord), (status = 404, body = ApiError)))]
async fn scan_provider(
    State(c): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TaskRecord>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(c.scan(&id).await?)))
}

/// Filters of the system list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SystemQuery {
    /// Only this provider's systems (id or name).
    provider: Option<String>,
    /// Only systems of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    system_type: Option<String>,
}

/// Storage systems, by name.
#[utoipa::path(get, path = "/api/v1/systems", tag = "systems", params(SystemQuery, PageParams),
    responses((status = 200, body = Page<SystemRecord>), (status = 400, body = ApiError)))]
async fn list_systems(
    State(c): State<AppState>,
    filter: Result<Query<SystemQuery>, QueryRejection>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Page<SystemRecord>> {
    let Query(filter) = filter?;
    let page = page(params)?;
    Ok(Json(
        c.systems(
            filter.provider.as_deref(),
            filter.system_type.as_deref(),
            page,
        )
        .await?,
    ))
}

/// One system, by id, native GUID or name.
#[utoipa::path(get, path = "/api/v1/systems/{id}", tag = "systems",
    params(("id" = String, Path, description = "System id, native GUID or name")),
    responses((status = 200, body = SystemRecord), (status = 404, body = ApiError)))]
async fn show_system(State(c): State<AppState>, Path(id): Path<String>) -> ApiResult<SystemRecord> {
    Ok(Json(c.system(&id).await?))
}

/// Discovers a system now (joins a discovery already queued or running).
#[utoipa::path(post, path = "/api/v1/systems/{id}/discover", tag = "systems",
    params(("id" = String, Path, description = "System id, native GUID or name")),
    responses((status = 202, body = TaskRecord), (status = 404, body = ApiError)))]
async fn discover_system(
    State(c): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TaskRecord>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(c.discover(&id).await?)))
}

/// A system's pools (NOT_VISIBLE ones included).
#[utoipa::path(get, path = "/api/v1/systems/{id}/pools", tag = "systems",
    params(("id" = String, Path, description = "System id, native GUID or name"), PageParams),
    responses((status = 200, body = Page<PoolRecord>), (status = 404, body = ApiError)))]
async fn system_pools(
    State(c): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Page<PoolRecord>> {
    Ok(Json(c.pools(&id, page(params)?).await?))
}

/// A system's ports (NOT_VISIBLE ones included).
#[utoipa::path(get, path = "/api/v1/systems/{id}/ports", tag = "systems",
    params(("id" = String, Path, description = "System id, native GUID or name"), PageParams),
    responses((status = 200, body = Page<PortRecord>), (status = 404, body = ApiError)))]
async fn system_ports(
    State(c): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Page<PortRecord>> {
    Ok(Json(c.ports(&id, page(params)?).await?))
}

/// The hosts a system reports.
#[utoipa::path(get, path = "/api/v1/systems/{id}/hosts", tag = "systems",
    params(("id" = String, Path, description = "System id, native GUID or name"), PageParams),
    responses((status = 200, body = Page<HostRecord>), (status = 404, body = ApiError)))]
async fn system_hosts(
    State(c): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Page<HostRecord>> {
    Ok(Json(c.system_hosts(&id, page(params)?).await?))
}

/// Every host once, with its initiators and the systems that report it.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts", params(PageParams),
    responses((status = 200, body = Page<HostRecord>), (status = 400, body = ApiError)))]
async fn list_hosts(
    State(c): State<AppState>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Page<HostRecord>> {
    Ok(Json(c.hosts(page(params)?).await?))
}

/// One host, by id or native id.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts",
    params(("id" = String, Path, description = "Host id or native id")),
    responses((status = 200, body = HostRecord), (status = 404, body = ApiError)))]
async fn show_host(State(c): State<AppState>, Path(id): Path<String>) -> ApiResult<HostRecord> {
    Ok(Json(c.host(&id).await?))
}

/// Capability definitions, once per uid.
#[utoipa::path(get, path = "/api/v1/capability-definitions", tag = "systems",
    responses((status = 200, body = Vec<CapabilityDefinitionRecord>)))]
async fn list_capability_definitions(
    State(c): State<AppState>,
) -> ApiResult<Vec<CapabilityDefinitionRecord>> {
    Ok(Json(c.capability_definitions().await?))
}

/// Tasks, newest first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(PageParams),
    responses((status = 200, body = Page<TaskRecord>), (status = 400, body = ApiError)))]
async fn list_tasks(
    State(c): State<AppState>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Page<TaskRecord>> {
    Ok(Json(c.tasks(page(params)?).await?))
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskRecord), (status = 404, body = ApiError)))]
async fn show_task(State(c): State<AppState>, Path(id): Path<String>) -> ApiResult<TaskRecord> {
    Ok(Json(c.task(&id).await?))
}

/// Every driver file with its status: loaded, refused (with a reason code),
/// restarting, quarantined.
#[utoipa::path(get, path = "/api/v1/drivers", tag = "drivers",
    responses((status = 200, body = Vec<Object>)))]
async fn list_drivers(State(c): State<AppState>) -> Json<Vec<PluginEntry>> {
    Json(c.drivers())
}

/// What a rescan changed.
#[derive(Serialize, ToSchema)]
pub struct Rescan {
    /// One line per change.
    changes: Vec<String>,
    /// Every driver file now.
    #[schema(value_type = Vec<Object>)]
    drivers: Vec<PluginEntry>,
}

/// Rescans the plugins directory: loads new files, upgrades replaced ones.
#[utoipa::path(post, path = "/api/v1/drivers/rescan", tag = "drivers",
    responses((status = 200, body = Rescan)))]
async fn rescan_drivers(State(c): State<AppState>) -> ApiResult<Rescan> {
    let changes = c.rescan_drivers().await?;
    Ok(Json(Rescan {
        changes,
        drivers: c.drivers(),
    }))
}

/// The whole inventory: providers, systems with pools and ports, each host once.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "systems",
    responses((status = 200, body = InventoryView)))]
async fn inventory(State(c): State<AppState>) -> ApiResult<InventoryView> {
    Ok(Json(c.inventory().await?))
}

/// Prometheus metrics of this host (OpenMetrics text): jobs by outcome and
/// their durations, driver calls, worker restarts and quarantines, jobs
/// waiting, objects per type; every series labelled with the node.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(c): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        c.metrics_text().await,
    )
}
