//! Gateway sessions: tokens from `/api/login` (sent back as the Basic-auth
//! password) and, on 4.x, access/refresh tokens from `/rest/auth/login`
//! (sent as Bearer). Tokens expire after an idle timeout and an absolute
//! lifetime; at most `max_sessions` live at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long tokens live, and how many may.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A token unused for this long expires.
    pub idle_timeout: Duration,
    /// A token expires this long after login, used or not.
    pub lifetime: Duration,
    /// Logins beyond this many live sessions are refused.
    pub max_sessions: usize,
}

#[derive(Debug)]
struct Session {
    created: Instant,
    last_used: Instant,
    /// For 4.x access tokens: the refresh token issued with it.
    refresh_token: Option<String>,
}

#[derive(Debug)]
struct Refresh {
    created: Instant,
    access_token: String,
}

/// Live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    tokens: HashMap<String, Session>,
    refresh_tokens: HashMap<String, Refresh>,
    logins: u64,
}

/// Why a login was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefused {
    /// The session cap is reached.
    TooManySessions,
}

/// Refresh tokens live longer than access tokens, as on PowerFlex 4.x (30 min vs 5).
const REFRESH_LIFETIME_FACTOR: u32 = 6;

fn new_token() -> String {
    let mut bytes = [0u8; 20];
    // A token must not be guessable; the OS generator never fails on Linux.
    getrandom::getrandom(&mut bytes).expect("OS random generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn purge(&mut self, limits: &SessionLimits, now: Instant) {
        self.tokens.retain(|_, s| {
            now.duration_since(s.last_used) < limits.idle_timeout
                && now.duration_since(s.created) < limits.lifetime
        });
        let refresh_lifetime = limits
            .lifetime
            .max(limits.idle_timeout * REFRESH_LIFETIME_FACTOR);
        self.refresh_tokens
            .retain(|_, r| now.duration_since(r.created) < refresh_lifetime);
    }

    /// Starts a session; returns the token (and, for the bearer flow, the refresh token).
    pub fn login(
        &mut self,
        limits: &SessionLimits,
        bearer: bool,
    ) -> Result<(String, Option<String>), LoginRefused> {
        let now = Instant::now();
        self.purge(limits, now);
        if self.tokens.len() >= limits.max_sessions {
            return Err(LoginRefused::TooManySessions);
        }
        let token = new_token();
        let refresh = bearer.then(new_token);
        self.tokens.insert(
            token.clone(),
            Session {
                created: now,
                last_used: now,
                refresh_token: refresh.clone(),
            },
        );
        if let Some(r) = &refresh {
            self.refresh_tokens.insert(
                r.clone(),
                Refresh {
                    created: now,
                    access_token: token.clone(),
                },
            );
        }
        self.logins += 1;
        Ok((token, refresh))
    }

    /// Whether `token` is live; using it resets its idle timer.
    pub fn touch(&mut self, limits: &SessionLimits, token: &str) -> bool {
        let now = Instant::now();
        self.purge(limits, now);
        match self.tokens.get_mut(token) {
            Some(session) => {
                session.last_used = now;
                true
            }
            None => false,
        }
    }

    /// Exchanges a refresh token for a new access token (the old one ends).
    pub fn refresh(&mut self, limits: &SessionLimits, refresh_token: &str) -> Option<String> {
        let now = Instant::now();
        self.purge(limits, now);
        let old_access = self.refresh_tokens.get(refresh_token)?.access_token.clone();
        self.tokens.remove(&old_access);
        let token = new_token();
        self.tokens.insert(
            token.clone(),
            Session {
                created: now,
                last_used: now,
                refresh_token: Some(refresh_token.to_owned()),
            },
        );
        if let Some(r) = self.refresh_tokens.get_mut(refresh_token) {
            r.access_token = token.clone();
        }
        Some(token)
    }

    /// Ends the session of `token` (and its refresh token).
    pub fn logout(&mut self, token: &str) -> bool {
        match self.tokens.remove(token) {
            Some(session) => {
                if let Some(r) = session.refresh_token {
                    self.refresh_tokens.remove(&r);
                }
                true
            }
            None => false,
        }
    }

    /// Ends every session (the `expire every token` fault).
    pub fn expire_all(&mut self) {
        self.tokens.clear();
        self.refresh_tokens.clear();
    }

    /// Live sessions now.
    pub fn live(&mut self, limits: &SessionLimits) -> usize {
        self.purge(limits, Instant::now());
        self.tokens.len()
    }

    /// Successful logins since start (or the last stats reset).
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// Resets the login counter.
    pub fn reset_logins(&mut self) {
        self.logins = 0;
    }
}
