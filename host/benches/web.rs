//! The web console's figure: how long the page of one system of the
//! simulator's `large` topology (64 pools and 512 ports over 8 systems,
//! 2,048 hosts) takes to render in headless Chromium, from navigation to
//! content (Navigation Timing: response end, DOM content loaded, load
//! end), over 20 loads. Also the hosts page (2,048 rows).
//!
//! Run: `cargo bench -p southbound-host --bench web`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use scaleio_simulator::{SimConfig, Simulator, TopologySpec};

const LOADS: usize = 20;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(measure());
}

async fn measure() {
    let sim = Simulator::start(SimConfig {
        topology: TopologySpec::large(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let data = tempfile::tempdir().expect("data dir");
    let host = support::browser::start_host(data.path(), plugins.path()).await;
    support::browser::register_and_discover(&host, &sim, "large").await;
    let systems = host
        .controller
        .systems(None, None, Default::default())
        .await
        .expect("systems");
    let system = &systems.items[0];

    let chromedriver = support::browser::ChromeDriver::start();
    let browser = chromedriver.browser().await;
    browser
        .goto(&format!("{}/ui/sign-in", host.url))
        .await
        .expect("sign-in");
    browser
        .find(fantoccini::Locator::Css("input#token"))
        .await
        .expect("token field")
        .send_keys(&host.token)
        .await
        .expect("type");
    browser
        .find(fantoccini::Locator::Css("main form button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("sign in");
    tokio::time::sleep(Duration::from_millis(500)).await;

    for (label, path) in [
        (
            format!("system page of {} (large)", system.name),
            format!("/ui/systems/{}", system.id),
        ),
        (
            "hosts page (2,048 hosts)".to_string(),
            "/ui/hosts".to_string(),
        ),
    ] {
        let mut samples: Vec<(f64, f64, f64, f64)> = Vec::new();
        for _ in 0..LOADS {
            browser
                .goto(&format!("{}{path}", host.url))
                .await
                .expect("navigate");
            let timing = browser
                .execute(
                    "const t = performance.getEntriesByType('navigation')[0]; \
                     return [t.responseEnd, t.domContentLoadedEventEnd, t.loadEventEnd, t.transferSize];",
                    vec![],
                )
                .await
                .expect("navigation timing");
            let v: Vec<f64> = serde_json::from_value(timing).expect("numbers");
            samples.push((v[0], v[1], v[2], v[3]));
        }
        let median =
            |f: fn(&(f64, f64, f64, f64)) -> f64| support::median(samples.iter().map(f).collect());
        println!(
            "{label}: median over {LOADS} loads: response end {:.1} ms, DOM content loaded {:.1} ms, load end {:.1} ms ({:.0} KiB HTML)",
            median(|s| s.0),
            median(|s| s.1),
            median(|s| s.2),
            median(|s| s.3) / 1024.0
        );
    }
    browser.close().await.expect("close");
    host.shutdown().await;
}
