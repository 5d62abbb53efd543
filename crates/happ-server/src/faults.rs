//! Fault injection and request statistics.
//!
//! Faults are a list of rules, set at start (CLI flags or [`crate::ServerConfig::faults`]) and
//! replaced at run time with `POST /_admin/faults`. For each `/api` request, every rule whose
//! `method` and `route` match is considered in order: a rule first lets `skip` matching requests
//! through, then fires with probability `rate` (drawn from a generator seeded with `seed`), at
//! most `times` times. All delays of the rules that fire add up; the first error that fires
//! answers the request instead of the handler.
//!
//! ```json
//! {"seed": 7, "rules": [
//!   {"method": "POST", "route": "/api/chats/{chatId}/messages", "times": 2,
//!    "action": {"kind": "error", "status": 429, "retryAfter": "1"}},
//!   {"route": "/api/chats", "rate": 0.3, "action": {"kind": "error", "status": 503}},
//!   {"method": "GET", "times": 1, "action": {"kind": "delay", "ms": 2000}},
//!   {"method": "POST", "times": 1, "action": {"kind": "delayAfter", "ms": 2000}},
//!   {"times": 1, "action": {"kind": "error", "status": 502, "body": "<html>Bad Gateway</html>"}}
//! ]}
//! ```
//!
//! - `route` is the route template (`/api/chats/{chatId}/messages`) or a literal path
//!   (`/api/chats/c1/messages`); `method` is compared case-insensitively. Both default to any.
//! - `error` answers `status` with the error envelope (code from the status, e.g. `RATE_LIMITED`),
//!   or with `body` as `text/plain` when given (a proxy's page); `retryAfter` sets `Retry-After`.
//! - `delay` waits before the handler runs: whether a write still happens after the client gave
//!   up depends on whether the connection's closing cancels the handler, so use it on reads.
//! - `delayAfter` runs the handler, then waits before answering: the write is done, the client
//!   may time out: the "stored but the answer was lost" case.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The fault rules and the seed of their random draws.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the `rate` draws.
    #[serde(default)]
    pub seed: u64,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// One fault rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match; any if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Route template or literal path to match; any if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Matching requests let through before the rule starts firing.
    #[serde(default)]
    pub skip: u32,
    /// How many times the rule fires at most; unlimited if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Probability (0 to 1) that a matching request is affected; 1 if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// What happens.
    pub action: FaultAction,
}

/// What a firing rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer `status` instead of handling the request.
    Error {
        /// HTTP status, e.g. 429, 500, 503.
        status: u16,
        /// `Retry-After` header value (seconds or an HTTP date), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
        /// A plain-text body instead of the error envelope.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Wait before handling the request.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Handle the request, then wait before answering.
    DelayAfter {
        /// Milliseconds.
        ms: u64,
    },
}

/// What to do with one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Wait this long before handling.
    pub before: Duration,
    /// Answer this instead of handling (`status`, `Retry-After`, plain body).
    pub error: Option<(u16, Option<String>, Option<String>)>,
    /// Wait this long after handling, before answering.
    pub after: Duration,
}

impl Plan {
    /// Whether the request is affected at all.
    pub fn is_fault(&self) -> bool {
        self.error.is_some() || !self.before.is_zero() || !self.after.is_zero()
    }
}

/// The rules with their counters.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    skipped: Vec<u32>,
    fired: Vec<u32>,
    rng: fastrand::Rng,
}

/// A rule's counters, for `GET /_admin/faults`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleStatus {
    /// The rule.
    pub rule: FaultRule,
    /// Times it fired.
    pub fired: u32,
    /// Whether it can still fire.
    pub active: bool,
}

impl Faults {
    /// Rules to apply from now on, counters at zero.
    pub fn new(config: FaultConfig) -> Self {
        let n = config.rules.len();
        let rng = fastrand::Rng::with_seed(config.seed);
        Self { config, skipped: vec![0; n], fired: vec![0; n], rng }
    }

