//! Sign-in sessions: a random id in a `Secure`, `HttpOnly`,
//! `SameSite=Strict` cookie, and per session a CSRF token every form that
//! changes something must carry. Kept in memory: each host signs in its own
//! browsers (a restart signs everyone out).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "southbound_session";
/// How long a session lasts without use.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);

/// What a signed-in request knows.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token forms must carry.
    pub csrf: String,
}

struct Entry {
    session: Session,
    last_used: Instant,
}

/// The live sessions, by the SHA-256 of their id (the id itself is only in
/// the browser's cookie).
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<[u8; 32], Entry>>);

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source; failing it is not something to serve on.
    getrandom::getrandom(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session; returns its id (for the cookie).
    pub fn start(&self) -> String {
        let id = random_hex();
        let entry = Entry {
            session: Session { csrf: random_hex() },
            last_used: Instant::now(),
        };
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, e| e.last_used.elapsed() < IDLE);
        sessions.insert(key(&id), entry);
        id
    }

    /// The session of `id`, if live (and marks it used).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = sessions.get_mut(&key(id))?;
        if entry.last_used.elapsed() >= IDLE {
            sessions.remove(&key(id));
            return None;
        }
        entry.last_used = Instant::now();
        Some(entry.session.clone())
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(id));
    }
}

/// The `Set-Cookie` value that stores `id` in the browser.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        IDLE.as_secs()
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_id(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Compares two secrets by digest: the time taken says nothing about them.
pub fn same_secret(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_end_and_carry_a_csrf_token() {
        let sessions = Sessions::default();
        let id = sessions.start();
        let session = sessions.get(&id).expect("live");
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, id);
        assert!(sessions.get("forged").is_none());
        assert_eq!(
            cookie_id(&format!("a=b; {COOKIE}={id}; c=d")),
            Some(id.as_str())
        );
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        assert!(set_cookie(&id).contains("HttpOnly; Secure; SameSite=Strict"));
    }
}
