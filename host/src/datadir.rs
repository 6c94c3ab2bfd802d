//! The data directory: where a host keeps its embedded database, its secret
//! key, its API token and the address it serves on (so client commands on
//! the same machine find it by themselves).
//!
//! `--data-dir`, else `SOUTHBOUND_DATA_DIR`, else `$XDG_DATA_HOME/southbound`,
//! else `~/.local/share/southbound`. Created (0700) on first use.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "SOUTHBOUND_DATA_DIR";

/// One host's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// The directory from `flag` or the defaults (not created yet).
    pub fn resolve(flag: Option<&Path>) -> std::io::Result<Self> {
        let path = match flag {
            Some(p) => p.to_path_buf(),
            None => default_dir().ok_or_else(|| {
                std::io::Error::other(
                    "no data directory: give --data-dir or set SOUTHBOUND_DATA_DIR (neither XDG_DATA_HOME nor HOME is set)",
                )
            })?,
        };
        Ok(Self { path })
    }

    /// Creates the directory (0700) if needed.
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The embedded database's URL.
    pub fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.path.join("southbound.db").display()
        )
    }

    /// The secret key file.
    pub fn secret_key_file(&self) -> PathBuf {
        self.path.join("secret.key")
    }

    /// The API token file.
    pub fn token_file(&self) -> PathBuf {
        self.path.join("api.token")
    }

    /// The file a running host writes its URL to.
    pub fn server_file(&self) -> PathBuf {
        self.path.join("server.url")
    }

    /// The API token: read from `token_file` (given), else from the data
    /// directory, where it is created (0600, 256 random bits) on first use.
    pub fn api_token(&self, token_file: Option<&Path>) -> std::io::Result<String> {
        let path = match token_file {
            Some(path) => path.to_path_buf(),
            None => {
                let path = self.token_file();
                if !path.exists() {
                    let mut bytes = [0u8; 32];
                    getrandom::getrandom(&mut bytes).map_err(std::io::Error::other)?;
                    write_private(&path, URL_SAFE_NO_PAD.encode(bytes).as_bytes())?;
                }
                path
            }
        };
        read_token(&path)
    }
}

/// Reads a token file (whitespace trimmed); an empty one is an error.
pub fn read_token(path: &Path) -> std::io::Result<String> {
    let token = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(std::io::Error::other(format!(
            "{}: the token file is empty",
            path.display()
        )));
    }
    Ok(token)
}

fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    xdg_dir("XDG_DATA_HOME", ".local/share")
}

/// Southbound's directory of one XDG base-directory kind: `$<variable>/southbound`,
/// else `$HOME/<home_default>/southbound`; none when neither is set.
pub fn xdg_dir(variable: &str, home_default: &str) -> Option<PathBuf> {
    let base = std::env::var_os(variable)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_default)))?;
    Some(base.join("southbound"))
}

/// Writes `contents` to a new file readable by its owner only (0600),
/// replacing any file there.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