    /// Decides the fate of a request with `method` to `route` (template) at `path`.
    pub fn plan(&mut self, method: &str, route: &str, path: &str) -> Plan {
        let mut plan = Plan::default();
        for (i, rule) in self.config.rules.iter().enumerate() {
            if rule.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(method)) || rule.route.as_deref().is_some_and(|r| r != route && r != path) {
                continue;
            }
            if rule.times.is_some_and(|t| self.fired[i] >= t) {
                continue;
            }
            if self.skipped[i] < rule.skip {
                self.skipped[i] += 1;
                continue;
            }
            if let Some(rate) = rule.rate
                && self.rng.f64() >= rate
            {
                continue;
            }
            match &rule.action {
                FaultAction::Error { status, retry_after, body } => {
                    if plan.error.is_some() {
                        continue;
                    }
                    plan.error = Some((*status, retry_after.clone(), body.clone()));
                }
                FaultAction::Delay { ms } => plan.before += Duration::from_millis(*ms),
                FaultAction::DelayAfter { ms } => plan.after += Duration::from_millis(*ms),
            }
            self.fired[i] += 1;
        }
        plan
    }

    /// The rules and their counters.
    pub fn status(&self) -> Vec<RuleStatus> {
        self.config
            .rules
            .iter()
            .zip(&self.fired)
            .map(|(rule, &fired)| RuleStatus { rule: rule.clone(), fired, active: rule.times.is_none_or(|t| fired < t) })
            .collect()
    }
}

/// Requests counted per route, for `GET /_admin/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Every `/api` request received.
    pub total: u64,
    /// Per `"METHOD /route/template"`.
    pub routes: BTreeMap<String, RouteStats>,
}

/// The counters of one route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStats {
    /// Requests received.
    pub requests: u64,
    /// Requests a fault rule affected (error or delay).
    pub faults: u64,
    /// Answers by HTTP status, counted when the answer was complete (a request whose client went
    /// away during an injected delay is not counted here).
    pub statuses: BTreeMap<u16, u64>,
}

impl Stats {
    /// The counters of `key` (`"POST /api/chats"`).
    pub fn route(&self, key: &str) -> RouteStats {
        self.routes.get(key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> FaultRule {
        serde_json::from_str(json).expect("valid rule")
    }

    #[test]
    fn times_and_skip() {
        let mut f = Faults::new(FaultConfig {
            seed: 1,
            rules: vec![rule(r#"{"method":"post","route":"/api/chats","skip":1,"times":2,"action":{"kind":"error","status":503,"retryAfter":"0"}}"#)],
        });
        let fired: Vec<bool> = (0..5).map(|_| f.plan("POST", "/api/chats", "/api/chats").error.is_some()).collect();
        assert_eq!(fired, [false, true, true, false, false]);
        assert!(!f.plan("GET", "/api/chats", "/api/chats").is_fault());
        let status = f.status();
        assert_eq!((status[0].fired, status[0].active), (2, false));
    }

    #[test]
    fn literal_paths_match_too_and_delays_add_up() {
        let mut f = Faults::new(FaultConfig {
            seed: 1,
            rules: vec![
                rule(r#"{"route":"/api/chats/c1/messages","action":{"kind":"delay","ms":5}}"#),
                rule(r#"{"action":{"kind":"delay","ms":7}}"#),
                rule(r#"{"times":1,"action":{"kind":"delayAfter","ms":3}}"#),
                rule(r#"{"action":{"kind":"error","status":500}}"#),
                rule(r#"{"action":{"kind":"error","status":429}}"#),
            ],
        });
        let p = f.plan("GET", "/api/chats/{chatId}/messages", "/api/chats/c1/messages");
        assert_eq!(p, Plan { before: Duration::from_millis(12), error: Some((500, None, None)), after: Duration::from_millis(3) });
        let p = f.plan("GET", "/api/chats/{chatId}/messages", "/api/chats/c2/messages");
        assert_eq!(p.before, Duration::from_millis(7));
        // The second error rule never fired: the first one answered.
        assert_eq!(f.status()[4].fired, 0);
    }

    #[test]
    fn rate_is_seeded() {
        let run = |seed| {
            let mut f = Faults::new(FaultConfig { seed, rules: vec![rule(r#"{"rate":0.3,"action":{"kind":"error","status":503}}"#)] });
            (0..1000).map(|_| f.plan("GET", "/x", "/x").error.is_some()).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        let hits = run(5).iter().filter(|&&b| b).count();
        assert!((200..400).contains(&hits), "{hits}");
    }

    #[test]
    fn config_rejects_unknown_keys() {
        assert!(serde_json::from_str::<FaultConfig>(r#"{"rules":[{"action":{"kind":"error","status":500,"retry":"1"}}]}"#).is_err());
        assert!(serde_json::from_str::<FaultConfig>(r#"{"rules":[{"action":{"kind":"explode"}}]}"#).is_err());
    }
}
