//! The web console in a real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` by fantoccini), against a host discovering the
//! ScaleIO simulator: sign-in, the pages showing what the simulator holds,
//! registration through the form, rediscovery, and no password anywhere.

mod support;

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use scaleio_simulator::{SimConfig, Simulator, TopologySpec};
use support::browser::{self, ChromeDriver};

const SIM_PASSWORD: &str = scaleio_simulator::DEFAULT_PASSWORD;

/// Clicks what `css` finds and waits for the next page to replace this one.
async fn click_and_load(browser: &Client, css: &str) {
    let old = browser.find(Locator::Css("html")).await.expect("a page");
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
    let started = Instant::now();
    // The old document's element goes stale once the new page is in.
    while old.tag_name().await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{css}: no new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The page's text (what a person reads). The tasks page reloads itself
/// while tasks run: an element found just before a reload goes stale, and
/// is read again from the new page.
async fn text(browser: &Client) -> String {
    let mut last = None;
    for _ in 0..50 {
        let read = match browser.find(Locator::Css("main")).await {
            Ok(main) => main.text().await,
            Err(e) => Err(e),
        };
        match read {
            Ok(text) => return text,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page's text could not be read: {last:?}")
}

/// Waits until the page, reloaded, says `wanted`.
async fn wait_for_text(browser: &Client, url: &str, wanted: &str) -> String {
    let started = Instant::now();
    loop {
        browser.goto(url).await.expect("navigate");
        let seen = text(browser).await;
        if seen.contains(wanted) {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} never said '{wanted}'; last:\n{seen}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn sign_in(browser: &Client, base: &str, token: &str) {
    browser
        .goto(&format!("{base}/ui/sign-in"))
        .await
        .expect("sign-in page");
    browser
        .find(Locator::Css("input#token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type the token");
    click_and_load(browser, "main form button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_inventory_and_registers_providers() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let second = Simulator::start(SimConfig {
        topology: TopologySpec {
            first_index: 50,
            ..TopologySpec::small()
        },
        ..SimConfig::default()
    })
    .await
    .expect("second simulator");
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let data = tempfile::tempdir().expect("data dir");
    let host = browser::start_host(data.path(), plugins.path()).await;
    browser::register_and_discover(&host, &sim, "gateway-one").await;
    let inventory = sim.state().inventory().clone();

    let chromedriver = ChromeDriver::start();
    let browser = chromedriver.browser().await;
    let base = host.url.clone();

    // Every page but sign-in wants a session; a wrong token is refused.
    browser
        .goto(&format!("{base}/ui/systems"))
        .await
        .expect("navigate");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/ui/sign-in"));
    sign_in(&browser, &base, "not-the-token").await;
    let refused = text(&browser).await;
    assert!(
        refused.contains("That is not this host's API token."),
        "{refused}"
    );
    browser
        .goto(&format!("{base}/ui/hosts"))
        .await
        .expect("navigate");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/ui/sign-in"));

    sign_in(&browser, &base, &host.token).await;
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/ui/systems"));
    let cookies = browser.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == southbound_host::web::session::COOKIE)
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));

    // Systems: one per protection domain, with serial and firmware.
    let systems = text(&browser).await;
    for pd in &inventory.protection_domains {
        assert!(systems.contains(&pd.name), "{systems}");
    }
    assert!(
        systems.contains(&format!(
            "{} of {} shown",
            inventory.protection_domains.len(),
            inventory.protection_domains.len()
        )),
        "{systems}"
    );

    // One system: its pools and ports as the simulator holds them.
    let pd = &inventory.protection_domains[0];
    let pd_name = pd.name.clone();
    let links = browser
        .find_all(Locator::Css("a[href^='/ui/systems/']"))
        .await
        .expect("system links");
    let mut target = None;
    for l in links {
        if l.text().await.expect("link text") == pd_name {
            target = l.attr("href").await.expect("href");
        }
    }
    browser
        .goto(&format!("{base}{}", target.expect("the system's link")))
        .await
        .expect("open the system");
    let page = text(&browser).await;
    let pools: Vec<_> = inventory
        .pools
        .iter()
        .filter(|p| p.protection_domain_id == pd.id)
        .collect();
    let sdss: Vec<_> = inventory
        .sds
        .iter()
        .filter(|s| s.protection_domain_id == pd.id)
        .collect();
    assert!(!pools.is_empty() && !sdss.is_empty());
    for pool in &pools {
        assert!(page.contains(&pool.name), "pool {}: {page}", pool.id);
    }
    for sds in &sdss {
        assert!(page.contains(&sds.id), "port {}", sds.id);
    }
    assert!(
        page.contains(&format!("{} of {} shown", pools.len(), pools.len())),
        "{page}"
    );
    let meters = browser
        .find_all(Locator::Css("#pools meter"))
        .await
        .expect("capacity bars");
    assert_eq!(meters.len(), pools.len());

    // Sorting and filtering work without scripts: by link and GET form.
    let system_url = browser.current_url().await.expect("url").to_string();
    let first_sds = &sdss[0].id;
    browser
        .find(Locator::Css("input#ports-q"))
        .await
        .expect("ports filter")
        .send_keys(first_sds)
        .await
        .expect("type");
    click_and_load(&browser, "#ports form button").await;
    let filtered = browser
        .find(Locator::Css("#ports-count"))
        .await
        .expect("count")
        .text()
        .await
        .expect("text");
    assert_eq!(filtered, format!("1 of {} shown", sdss.len()));

    // Hosts: each SDC once, with the systems that report it.
    browser
        .goto(&format!("{base}/ui/hosts"))
        .await
        .expect("hosts");
    let hosts = text(&browser).await;
    assert!(
        hosts.contains(&format!(
            "{} of {} shown",
            inventory.sdcs.len(),
            inventory.sdcs.len()
        )),
        "{hosts}"
    );
    for sdc in inventory.sdcs.iter().take(5) {
        assert!(hosts.contains(&sdc.guid), "{}", sdc.guid);
    }

    // Drivers: the file, its version, worker isolation.
    browser
        .goto(&format!("{base}/ui/drivers"))
        .await
        .expect("drivers");
    let drivers = text(&browser).await;
    assert!(
        drivers.contains("scaleio-driver")
            && drivers.contains("worker")
            && drivers.contains("loaded"),
        "{drivers}"
    );

    // Register a provider through the form and see its systems appear.
    browser
        .goto(&format!("{base}/ui/providers"))
        .await
        .expect("providers");
    let form = |id: &'static str| browser.find(Locator::Css(id));
    form("input#name")
        .await
        .expect("name")
        .send_keys("gateway-two")
        .await
        .expect("type");
    form("input#host")
        .await
        .expect("host")
        .send_keys("127.0.0.1")
        .await
        .expect("type");
    let port_field = form("input#port").await.expect("port");
    port_field.clear().await.expect("clear");
    port_field
        .send_keys(&second.addr().port().to_string())
        .await
        .expect("type");
    form("input#username")
        .await
        .expect("user")
        .send_keys("admin")
        .await
        .expect("type");
    form("input#password")
        .await
        .expect("password")
        .send_keys(SIM_PASSWORD)
        .await
        .expect("type");
    form("textarea#ca_certificate_pem")
        .await
        .expect("pins")
        .send_keys(second.cert_pem().expect("TLS"))
        .await
        .expect("type");
    click_and_load(
        &browser,
        "section[aria-labelledby=register] button[type=submit]",
    )
    .await;
    let notice = text(&browser).await;
    assert!(
        notice.contains("Registered gateway-two; scanning it"),
        "{notice}"
    );
    let second_pd = second.state().inventory().protection_domains[0].clone();
    let second_name = second_pd.name.clone();
    wait_for_text(&browser, &format!("{base}/ui/systems"), &second_name).await;

    // A bad registration is refused naming the field, the password not echoed.
    browser
        .goto(&format!("{base}/ui/providers"))
        .await
        .expect("providers");
    form("input#host")
        .await
        .expect("host")
        .send_keys("127.0.0.1")
        .await
        .expect("type");
    form("input#username")
        .await
        .expect("user")
        .send_keys("admin")
        .await
        .expect("type");
    form("input#password")
        .await
        .expect("password")
        .send_keys("a-secret-never-shown")
        .await
        .expect("type");
    form("input#insecure")
        .await
        .expect("insecure")
        .click()
        .await
        .expect("tick");
    form("textarea#ca_certificate_pem")
        .await
        .expect("pins")
        .send_keys("junk")
        .await
        .expect("type");
    // Read only once the answer has replaced the form's page (reading at
    // once could catch the form itself: a CI failure).
    click_and_load(
        &browser,
        "section[aria-labelledby=register] button[type=submit]",
    )
    .await;
    let refused = text(&browser).await;
    assert!(refused.contains("ca_certificate_pem"), "{refused}");
    let source = browser.source().await.expect("source");
    assert!(!source.contains("a-secret-never-shown"));

    // Rediscover a system and see the task finish.
    browser.goto(&system_url).await.expect("system page");
    click_and_load(&browser, "main > form.inline button").await;
    let tasks = text(&browser).await;
    assert!(
        tasks.contains(&format!("Discovery of {pd_name} queued")),
        "{tasks}"
    );
    let started = Instant::now();
    loop {
        let all = host
            .controller
            .tasks(Default::default())
            .await
            .expect("tasks")
            .items;
        let newest = all
            .iter()
            .find(|t| t.target_name == pd_name && t.origin == "user")
            .expect("the user's discovery task");
        if newest.is_terminal() {
            assert_eq!(newest.status, "READY", "{}", newest.message);
            let page = wait_for_text(&browser, &format!("{base}/ui/tasks"), &newest.message).await;
            assert!(page.contains("READY"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the discovery never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // No page ever holds a password.
    for path in [
        "/ui/providers",
        "/ui/systems",
        "/ui/hosts",
        "/ui/tasks",
        "/ui/drivers",
        system_url.trim_start_matches(&base),
    ] {
        browser
            .goto(&format!("{base}{path}"))
            .await
            .expect("navigate");
        let source = browser.source().await.expect("source");
        assert!(!source.contains(SIM_PASSWORD), "{path} shows a password");
    }

    // Sign out: the session is gone.
    click_and_load(&browser, "form.sign-out button").await;
    browser
        .goto(&format!("{base}/ui/tasks"))
        .await
        .expect("navigate");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/ui/sign-in"));

    browser.close().await.expect("close the browser");

    // With scripts off, the pages still sign in, sort and filter.
    let plain = chromedriver
        .browser_with(&["--blink-settings=scriptEnabled=false"])
        .await;
    sign_in(&plain, &base, &host.token).await;
    plain
        .goto(&format!("{base}/ui/hosts"))
        .await
        .expect("hosts");
    // Sort by host name, then the other way.
    click_and_load(&plain, "#hosts thead th:first-child a").await;
    click_and_load(&plain, "#hosts thead th:first-child a").await;
    let first = plain
        .find(Locator::Css("#hosts tbody tr:first-child th"))
        .await
        .expect("first row")
        .text()
        .await
        .expect("text");
    let mut names: Vec<String> = inventory
        .sdcs
        .iter()
        .map(|s| s.name.clone().unwrap_or_else(|| s.ip.clone()))
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    assert_eq!(Some(&first), names.last(), "sorted descending by host name");
    let header = plain
        .find(Locator::Css("#hosts thead th:first-child"))
        .await
        .expect("header")
        .attr("aria-sort")
        .await
        .expect("attr");
    assert_eq!(header.as_deref(), Some("descending"));
    plain.close().await.expect("close the browser");
    host.shutdown().await;
}
