//! The web console: the inventory in a browser, after CoprHD's Physical
//! Assets pages, served on the API's listener under `/ui`.
//!
//! Pages are rendered on the server from the same service layer the REST
//! API uses (`service::Controller`); they need no script (tables sort and
//! filter through links and a GET form, the tasks page reloads itself while
//! tasks run) and no build step.
//!
//! - `session`: sign-in sessions (cookie) and CSRF tokens.
//! - `html`: escaping, the layout, sortable and filterable tables.
//! - `pages`: one handler per page or action.
//!
//! Invariants: every page but sign-in requires a session; every request
//! that changes something is a POST carrying the session's CSRF token; no
//! page ever contains a password (the registration form is never echoed
//! back with it).

mod html;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::service::{Controller, ServiceError};
use session::Sessions;

/// What the pages share.
#[derive(Clone)]
pub struct WebState {
    controller: Arc<Controller>,
    sessions: Arc<Sessions>,
    token_digest: Arc<[u8; 32]>,
}

/// The console's routes, for the host's HTTP application. `token_digest`
/// is the SHA-256 of the host's API token, which signs in.
pub fn router<S>(controller: Arc<Controller>, token_digest: Arc<[u8; 32]>) -> Router<S> {
    let state = WebState {
        controller,
        sessions: Arc::new(Sessions::default()),
        token_digest,
    };
    let signed_in = Router::new()
        .route("/ui/providers", get(pages::providers).post(pages::register))
        .route("/ui/providers/{id}/rescan", post(pages::rescan))
        .route("/ui/providers/{id}/remove", post(pages::remove))
        .route("/ui/systems", get(pages::systems))
        .route("/ui/systems/{id}", get(pages::system))
        .route("/ui/systems/{id}/discover", post(pages::rediscover))
        .route("/ui/hosts", get(pages::hosts))
        .route("/ui/tasks", get(pages::tasks))
        .route("/ui/drivers", get(pages::drivers))
        .route("/ui/sign-out", post(pages::sign_out))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/systems") }))
        .route("/ui", get(|| async { Redirect::to("/ui/systems") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/systems") }))
        .route("/ui/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/ui/app.css", get(stylesheet))
        .merge(signed_in)
        .with_state(state)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("app.css"),
    )
        .into_response()
}

/// Lets signed-in requests through with their [`session::Session`];
/// sends the others to the sign-in page.
async fn require_session(
    State(state): State<WebState>,
    mut request: Request,
    next: Next,
) -> Response {
    let session = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::cookie_id)
        .and_then(|id| state.sessions.get(id));
    match session {
        Some(session) => {
            request.extensions_mut().insert(session);
            let mut response = next.run(request).await;
            // Pages show live data: never from a cache.
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            response
        }
        None => Redirect::to("/ui/sign-in").into_response(),
    }
}

/// A page that could not be served: its status and a page that says why.
pub struct WebError {
    status: StatusCode,
    message: String,
}

impl From<ServiceError> for WebError {
    fn from(error: ServiceError) -> Self {
        let status = match &error {
            ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Store(e) => {
                tracing::error!("web console: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self {
            status,
            message: error.to_string(),
        }
    }
}

impl WebError {
    fn forbidden(message: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = html::Page {
            title: "Something went wrong",
            current: "",
            csrf: None,
            notice: None,
            refresh_secs: None,
        };
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/ui/systems\">Back to the storage systems</a></p>",
            html::esc(&self.message)
        );
        (self.status, axum::response::Html(page.render(&body))).into_response()
    }
}
