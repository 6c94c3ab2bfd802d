//! Builds the driver libraries the tests load (shipped drivers and test
//! fixtures) as real cdylibs, once per test process, with one cargo
//! invocation. Shared by the host's and the conformance suite's tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Crates built as plugins for the tests.
const PLUGIN_CRATES: &[&str] = &[
    "hello-driver",
    "scaleio-driver",
    "misbehaving-driver",
    "not-a-driver",
    "future-sdk-driver",
    "upgraded-driver",
    "flawed-driver",
];

/// The cargo profile directory the running test binary was built into
/// (`target/debug` or `target/release`), found from the binary's own path.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds every plugin crate once per test process and returns the
/// directory holding the libraries.
pub fn plugins_built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--quiet")
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        for krate in PLUGIN_CRATES {
            cmd.arg("-p").arg(krate);
        }
        let status = cmd.status().expect("run cargo build for the plugin crates");
        assert!(
            status.success(),
            "building the plugin crates failed: {status}"
        );
        profile_dir
    })
}

/// Path of the built library of `crate_name` (e.g. `hello-driver`).
pub fn plugin_path(crate_name: &str) -> PathBuf {
    let file = format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    );
    plugins_built().join(file)
}
