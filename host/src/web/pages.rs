//! One handler per page or action. Handlers fetch through the service layer
//! and render with `html`; actions answer with a redirect (303) carrying a
//! notice, so a reload never repeats them.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use southbound_sdk::{CapabilityInstance, Secret};

use super::html::{action_button, capacity_bar, csrf_field, esc, url, Cell, Page, Table};
use super::session::{self, Session};
use super::{WebError, WebState};
use crate::service::{ProviderRequest, ServiceError};
use crate::store::{PageRequest, TaskRecord};
use crate::units::{capacity, initiators, time};

type PageResult = Result<Response, WebError>;

/// Everything there is, in one page: the console lists, it does not page.
const ALL: PageRequest = PageRequest {
    offset: 0,
    limit: PageRequest::MAX_LIMIT,
};

fn page<'a>(
    title: &'a str,
    current: &'a str,
    session: &'a Session,
    query: &'a HashMap<String, String>,
) -> Page<'a> {
    Page {
        title,
        current,
        csrf: Some(&session.csrf),
        notice: query.get("notice").map(String::as_str),
        refresh_secs: None,
    }
}

fn ordered(query: &HashMap<String, String>) -> super::html::Query {
    query.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Back to `path` with a notice.
fn done(path: &str, notice: &str) -> Response {
    Redirect::to(&format!("{path}?notice={}", url(notice))).into_response()
}

fn check_csrf(session: &Session, presented: &str) -> Result<(), WebError> {
    if session::same_secret(&session.csrf, presented) {
        Ok(())
    } else {
        Err(WebError::forbidden(
            "this form has expired (or came from another site): reload the page and try again",
        ))
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn capacity_cell(kib: u64) -> Cell {
    Cell::number(kib as f64, capacity(kib))
}

fn time_cell(ms: Option<i64>) -> Cell {
    Cell::number(ms.unwrap_or(0) as f64, time(ms))
}

// --- sign-in ---------------------------------------------------------------

fn sign_in_page(message: Option<&str>) -> String {
    let page = Page {
        title: "Sign in",
        current: "",
        csrf: None,
        notice: None,
        refresh_secs: None,
    };
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default();
    page.render(&format!(
        "{error}<form method=\"post\" action=\"/ui/sign-in\" class=\"card\">\
         <p>Sign in with this host's API token (the <code>api.token</code> file in its data directory).</p>\
         <label for=\"token\">API token</label>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form>"
    ))
}

pub async fn sign_in_form() -> Html<String> {
    Html(sign_in_page(None))
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
}

pub async fn sign_in(State(state): State<WebState>, Form(form): Form<SignInForm>) -> Response {
    if crate::api::token_digest(form.token.trim()) != *state.token_digest {
        tracing::warn!("web console: a sign-in with a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            Html(sign_in_page(Some("That is not this host's API token."))),
        )
            .into_response();
    }
    let id = state.sessions.start();
    (
        [(header::SET_COOKIE, session::set_cookie(&id))],
        Redirect::to("/ui/systems"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, &form.csrf)?;
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::cookie_id)
    {
        state.sessions.end(id);
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie())],
        Redirect::to("/ui/sign-in"),
    )
        .into_response())
}

// --- providers -------------------------------------------------------------

/// The registration form's fields, as posted.
#[derive(Deserialize, Default)]
pub struct RegisterForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    system_type: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    use_ssl: Option<String>,
    #[serde(default)]
    ca_certificate_pem: String,
    #[serde(default)]
    insecure: Option<String>,
}

