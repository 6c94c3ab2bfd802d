//! A headless Chromium for the web console's tests and benchmark: Debian's
//! `chromium`, driven through `chromedriver` by fantoccini; and the host
//! they browse: SQLite, scaleio-driver in a worker, simulators registered.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use scaleio_simulator::Simulator;
use southbound_host::datadir::DataDir;
use southbound_host::isolation::DriverSettings;
use southbound_host::serve::{self, HostOptions, RunningHost};
use southbound_host::service::{ControllerSettings, ProviderRequest};
use southbound_sdk::Secret;

/// A host on a fresh SQLite data directory `data`, drivers from `plugins`.
pub async fn start_host(data: &std::path::Path, plugins: &std::path::Path) -> RunningHost {
    serve::start(HostOptions {
        plugins_dir: plugins.to_path_buf(),
        policy: super::policy(DriverSettings::default()),
        data_dir: DataDir::resolve(Some(data)).expect("data dir"),
        database_url: None,
        listen: "127.0.0.1:0".parse().expect("address"),
        token_file: None,
        settings: ControllerSettings {
            poll_interval: Duration::from_millis(100),
            call_timeout: Duration::from_secs(30),
            ..ControllerSettings::default()
        },
        node: None,
    })
    .await
    .expect("host starts")
}

/// The registration of simulator `sim` as provider `name`, its certificate pinned.
pub fn provider(sim: &Simulator, name: &str) -> ProviderRequest {
    ProviderRequest {
        system_type: "scaleio".into(),
        host: "127.0.0.1".into(),
        port: Some(sim.addr().port()),
        username: scaleio_simulator::DEFAULT_USERNAME.into(),
        password: Secret::new(scaleio_simulator::DEFAULT_PASSWORD),
        name: Some(name.into()),
        use_ssl: Some(true),
        ca_certificate_pem: sim.cert_pem().map(str::to_string),
        insecure: false,
    }
}

/// Registers `sim` on `host` and waits until its systems are discovered.
pub async fn register_and_discover(host: &RunningHost, sim: &Simulator, name: &str) {
    let (registered, task) = host
        .controller
        .register_provider(provider(sim, name))
        .await
        .expect("register");
    host.controller.wait_task(&task.id).await.expect("scan");
    host.controller
        .wait_discoveries(&registered.id)
        .await
        .expect("discoveries");
}

/// A chromedriver on a free port, stopped on drop. Its log and the
/// browsers' profiles live in a directory of its own, so that a Chromium
/// that cannot start is explained by the log rather than a bare refusal.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
}

impl ChromeDriver {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a directory for chromedriver");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/test.sh installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                panic!("chromedriver did not start; its log:\n{}", log_tail(&dir));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url, dir }
    }

    pub async fn browser(&self) -> Client {
        self.browser_with(&[]).await
    }

    /// A browser with these extra Chromium flags. A Chromium that fails to
    /// start is tried once more (with a fresh profile), saying so; a second
    /// failure fails the test with chromedriver's log.
    pub async fn browser_with(&self, extra: &[&str]) -> Client {
        let mut failed = None;
        for _attempt in 0..2 {
            let profile = tempfile::tempdir_in(self.dir.path()).expect("a browser profile");
            let profile_arg = format!("--user-data-dir={}", profile.keep().display());
            let mut args = vec![
                profile_arg.as_str(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
            ];
            args.extend_from_slice(extra);
            let mut capabilities = serde_json::Map::new();
            capabilities.insert(
                "goog:chromeOptions".into(),
                serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
            );
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) => {
                    eprintln!(
                        "Chromium did not start: {e}\nchromedriver's log:\n{}",
                        log_tail(&self.dir)
                    );
                    failed = Some(e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        panic!(
            "no Chromium session: {failed:?}\nchromedriver's log:\n{}",
            log_tail(&self.dir)
        )
    }
}

/// The last lines of chromedriver's log, for a failure message.
fn log_tail(dir: &tempfile::TempDir) -> String {
    let log = std::fs::read_to_string(dir.path().join("chromedriver.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
