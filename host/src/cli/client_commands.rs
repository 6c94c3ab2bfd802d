//! Client commands: talk to a running host over its REST API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;

use super::{print_json_or, render, ConnectionArgs};
use crate::client::{segment, Client};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::service::{discovery_settled, InventoryView};
use crate::store::{
    HostRecord, Page, PoolRecord, PortRecord, ProviderRecord, SystemRecord, TaskRecord,
};

/// Where the host is, and how to print.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The host's URL [default: the one a host serving from the data directory wrote].
    #[arg(long, env = "SOUTHBOUND_SERVER")]
    pub server: Option<String>,
    /// API token file [default: $SOUTHBOUND_TOKEN, else api.token in the data directory].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The host's data directory (to find its URL and token).
    #[arg(long, env = "SOUTHBOUND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl ClientArgs {
    fn client(&self, config: &Config) -> Result<Client> {
        let data_dir = DataDir::resolve(
            self.data_dir
                .as_deref()
                .or(config.server.data_dir.as_deref()),
        )?;
        Ok(Client::discover(
            self.server.as_deref(),
            self.token_file.as_deref(),
            &data_dir,
        )?)
    }
}

/// `providers` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Register a storage provider and scan it.
    Add(AddArgs),
    /// List providers.
    List(ClientArgs),
    /// Show one provider.
    Show(KeyArgs),
    /// Remove a provider (its systems stay, unreachable).
    Remove(KeyArgs),
}

/// `providers add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Display name [default: HOST:PORT].
    #[arg(long)]
    pub name: Option<String>,
    /// Wait for the scan and the discoveries it starts; exit non-zero if one fails.
    #[arg(long)]
    pub wait: bool,
}

/// A command about one object.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Id or name.
    pub key: String,
}

/// `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Provider id or name [default: every provider].
    pub provider: Option<String>,
    /// Wait for the scans to end; exit non-zero if one fails.
    #[arg(long)]
    pub wait: bool,
}

/// `discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// System id, native GUID or name [default: every system].
    pub system: Option<String>,
    /// Wait for the discoveries to end; exit non-zero if one fails.
    #[arg(long)]
    pub wait: bool,
}

/// `systems`.
#[derive(Debug, Args)]
pub struct SystemsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this provider's systems.
    #[arg(long)]
    pub provider: Option<String>,
    /// Only systems of this type.
    #[arg(long = "type")]
    pub system_type: Option<String>,
}

/// `pools` and `ports`.
#[derive(Debug, Args)]
pub struct ObjectsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// System id, native GUID or name.
    pub system: String,
    /// Leave out objects the last discovery no longer saw.
    #[arg(long)]
    pub hide_not_visible: bool,
}

/// `hosts`.
#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only the hosts this system reports.
    #[arg(long)]
    pub system: Option<String>,
}

/// `inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Leave out pools and ports the last discovery no longer saw.
    #[arg(long)]
    pub hide_not_visible: bool,
}

/// `tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// One task.
    pub id: Option<String>,
    /// Wait for the task to end; exit non-zero unless it ends READY.
    #[arg(long, requires = "id")]
    pub wait: bool,
}

/// Lists are read whole: page by page, at the API's largest page.
async fn all<T: serde::de::DeserializeOwned>(client: &Client, path: &str) -> Result<Vec<T>> {
    let mut items = Vec::new();
    let separator = if path.contains('?') { '&' } else { '?' };
    loop {
        let page: Page<T> = client
            .get(&format!(
                "{path}{separator}offset={}&limit=10000",
                items.len()
            ))
            .await?;
        let done =
            page.items.is_empty() || items.len() as i64 + page.items.len() as i64 >= page.total;
        items.extend(page.items);
        if done {
            return Ok(items);
        }
    }
}

