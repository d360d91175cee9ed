//! Fault injection: make the next N calls (or a random share of calls) of an action fail with a
//! given error code or raw HTTP status, or slow them down.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ApiError, known_error};

/// One fault rule, as posted to `POST /__admin/faults`:
/// `{"action":"CreateBgpPeer","code":"QuotaExceeded.Nqa","count":1}`,
/// `{"action":"*","status":503,"probability":0.2}`, `{"action":"*","delay_ms":500}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Action name, or `*` for every action.
    #[serde(default = "any_action")]
    pub action: String,
    /// Error code to answer. Its status and message default to the documented ones.
    #[serde(default)]
    pub code: Option<String>,
    /// HTTP status. With `code`: overrides the documented status. Without `code`: answer this
    /// raw status with a plain-text body (a gateway-level failure).
    #[serde(default)]
    pub status: Option<u16>,
    /// Error message (default: the documented one).
    #[serde(default)]
    pub message: Option<String>,
    /// Fire for the next `count` matching calls only, then disappear.
    #[serde(default)]
    pub count: Option<u32>,
    /// Fire with this probability (0..=1) per matching call (default 1).
    #[serde(default)]
    pub probability: Option<f64>,
    /// Delay before answering (alone: a slow call that then proceeds normally).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn any_action() -> String {
    "*".to_owned()
}

/// A fault rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// `probability` outside 0..=1.
    #[error("probability must be within 0..=1")]
    Probability,
    /// `status` outside 100..=599.
    #[error("status must be an HTTP status (100..=599)")]
    Status,
    /// `action` is empty.
    #[error("action must be an action name or \"*\"")]
    Action,
}

impl Fault {
    /// Answer `code` (documented status and message) on `action` (or `*`), every time until
    /// cleared unless limited with [`Fault::times`] or [`Fault::with_probability`].
    pub fn error(action: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            ..Self::delay(action, Duration::ZERO)
        }
    }

    /// Answer a raw HTTP status on `action` (or `*`).
    pub fn http_status(action: impl Into<String>, status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::delay(action, Duration::ZERO)
        }
    }

    /// Delay calls of `action` (or `*`), then process them normally.
    pub fn delay(action: impl Into<String>, delay: Duration) -> Self {
        Self {
            action: action.into(),
            code: None,
            status: None,
            message: None,
            count: None,
            probability: None,
            delay_ms: (!delay.is_zero())
                .then(|| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Overrides the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Fires for the next `n` matching calls only.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Fires with probability `p` per matching call.
    pub fn with_probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Adds a delay before the answer.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Checks the rule is usable.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.action.is_empty() {
            return Err(FaultError::Action);
        }
        if self.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(FaultError::Probability);
        }
        if self.status.is_some_and(|s| !(100..=599).contains(&s)) {
            return Err(FaultError::Status);
        }
        Ok(())
    }

    fn matches(&self, action: &str) -> bool {
        self.action == "*" || self.action == action
    }

    fn outcome(&self) -> Option<FaultOutcome> {
        match (&self.code, self.status) {
            (Some(code), status) => {
                let (known_status, known_message) =
                    known_error(code).unwrap_or((400, "The request has failed."));
                Some(FaultOutcome::Error(ApiError::new(
                    status.unwrap_or(known_status),
                    code.clone(),
                    self.message
                        .clone()
                        .unwrap_or_else(|| known_message.to_owned()),
                )))
            }
            (None, Some(status)) => Some(FaultOutcome::RawStatus(status)),
            (None, None) => None,
        }
    }
}

/// What a firing fault does to the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Answer this API error.
    Error(ApiError),
    /// Answer this bare HTTP status.
    RawStatus(u16),
}

/// A fault that fired for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultHit {
    /// Delay before answering.
    pub delay: Duration,
    /// The answer, or `None` to proceed normally after the delay.
    pub outcome: Option<FaultOutcome>,
}

/// The active fault rules, first match wins.
#[derive(Clone, Debug, Default)]
pub struct FaultSet {
    rules: Vec<Fault>,
}

impl FaultSet {
    /// Adds a rule.
    pub fn add(&mut self, fault: Fault) -> Result<(), FaultError> {
        fault.validate()?;
        self.rules.push(fault);
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The active rules (with their remaining counts).
    pub fn list(&self) -> Vec<Fault> {
        self.rules.clone()
    }

    /// The fault that fires for a call of `action`, if any (consuming one of its `count`).
    pub fn check(&mut self, action: &str) -> Option<FaultHit> {
        use rand::Rng as _;
        let mut rng = rand::rng();
        let index = self.rules.iter().position(|f| {
            f.matches(action)
                && f.count != Some(0)
                && f.probability
                    .is_none_or(|p| rng.random_bool(p.clamp(0.0, 1.0)))
        })?;
        let rule = &mut self.rules[index];
        let hit = FaultHit {
            delay: Duration::from_millis(rule.delay_ms.unwrap_or(0)),
            outcome: rule.outcome(),
        };
        if let Some(n) = rule.count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rules.remove(index);
            }
        }
        Some(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_limits_and_documented_defaults() {
        let mut set = FaultSet::default();
        set.add(Fault::error("CreateBgpPeer", "QuotaExceeded.Nqa").times(2))
            .unwrap();
        assert!(set.check("DescribeBgpPeers").is_none());
        for _ in 0..2 {
            let hit = set.check("CreateBgpPeer").unwrap();
            assert_eq!(
                hit.outcome,
                Some(FaultOutcome::Error(ApiError::new(
                    400,
                    "QuotaExceeded.Nqa",
                    "nqa count per vbr quota exceed."
                )))
            );
        }
        assert!(set.check("CreateBgpPeer").is_none());
        assert!(set.list().is_empty());
    }

    #[test]
    fn wildcard_raw_status_and_delay_only() {
        let mut set = FaultSet::default();
        set.add(Fault::http_status("*", 503).times(1)).unwrap();
        set.add(Fault::delay("*", Duration::from_millis(20)))
            .unwrap();
        assert_eq!(
            set.check("AnyAction").unwrap().outcome,
            Some(FaultOutcome::RawStatus(503))
        );
        let hit = set.check("AnyAction").unwrap();
        assert_eq!(hit.outcome, None);
        assert_eq!(hit.delay, Duration::from_millis(20));
    }

    #[test]
    fn probability_zero_never_fires_and_one_always_fires() {
        let mut set = FaultSet::default();
        set.add(Fault::error("*", "Throttling").with_probability(0.0))
            .unwrap();
        assert!((0..100).all(|_| set.check("X").is_none()));
        set.clear();
        set.add(Fault::error("*", "Throttling").with_probability(1.0))
            .unwrap();
        assert!((0..100).all(|_| set.check("X").is_some()));
    }

    #[test]
    fn invalid_rules_are_refused() {
        let mut set = FaultSet::default();
        assert_eq!(
            set.add(Fault::error("*", "X").with_probability(1.5)),
            Err(FaultError::Probability)
        );
        assert_eq!(
            set.add(Fault::http_status("*", 42)),
            Err(FaultError::Status)
        );
        let json: Fault =
            serde_json::from_str(r#"{"code":"InvalidParams.NotFound","status":404,"message":"m"}"#)
                .unwrap();
        assert_eq!(json.action, "*");
        let mut set = FaultSet::default();
        set.add(json).unwrap();
        assert_eq!(
            set.check("Y").unwrap().outcome,
            Some(FaultOutcome::Error(ApiError::new(
                404,
                "InvalidParams.NotFound",
                "m"
            )))
        );
    }
}
