//! Injected faults: latency, 5xx answers, malformed JSON, HTML error
//! pages, closed connections. Rates are applied deterministically (the
//! n-th eligible request fails when `floor((n+1)·rate) > floor(n·rate)`), so
//! a rate of 0.5 fails every second request and tests are repeatable.

use serde::{Deserialize, Serialize};

/// Faults applied to every request outside the control API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before answering each request, ms.
    pub latency_ms: u64,
    /// Fraction of requests answered `503` with the JSON error body.
    pub error_rate: f64,
    /// Fraction of successful answers whose JSON body is cut short.
    pub malformed_json_rate: f64,
    /// Fraction of requests answered `502` with an HTML page (as 4.x front ends do).
    pub html_error_rate: f64,
    /// Fraction of requests whose connection is closed without an answer.
    pub close_connection_rate: f64,
}

impl Faults {
    /// Checks every rate is within 0..=1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("malformed_json_rate", self.malformed_json_rate),
            ("html_error_rate", self.html_error_rate),
            ("close_connection_rate", self.close_connection_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        Ok(())
    }
}

/// Which fault, if any, hits the next request.
#[derive(Debug, Default)]
pub struct FaultState {
    /// The configured faults.
    pub faults: Faults,
    seen: [u64; 4],
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection.
    Close,
    /// 503 with a JSON error body.
    ServerError,
    /// 502 with an HTML page.
    HtmlError,
    /// Answer normally but cut the JSON short.
    Malformed,
}

fn fires(seen: &mut u64, rate: f64) -> bool {
    let n = *seen as f64;
    *seen += 1;
    rate > 0.0 && ((n + 1.0) * rate).floor() > (n * rate).floor()
}

impl FaultState {
    /// Replaces the faults and restarts the rate counters.
    pub fn set(&mut self, faults: Faults) {
        *self = Self {
            faults,
            seen: [0; 4],
        };
    }

    /// Decides the fault for the next request.
    pub fn decide(&mut self) -> Option<Fault> {
        let f = &self.faults;
        let (close, error, html, malformed) = (
            f.close_connection_rate,
            f.error_rate,
            f.html_error_rate,
            f.malformed_json_rate,
        );
        if fires(&mut self.seen[0], close) {
            return Some(Fault::Close);
        }
        if fires(&mut self.seen[1], error) {
            return Some(Fault::ServerError);
        }
        if fires(&mut self.seen[2], html) {
            return Some(Fault::HtmlError);
        }
        if fires(&mut self.seen[3], malformed) {
            return Some(Fault::Malformed);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_deterministic() {
        let mut state = FaultState::default();
        state.set(Faults {
            error_rate: 0.5,
            ..Faults::default()
        });
        let pattern: Vec<bool> = (0..6).map(|_| state.decide().is_some()).collect();
        assert_eq!(pattern, [false, true, false, true, false, true]);
        state.set(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        assert!((0..5).all(|_| state.decide() == Some(Fault::ServerError)));
        state.set(Faults::default());
        assert!((0..5).all(|_| state.decide().is_none()));
        assert!(Faults {
            error_rate: 1.5,
            ..Faults::default()
        }
        .validate()
        .is_err());
    }
}