pub(super) async fn providers(config: &Config, command: ProvidersCommand) -> Result<()> {
    match command {
        ProvidersCommand::Add(args) => add(config, args).await,
        ProvidersCommand::List(args) => {
            let list: Vec<ProviderRecord> = args.client(config)?.get("/api/v1/providers").await?;
            print_json_or(args.json, &list, || render::providers(&list))
        }
        ProvidersCommand::Show(args) => {
            let p: ProviderRecord = args
                .client
                .client(config)?
                .get(&format!("/api/v1/providers/{}", segment(&args.key)))
                .await?;
            print_json_or(args.client.json, &p, || {
                render::providers(std::slice::from_ref(&p))
            })
        }
        ProvidersCommand::Remove(args) => {
            let p: ProviderRecord = args
                .client
                .client(config)?
                .delete(&format!("/api/v1/providers/{}", segment(&args.key)))
                .await?;
            print_json_or(args.client.json, &p, || {
                format!(
                    "Removed provider {} ({}); its systems stay, unreachable\n",
                    p.name, p.id
                )
            })
        }
    }
}

#[derive(Deserialize, serde::Serialize)]
struct Registered {
    provider: ProviderRecord,
    task: TaskRecord,
}

async fn add(config: &Config, args: AddArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let c = &args.connection;
    let mut body = serde_json::json!({
        "type": c.system_type,
        "host": c.host,
        "port": c.port,
        "username": c.username,
        "password": c.password()?.expose(),
        "use_ssl": !c.no_ssl,
        "insecure": c.insecure,
    });
    if let Some(name) = &args.name {
        body["name"] = name.clone().into();
    }
    if let Some(pem) = c.ca_certificate_pem()? {
        body["ca_certificate_pem"] = pem.into();
    }
    let registered: Registered = client.post("/api/v1/providers", &body).await?;
    if !args.wait {
        return print_json_or(args.client.json, &registered, || {
            format!(
                "Registered provider {} ({}); scan task {}\n",
                registered.provider.name, registered.provider.id, registered.task.id
            )
        });
    }
    eprintln!(
        "Registered provider {} ({}); scanning",
        registered.provider.name, registered.provider.id
    );
    let scan = wait_task(&client, &registered.task.id).await?;
    let mut failed = !scan.status.eq("READY");
    if !failed {
        failed = !wait_discoveries(&client, &registered.provider.id).await?;
    }
    let provider: ProviderRecord = client
        .get(&format!(
            "/api/v1/providers/{}",
            segment(&registered.provider.id)
        ))
        .await?;
    let systems = all::<SystemRecord>(
        &client,
        &format!("/api/v1/systems?provider={}", segment(&provider.id)),
    )
    .await?;
    print_json_or(
        args.client.json,
        &serde_json::json!({"provider": provider, "systems": systems}),
        || {
            format!(
                "{}\n{}",
                render::providers(std::slice::from_ref(&provider)),
                render::systems(&systems)
            )
        },
    )?;
    if failed {
        bail!(
            "the scan or a discovery of provider {} failed",
            provider.name
        );
    }
    Ok(())
}

