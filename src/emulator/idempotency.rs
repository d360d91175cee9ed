//! ClientToken idempotency: the same token with the same parameters returns the original
//! response; different parameters → `IdempotentParameterMismatch`. Scoped per account and
//! action; kept for the configured retention.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::clock;
use super::error::ApiError;
use super::model::ts_serde;
use super::params::{COMMON_PARAMS, Params};

/// Parameters whose values are compared case-insensitively in the fingerprint (booleans and
/// IP versions, which SDKs spell differently).
const CASE_INSENSITIVE: &[&str] = &["EnableBfd", "IpVersion", "IsFakeAsn", "ClearAuthKey"];

/// One remembered ClientToken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Account uid.
    pub account: String,
    /// Action name.
    pub action: String,
    /// The token.
    pub token: String,
    /// Canonical form of the operation's parameters.
    pub fingerprint: String,
    /// The original response fields (without `RequestId`).
    pub response: Map<String, Value>,
    /// When the original call succeeded.
    #[serde(with = "ts_serde")]
    pub created_at: Timestamp,
}

/// The canonical form of an operation's parameters: common and signature parameters and the
/// token itself left out, empty values dropped, booleans/IP versions lower-cased.
pub fn fingerprint(params: &Params) -> String {
    params
        .raw()
        .iter()
        .filter(|(k, v)| {
            !v.is_empty() && k.as_str() != "ClientToken" && !COMMON_PARAMS.contains(&k.as_str())
        })
        .map(|(k, v)| {
            if CASE_INSENSITIVE.contains(&k.as_str()) {
                format!("{k}={}", v.to_ascii_lowercase())
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Remembered tokens.
#[derive(Clone, Debug, Default)]
pub struct TokenStore {
    records: HashMap<(String, String, String), TokenRecord>,
    lookups: u64,
}

impl TokenStore {
    /// Drops records older than `retention`.
    pub fn purge(&mut self, now: Timestamp, retention: Duration) {
        self.records
            .retain(|_, r| clock::add(r.created_at, retention) > now);
    }

    /// The original response for a replayed token, `None` for a new token, or
    /// `IdempotentParameterMismatch` if the token was used with other parameters.
    pub fn lookup(
        &mut self,
        account: &str,
        action: &str,
        token: &str,
        fingerprint: &str,
        now: Timestamp,
        retention: Duration,
    ) -> Result<Option<Map<String, Value>>, ApiError> {
        // A full sweep now and then; the record asked for is checked exactly below.
        self.lookups += 1;
        if self.lookups.is_multiple_of(1024) {
            self.purge(now, retention);
        }
        let key = (account.to_owned(), action.to_owned(), token.to_owned());
        match self.records.get(&key) {
            None => Ok(None),
            Some(r) if clock::add(r.created_at, retention) <= now => {
                self.records.remove(&key);
                Ok(None)
            }
            Some(r) if r.fingerprint == fingerprint => Ok(Some(r.response.clone())),
            Some(_) => Err(ApiError::from_code("IdempotentParameterMismatch")),
        }
    }

    /// Remembers a successful call.
    pub fn remember(&mut self, record: TokenRecord) {
        let key = (
            record.account.clone(),
            record.action.clone(),
            record.token.clone(),
        );
        self.records.insert(key, record);
    }

    /// Every record (for the state file).
    pub fn records(&self) -> Vec<TokenRecord> {
        let mut out: Vec<_> = self.records.values().cloned().collect();
        out.sort_by_key(|r| r.created_at);
        out
    }

    /// Replaces the records (state file load, reset).
    pub fn replace(&mut self, records: Vec<TokenRecord>) {
        self.records.clear();
        for r in records {
            self.remember(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::params::params;

    #[test]
    fn fingerprint_ignores_signature_params_and_bool_case() {
        let a = params(&[
            ("RegionId", "cn-shanghai"),
            ("EnableBfd", "True"),
            ("ClientToken", "t"),
            ("Signature", "x"),
            ("SignatureNonce", "1"),
            ("Timestamp", "2020"),
            ("SignatureType", ""),
        ]);
        let b = params(&[
            ("RegionId", "cn-shanghai"),
            ("EnableBfd", "true"),
            ("Signature", "y"),
            ("SignatureNonce", "2"),
        ]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), "EnableBfd=true&RegionId=cn-shanghai");
        let c = params(&[("RegionId", "cn-hangzhou"), ("EnableBfd", "true")]);
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn replay_mismatch_scope_and_retention() {
        let mut store = TokenStore::default();
        let now = Timestamp::UNIX_EPOCH;
        let day = Duration::from_secs(86400);
        let mut response = Map::new();
        response.insert("BgpPeerId".to_owned(), "bgp-1".into());
        store.remember(TokenRecord {
            account: "A".into(),
            action: "CreateBgpPeer".into(),
            token: "t".into(),
            fingerprint: "x=1".into(),
            response: response.clone(),
            created_at: now,
        });
        assert_eq!(
            store
                .lookup("A", "CreateBgpPeer", "t", "x=1", now, day)
                .unwrap(),
            Some(response)
        );
        assert_eq!(
            store
                .lookup("A", "CreateBgpPeer", "t", "x=2", now, day)
                .unwrap_err()
                .code,
            "IdempotentParameterMismatch"
        );
        // Other account or other action: a fresh token.
        assert_eq!(
            store
                .lookup("B", "CreateBgpPeer", "t", "x=2", now, day)
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .lookup("A", "DeleteBgpPeer", "t", "x=2", now, day)
                .unwrap(),
            None
        );
        // After the retention the token is forgotten.
        let later = clock::add(now, day);
        assert_eq!(
            store
                .lookup("A", "CreateBgpPeer", "t", "x=2", later, day)
                .unwrap(),
            None
        );
        assert!(store.records().is_empty());
    }
}