pub async fn providers(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> PageResult {
    render_providers(&state, &session, &query, None).await
}

async fn render_providers(
    state: &WebState,
    session: &Session,
    query: &HashMap<String, String>,
    failed: Option<(&RegisterForm, String)>,
) -> PageResult {
    let providers = state.controller.providers().await?;
    let mut table = Table::new(
        "providers",
        "Storage providers",
        &[
            "Name",
            "Type",
            "Address",
            "Status",
            "Version",
            "Scan",
            "Last scan",
            "Last error",
            "Actions",
        ],
    );
    for p in &providers {
        let actions = format!(
            "{}{}",
            action_button(
                &format!("/ui/providers/{}/rescan", url(&p.id)),
                "Rescan",
                &session.csrf
            ),
            action_button(
                &format!("/ui/providers/{}/remove", url(&p.id)),
                "Remove",
                &session.csrf
            )
        );
        table.row(vec![
            Cell::text(&p.name),
            Cell::text(&p.system_type),
            Cell::text(format!("{}:{}", p.host, p.port)),
            Cell::text(&p.connection_status),
            Cell::text(&p.version),
            Cell::text(&p.scan_status),
            time_cell(p.last_scan_at),
            Cell::text(p.last_scan_error.as_deref().unwrap_or("")),
            Cell::html(actions, ""),
        ]);
    }
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut body = table.render("/ui/providers", &ordered(query));
    body.push_str(&registration_form(state, session, failed));
    let page = page("Storage providers", "/ui/providers", session, query);
    Ok((status, Html(page.render(&body))).into_response())
}

/// The form; after a refused registration, the values entered (never the
/// password) and the reason.
fn registration_form(
    state: &WebState,
    session: &Session,
    failed: Option<(&RegisterForm, String)>,
) -> String {
    let empty = RegisterForm::default();
    let (form, error) = match &failed {
        Some((form, error)) => (*form, Some(error.as_str())),
        None => (&empty, None),
    };
    let mut out = String::from("<section aria-labelledby=\"register\"><h2 id=\"register\">Register a storage provider</h2>");
    if let Some(error) = error {
        let _ = write!(out, "<p class=\"error\" role=\"alert\">{}</p>", esc(error));
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/ui/providers\" class=\"card grid\">{}",
        csrf_field(&session.csrf)
    );
    let types = state.controller.catalog().system_types();
    out.push_str("<label for=\"type\">Storage system type</label><select id=\"type\" name=\"type\" required>");
    for t in &types {
        let selected = if *t == form.system_type {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{selected}>{}</option>", esc(t));
    }
    out.push_str("</select>");
    let field = |out: &mut String, id: &str, label: &str, kind: &str, value: &str, extra: &str| {
        let _ = write!(
            out,
            "<label for=\"{id}\">{label}</label><input type=\"{kind}\" id=\"{id}\" name=\"{id}\" value=\"{}\"{extra}>",
            esc(value)
        );
    };
    field(
        &mut out,
        "name",
        "Name (default: address)",
        "text",
        &form.name,
        "",
    );
    field(
        &mut out,
        "host",
        "Host name or IP address",
        "text",
        &form.host,
        " required",
    );
    let port = if form.port.is_empty() {
        "443"
    } else {
        &form.port
    };
    field(
        &mut out,
        "port",
        "Port",
        "number",
        port,
        " min=\"1\" max=\"65535\" required",
    );
    field(
        &mut out,
        "username",
        "User name",
        "text",
        &form.username,
        " autocomplete=\"off\"",
    );
    field(
        &mut out,
        "password",
        "Password",
        "password",
        "",
        " autocomplete=\"new-password\"",
    );
    let checked = |v: &Option<String>, default: bool| {
        if v.is_some() || (failed.is_none() && default) {
            " checked"
        } else {
            ""
        }
    };
    let _ = write!(
        out,
        "<label for=\"use_ssl\">Use TLS</label><input type=\"checkbox\" id=\"use_ssl\" name=\"use_ssl\" value=\"on\"{}>\
         <label for=\"ca_certificate_pem\">Pinned certificates (PEM) or sha256: fingerprints</label>\
         <textarea id=\"ca_certificate_pem\" name=\"ca_certificate_pem\" rows=\"4\">{}</textarea>\
         <label for=\"insecure\">Skip TLS verification</label><input type=\"checkbox\" id=\"insecure\" name=\"insecure\" value=\"on\"{}>\
         <span></span><button type=\"submit\">Register and scan</button></form></section>",
        checked(&form.use_ssl, true),
        esc(&form.ca_certificate_pem),
        checked(&form.insecure, false)
    );
    out
}

pub async fn register(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Form(form): Form<RegisterForm>,
) -> PageResult {
    check_csrf(&session, &form.csrf)?;
    let port = match form.port.trim() {
        "" => None,
        text => match text.parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => {
                let error = format!("port: '{text}' is not a port number (1 to 65535)");
                return render_providers(&state, &session, &HashMap::new(), Some((&form, error)))
                    .await;
            }
        },
    };
    let request = ProviderRequest {
        system_type: form.system_type.clone(),
        host: form.host.clone(),
        port,
        username: form.username.clone(),
        password: Secret::new(form.password.clone()),
        name: Some(form.name.clone()).filter(|n| !n.trim().is_empty()),
        use_ssl: Some(form.use_ssl.is_some()),
        ca_certificate_pem: Some(form.ca_certificate_pem.clone()).filter(|p| !p.trim().is_empty()),
        insecure: form.insecure.is_some(),
    };
    match state.controller.register_provider(request).await {
        Ok((provider, task)) => Ok(done(
            "/ui/providers",
            &format!(
                "Registered {}; scanning it (task {}).",
                provider.name, task.id
            ),
        )),
        Err(e @ (ServiceError::Invalid { .. } | ServiceError::Conflict(_))) => {
            render_providers(
                &state,
                &session,
                &HashMap::new(),
                Some((&form, e.to_string())),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn rescan(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, &form.csrf)?;
    let task = state.controller.scan(&id).await?;
    Ok(done(
        "/ui/providers",
        &format!("Scan of {} queued (task {}).", task.target_name, task.id),
    ))
}

pub async fn remove(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, &form.csrf)?;
    let provider = state.controller.remove_provider(&id).await?;
    Ok(done(
        "/ui/providers",
        &format!("Removed {}; its systems stay, unreachable.", provider.name),
    ))
}

// --- systems ---------------------------------------------------------------

pub async fn systems(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> PageResult {
    let providers: HashMap<String, String> = state
        .controller
        .providers()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let systems = state.controller.systems(None, None, ALL).await?;
    let mut table = Table::new(
        "systems",
        "Storage systems",
        &[
            "Name",
            "Type",
            "Provider",
            "Serial",
            "Model",
            "Firmware",
            "Compatibility",
            "Reachable",
            "Discovery",
            "Last discovery",
            "Next discovery",
            "Last error",
            "Actions",
        ],
    );
    for s in &systems.items {
        let provider = s
            .provider_id
            .as_ref()
            .and_then(|id| providers.get(id))
            .map(String::as_str)
            .unwrap_or("-");
        table.row(vec![
            Cell::html(
                format!(
                    "<a href=\"/ui/systems/{}\">{}</a>",
                    url(&s.id),
                    esc(&s.name)
                ),
                &s.name,
            ),
            Cell::text(&s.system_type),
            Cell::text(provider),
            Cell::text(&s.serial_number),
            Cell::text(&s.model),
            Cell::text(&s.firmware_version),
            Cell::text(&s.compatibility),
            Cell::text(yes_no(s.reachable)),
            Cell::text(&s.discovery_status),
            time_cell(s.last_discovery_at),
            time_cell(s.next_discovery_at),
            Cell::text(s.last_discovery_error.as_deref().unwrap_or("")),
            Cell::html(
                action_button(
                    &format!("/ui/systems/{}/discover", url(&s.id)),
                    "Rediscover",
                    &session.csrf,
                ),
                "",
            ),
        ]);
    }
    let body = table.render("/ui/systems", &ordered(&query));
    let page = page("Storage systems", "/ui/systems", &session, &query);
    Ok(Html(page.render(&body)).into_response())
}

pub async fn rediscover(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, &form.csrf)?;
    let task = state.controller.discover(&id).await?;
    Ok(done(
        "/ui/tasks",
        &format!(
            "Discovery of {} queued (task {}).",
            task.target_name, task.id
        ),
    ))
}

fn capabilities_text(capabilities: &[CapabilityInstance]) -> String {
    capabilities
        .iter()
        .map(|c| {
            let properties: Vec<String> = c
                .properties
                .iter()
                .map(|p| {
                    format!(
                        "{}={}",
                        p.name,
                        p.values
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join("|")
                    )
                })
                .collect();
            format!(
                "{} ({}: {})",
                c.name,
                c.definition_uid,
                properties.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn system(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> PageResult {
    let controller = &state.controller;
    let system = controller.system(&id).await?;
    let (pools, ports, hosts, definitions) = tokio::try_join!(
        controller.pools(&system.id, ALL),
        controller.ports(&system.id, ALL),
        controller.system_hosts(&system.id, ALL),
        controller.capability_definitions(),
    )?;
    let d = &system.details;
    let mut body = String::new();
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Type</dt><dd>{}</dd><dt>Native GUID</dt><dd>{}</dd><dt>Serial</dt><dd>{}</dd>\
         <dt>Model</dt><dd>{}</dd><dt>Firmware</dt><dd>{}</dd><dt>Compatibility</dt><dd>{}</dd>\
         <dt>Reachable</dt><dd>{}</dd><dt>Discovery</dt><dd>{}</dd><dt>Last discovery</dt><dd>{}</dd>\
         <dt>Next discovery</dt><dd>{}</dd><dt>Last error</dt><dd>{}</dd><dt>Protocols</dt><dd>{}</dd></dl>{}",
        esc(&system.system_type),
        esc(&system.native_guid),
        esc(&system.serial_number),
        esc(&system.model),
        esc(&system.firmware_version),
        esc(&system.compatibility),
        yes_no(system.reachable),
        esc(&system.discovery_status),
        time(system.last_discovery_at),
        time(system.next_discovery_at),
        esc(system.last_discovery_error.as_deref().unwrap_or("-")),
        esc(&d.protocols.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")),
        action_button(&format!("/ui/systems/{}/discover", url(&system.id)), "Rediscover", &session.csrf),
    );
    let q = ordered(&query);
    let path = format!("/ui/systems/{}", url(&system.id));

    let mut table = Table::new(
        "pools",
        "Storage pools",
        &[
            "Name",
            "Drive types",
            "Resource type",
            "Protocols",
            "Total",
            "Free",
            "Subscribed",
            "Used",
            "Status",
            "Visible",
        ],
    );
    for record in &pools.items {
        let p = &record.pool;
        table.row(vec![
            Cell::text(&p.name),
            Cell::text(
                p.supported_drive_types
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Cell::text(p.resource_type.to_string()),
            Cell::text(
                p.protocols
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            capacity_cell(p.total_capacity_kib),
            capacity_cell(p.free_capacity_kib),
            capacity_cell(p.subscribed_capacity_kib),
            Cell::html(capacity_bar(p.total_capacity_kib, p.free_capacity_kib), ""),
            Cell::text(p.operational_status.to_string()),
            Cell::text(&record.discovery_status),
        ]);
    }
    let _ = write!(body, "<h2>Pools</h2>{}", table.render(&path, &q));

    let mut table = Table::new(
        "ports",
        "Storage ports",
        &[
            "Name",
            "Network id",
            "Transport",
            "IP address",
            "TCP port",
            "HA zone",
            "Status",
            "Visible",
        ],
    );
    for record in &ports.items {
        let p = &record.port;
        let tcp = p
            .tcp_port
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default();
        table.row(vec![
            Cell::text(&p.name),
            Cell::text(&p.port_network_id),
            Cell::text(p.transport_type.to_string()),
            Cell::text(&p.ip_address),
            Cell::number(
                p.tcp_port.as_ref().map(|t| f64::from(*t)).unwrap_or(0.0),
                tcp,
            ),
            Cell::text(&p.ha_zone),
            Cell::text(p.operational_status.to_string()),
            Cell::text(&record.discovery_status),
        ]);
    }
    let _ = write!(body, "<h2>Ports</h2>{}", table.render(&path, &q));

    let mut table = Table::new("hosts", "Hosts", &["Host", "OS", "Initiators", "Status"]);
    for record in &hosts.items {
        table.row(vec![
            Cell::text(&record.host_name),
            Cell::text(record.host.os_type.to_string()),
            Cell::text(initiators(&record.host)),
            Cell::text(record.host.operational_status.to_string()),
        ]);
    }
    let _ = write!(body, "<h2>Hosts</h2>{}", table.render(&path, &q));

    let mut table = Table::new(
        "capabilities",
        "Capabilities",
        &["Definition", "Category", "Properties", "Description"],
    );
    for record in definitions
        .iter()
        .filter(|r| r.system_ids.contains(&system.id))
    {
        let def = &record.definition;
        table.row(vec![
            Cell::text(&def.uid),
            Cell::text(def.category.to_string()),
            Cell::text(
                def.property_names
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Cell::text(&def.description),
        ]);
    }
    let _ = write!(body, "<h2>Capabilities</h2>{}", table.render(&path, &q));
    if !d.capabilities.is_empty() {
        let _ = write!(
            body,
            "<p>System capabilities: {}</p>",
            esc(&capabilities_text(&d.capabilities))
        );
    }
    let title = format!("Storage system {}", system.name);
    let page = page(&title, "/ui/systems", &session, &query);
    Ok(Html(page.render(&body)).into_response())
}

// --- hosts, tasks, drivers -------------------------------------------------

pub async fn hosts(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> PageResult {
    let controller = &state.controller;
    let (hosts, systems) =
        tokio::try_join!(controller.hosts(ALL), controller.systems(None, None, ALL))?;
    let names: HashMap<&str, (&str, &str)> = systems
        .items
        .iter()
        .map(|s| (s.id.as_str(), (s.id.as_str(), s.name.as_str())))
        .collect();
    let mut table = Table::new(
        "hosts",
        "Hosts",
        &["Host", "Native id", "OS", "Initiators", "Reported by"],
    );
    for record in &hosts.items {
        let mut links = Vec::new();
        let mut key = String::new();
        for link in &record.systems {
            let (id, name) = names
                .get(link.system_id.as_str())
                .copied()
                .unwrap_or((&link.system_id, &link.system_guid));
            let hidden = if link.discovery_status == "VISIBLE" {
                ""
            } else {
                " (not visible)"
            };
            links.push(format!(
                "<a href=\"/ui/systems/{}\">{}</a>{hidden}",
                url(id),
                esc(name)
            ));
            key.push_str(name);
            key.push(' ');
        }
        table.row(vec![
            Cell::text(&record.host_name),
            Cell::text(&record.native_id),
            Cell::text(record.host.os_type.to_string()),
            Cell::text(initiators(&record.host)),
            Cell::html(links.join(", "), key),
        ]);
    }
    let body = table.render("/ui/hosts", &ordered(&query));
    let page = page("Hosts", "/ui/hosts", &session, &query);
    Ok(Html(page.render(&body)).into_response())
}

pub async fn tasks(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> PageResult {
    let tasks = state
        .controller
        .tasks(PageRequest {
            offset: 0,
            limit: 500,
        })
        .await?;
    let running = tasks.items.iter().any(|t| !TaskRecord::is_terminal(t));
    let mut table = Table::new(
        "tasks",
        "Recent tasks",
        &[
            "Operation",
            "Target",
            "Status",
            "Progress",
            "Message",
            "Started",
            "Ended",
            "Node",
        ],
    );
    for t in &tasks.items {
        table.row(vec![
            Cell::text(&t.operation),
            Cell::text(&t.target_name),
            Cell::text(&t.status),
            Cell::html(
                format!(
                    "<progress max=\"100\" value=\"{p}\" aria-label=\"{p}%\">{p}%</progress> {p}%",
                    p = t.progress
                ),
                t.progress.to_string(),
            ),
            Cell::text(&t.message),
            time_cell(t.started_at.or(Some(t.created_at))),
            time_cell(t.ended_at),
            Cell::text(t.node.as_deref().unwrap_or("")),
        ]);
    }
    let mut body = String::new();
    if running {
        body.push_str("<p class=\"muted\" role=\"status\">Tasks are running; this page reloads every 2 seconds.</p>");
    }
    body.push_str(&table.render("/ui/tasks", &ordered(&query)));
    let mut page = page("Tasks", "/ui/tasks", &session, &query);
    page.refresh_secs = running.then_some(2);
    Ok(Html(page.render(&body)).into_response())
}

pub async fn drivers(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> PageResult {
    let entries = state.controller.drivers();
    let mut table = Table::new(
        "drivers",
        "Driver files",
        &[
            "File",
            "Name",
            "Version",
            "SDK",
            "Types",
            "Isolation",
            "Worker",
            "Restarts",
            "Status",
        ],
    );
    for entry in &entries {
        let info = entry.status.info();
        let text = |f: fn(&southbound_sdk::DriverInfo) -> String| {
            info.map(f).unwrap_or_else(|| "-".into())
        };
        table.row(vec![
            Cell::text(
                entry
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
            ),
            Cell::text(text(|i| i.name.to_string())),
            Cell::text(text(|i| i.version.to_string())),
            Cell::text(text(|i| i.sdk_version.to_string())),
            Cell::text(text(|i| {
                i.storage_system_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })),
            Cell::text(
                entry
                    .isolation
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::text(
                entry
                    .worker_pid
                    .map(|p| format!("pid {p}"))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::number(entry.restarts as f64, entry.restarts.to_string()),
            Cell::text(entry.status.describe()),
        ]);
    }
    let body = table.render("/ui/drivers", &ordered(&query));
    let page = page("Drivers", "/ui/drivers", &session, &query);
    Ok(Html(page.render(&body)).into_response())
}