/// Polls a task until it ends, showing its progress on stderr.
async fn wait_task(client: &Client, id: &str) -> Result<TaskRecord> {
    let mut last = String::new();
    loop {
        let task: TaskRecord = client
            .get(&format!("/api/v1/tasks/{}", segment(id)))
            .await?;
        let line = format!(
            "{} {} {}: {} {}% {}",
            task.id, task.operation, task.target_name, task.status, task.progress, task.message
        );
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if task.is_terminal() {
            return Ok(task);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until no system of `provider` has a discovery queued or running;
/// `false` if one ended in error.
async fn wait_discoveries(client: &Client, provider_id: &str) -> Result<bool> {
    let mut last = String::new();
    loop {
        let systems = all::<SystemRecord>(
            client,
            &format!("/api/v1/systems?provider={}", segment(provider_id)),
        )
        .await?;
        let settled = systems
            .iter()
            .filter(|s| discovery_settled(&s.discovery_status))
            .count();
        let line = format!("discovered {settled} of {} systems", systems.len());
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if settled == systems.len() {
            return Ok(systems.iter().all(|s| s.discovery_status == "COMPLETE"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints tasks; with `wait`, waits for each and fails unless all end READY.
async fn run_tasks(client: &Client, tasks: Vec<TaskRecord>, wait: bool, json: bool) -> Result<()> {
    if !wait {
        return print_json_or(json, &tasks, || render::tasks(&tasks));
    }
    let mut ended = Vec::new();
    for task in &tasks {
        ended.push(wait_task(client, &task.id).await?);
    }
    print_json_or(json, &ended, || render::tasks(&ended))?;
    let failed: Vec<&TaskRecord> = ended.iter().filter(|t| t.status != "READY").collect();
    if let Some(first) = failed.first() {
        bail!(
            "{} of {} tasks did not end READY (first: {} {}: {})",
            failed.len(),
            ended.len(),
            first.status,
            first.target_name,
            first.message
        );
    }
    Ok(())
}

pub(super) async fn scan(config: &Config, args: ScanArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let providers: Vec<String> = match &args.provider {
        Some(p) => vec![p.clone()],
        None => {
            let list: Vec<ProviderRecord> = client.get("/api/v1/providers").await?;
            list.into_iter().map(|p| p.id).collect()
        }
    };
    let mut tasks = Vec::new();
    for provider in providers {
        tasks.push(
            client
                .post(
                    &format!("/api/v1/providers/{}/scan", segment(&provider)),
                    &(),
                )
                .await?,
        );
    }
    run_tasks(&client, tasks, args.wait, args.client.json).await
}

pub(super) async fn discover(config: &Config, args: DiscoverArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let systems: Vec<String> = match &args.system {
        Some(s) => vec![s.clone()],
        None => all::<SystemRecord>(&client, "/api/v1/systems")
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect(),
    };
    let mut tasks = Vec::new();
    for system in systems {
        tasks.push(
            client
                .post(
                    &format!("/api/v1/systems/{}/discover", segment(&system)),
                    &(),
                )
                .await?,
        );
    }
    run_tasks(&client, tasks, args.wait, args.client.json).await
}

pub(super) async fn systems(config: &Config, args: SystemsArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let mut query = Vec::new();
    if let Some(p) = &args.provider {
        query.push(format!("provider={}", segment(p)));
    }
    if let Some(t) = &args.system_type {
        query.push(format!("type={}", segment(t)));
    }
    let path = if query.is_empty() {
        "/api/v1/systems".to_string()
    } else {
        format!("/api/v1/systems?{}", query.join("&"))
    };
    let list = all::<SystemRecord>(&client, &path).await?;
    print_json_or(args.client.json, &list, || render::systems(&list))
}

pub(super) async fn pools(config: &Config, args: ObjectsArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let list = all::<PoolRecord>(
        &client,
        &format!("/api/v1/systems/{}/pools", segment(&args.system)),
    )
    .await?;
    print_json_or(args.client.json, &list, || {
        render::pools(&list, args.hide_not_visible)
    })
}

pub(super) async fn ports(config: &Config, args: ObjectsArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let list = all::<PortRecord>(
        &client,
        &format!("/api/v1/systems/{}/ports", segment(&args.system)),
    )
    .await?;
    print_json_or(args.client.json, &list, || {
        render::ports(&list, args.hide_not_visible)
    })
}

pub(super) async fn hosts(config: &Config, args: HostsArgs) -> Result<()> {
    let client = args.client.client(config)?;
    let path = match &args.system {
        Some(s) => format!("/api/v1/systems/{}/hosts", segment(s)),
        None => "/api/v1/hosts".to_string(),
    };
    let list = all::<HostRecord>(&client, &path).await?;
    print_json_or(args.client.json, &list, || render::hosts(&list))
}

pub(super) async fn inventory(config: &Config, args: InventoryArgs) -> Result<()> {
    let view: InventoryView = args.client.client(config)?.get("/api/v1/inventory").await?;
    print_json_or(args.client.json, &view, || {
        render::inventory(&view, args.hide_not_visible)
    })
}

pub(super) async fn tasks(config: &Config, args: TasksArgs) -> Result<()> {
    let client = args.client.client(config)?;
    match &args.id {
        Some(id) => {
            let task: TaskRecord = client
                .get(&format!("/api/v1/tasks/{}", segment(id)))
                .await?;
            run_tasks(&client, vec![task], args.wait, args.client.json).await
        }
        None => {
            let page: Page<TaskRecord> = client.get("/api/v1/tasks?limit=100").await?;
            print_json_or(args.client.json, &page.items, || render::tasks(&page.items))
        }
    }
}
