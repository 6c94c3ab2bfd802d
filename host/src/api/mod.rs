//! The REST API (axum), versioned under `/api/v1`, with its OpenAPI document
//! at `/openapi.json` generated from the handlers themselves (utoipa-axum
//! registers each route and its documentation together, so they cannot
//! drift). Handlers parse, call the service layer, and serialize: nothing
//! else.
//!
//! Authentication: `Authorization: Bearer <token>` on everything but
//! `/healthz` and `/openapi.json`. Errors are JSON `{"error", "field"?}`.

mod routes;

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::service::{Controller, ServiceError};
use crate::store::{PageRequest, StoreError};

/// The API's base path.
pub const BASE: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Southbound",
        description = "Storage providers, systems, pools, ports and hosts discovered through Southbound drivers. Asynchronous operations return a task to poll."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An API error: a status and a JSON body naming the field at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// What went wrong.
    error: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }

    fn bad_request(error: impl Into<String>, field: Option<String>) -> Self {
        Self {
            field,
            ..Self::new(StatusCode::BAD_REQUEST, error)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match &error {
            ServiceError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, error.to_string()),
            ServiceError::Invalid { field, message } => {
                Self::bad_request(format!("{field}: {message}"), Some(field.to_string()))
            }
            ServiceError::Conflict(message) => Self::new(StatusCode::CONFLICT, message.clone()),
            ServiceError::Store(StoreError::Database(e)) => {
                tracing::error!("{error}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the database is unavailable: {e}"),
                )
            }
            ServiceError::Store(_) => {
                tracing::error!("{error}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            }
        }
    }
}

/// The field a body or query error is about: the path axum puts before a
/// value error (`port: invalid value ...`), else the name serde quotes
/// (`missing field `host``, `unknown field `colour``).
fn field_of(message: &str) -> Option<String> {
    let detail = message
        .rsplit_once("target type: ")
        .map_or(message, |(_, d)| d);
    if let Some((path, _)) = detail.split_once(": ") {
        if !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Some(path.to_string());
        }
    }
    let start = detail.find('`')? + 1;
    let end = start + detail[start..].find('`')?;
    Some(detail[start..end].to_string())
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        let field = field_of(&message);
        Self {
            status: match rejection {
                JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            },
            ..Self::bad_request(message, field)
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let message = rejection.body_text();
        let field = field_of(&message);
        Self::bad_request(message, field)
    }
}

/// Paging of list requests.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items to skip (default 0).
    offset: Option<i64>,
    /// Most items to return (default 500, at most 10000).
    limit: Option<i64>,
}

impl PageParams {
    fn request(&self) -> Result<PageRequest, ApiError> {
        let offset = self.offset.unwrap_or(0);
        let limit = self.limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
        if offset < 0 {
            return Err(ApiError::bad_request(
                "offset: must not be negative",
                Some("offset".into()),
            ));
        }
        if !(1..=PageRequest::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                format!("limit: must be between 1 and {}", PageRequest::MAX_LIMIT),
                Some("limit".into()),
            ));
        }
        Ok(PageRequest { offset, limit })
    }
}

type AppState = Arc<Controller>;

/// Health of this host.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unhealthy`.
    status: &'static str,
    /// This host's node name.
    node: String,
    /// Why it is unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn healthz(State(controller): State<AppState>) -> Response {
    let node = controller.node().to_string();
    match controller.health().await {
        Ok(()) => Json(Health {
            status: "ok",
            node,
            error: None,
        })
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unhealthy",
                node,
                error: Some(error),
            }),
        )
            .into_response(),
    }
}

/// Requires `Authorization: Bearer <token>`.
async fn authenticate(
    State(expected): State<Arc<[u8; 32]>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| token_digest(t.trim()));
    // Comparing digests: the time taken says nothing about the token.
    if presented.as_ref() == Some(&*expected) {
        return next.run(request).await;
    }
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// What the host keeps of its API token and compares presented tokens by
/// (the API's bearer check and the web console's sign-in).
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The API's routes and their OpenAPI document.
fn api_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    routes::register(OpenApiRouter::with_openapi(ApiDoc::openapi())).split_for_parts()
}

/// The whole HTTP application: `/api/v1` behind the token, the web console
/// under `/ui` (its own sign-in with the same token), `/healthz` and
/// `/openapi.json` open.
pub fn app(controller: Arc<Controller>, token: &str) -> Router {
    let (api, document) = api_parts();
    let document = Arc::new(document);
    let expected = Arc::new(token_digest(token));
    let web = crate::web::router(Arc::clone(&controller), Arc::clone(&expected));
    let api = api.layer(axum::middleware::from_fn_with_state(expected, authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .merge(api)
        .merge(web)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(controller)
}

#[cfg(test)]
mod tests {
    #[test]
    fn serde_field_names_are_found() {
        assert_eq!(
            super::field_of("Failed to deserialize: missing field `host` at line 1").as_deref(),
            Some("host")
        );
        assert_eq!(super::field_of("no field"), None);
        assert_eq!(
            super::field_of("Failed to deserialize the JSON body into the target type: port: invalid value: integer `70000`, expected u16").as_deref(),
            Some("port")
        );
        assert_eq!(
            super::field_of("Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `type`").as_deref(),
            Some("colour")
        );
    }
}
