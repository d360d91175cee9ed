//! Typed access to the merged request parameters (query and form body), with the gateway's
//! error codes for missing and malformed values.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::error::ApiError;
use super::model::IpVersion;

/// Parameters common to every RPC call; they never take part in an operation's semantics or its
/// idempotency fingerprint.
pub const COMMON_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
];

/// Request parameters by name. Empty values count as absent for the typed accessors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Wraps a map.
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }

    /// All parameters, empty values included (for V1 signature canonicalisation).
    pub fn raw(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Sets a parameter (last one wins).
    pub fn insert(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.insert(k.into(), v.into());
    }

    /// A non-empty value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required value, else `Missing{name}`.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::missing(name))
    }

    /// A boolean, parsed case-insensitively (`true`, `True`, `false`, `FALSE`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| {
                if v.eq_ignore_ascii_case("true") {
                    Ok(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Ok(false)
                } else {
                    Err(ApiError::invalid_parameter(name))
                }
            })
            .transpose()
    }

    /// An integer of type `T`.
    pub fn int<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|_| ApiError::invalid_parameter(name))
            })
            .transpose()
    }

    /// An integer that must lie in `range`.
    pub fn int_in<T: FromStr + PartialOrd>(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.int::<T>(name)? {
            Some(v) if !range.contains(&v) => Err(ApiError::invalid_parameter(name)),
            other => Ok(other),
        }
    }

    /// An IP version (`IPv4`/`IPv6`, any case).
    pub fn ip_version(&self, name: &str) -> Result<Option<IpVersion>, ApiError> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| ApiError::invalid_parameter(name)))
            .transpose()
    }

    /// `ClientToken`: 1–64 printable ASCII characters (documented: "can contain only ASCII
    /// characters and cannot exceed 64 characters"), else `InvalidParameter` (the code is
    /// assumed). With `ascii_only` false, other printable characters pass too (the demo world:
    /// the official SDK cross-tests sign a token with `é`); control characters never do.
    pub fn client_token(&self, ascii_only: bool) -> Result<Option<&str>, ApiError> {
        match self.get("ClientToken") {
            Some(t) if !valid_client_token(t, ascii_only) => {
                Err(ApiError::invalid_parameter("ClientToken"))
            }
            other => Ok(other),
        }
    }
}

/// The ClientToken rule (see [`Params::client_token`]).
pub fn valid_client_token(token: &str, ascii_only: bool) -> bool {
    let printable = |c: char| {
        if ascii_only {
            matches!(c, ' '..='~')
        } else {
            !c.is_control()
        }
    };
    (1..=64).contains(&token.chars().count()) && token.chars().all(printable)
}

/// Parameters from `(name, value)` pairs, for the unit tests of every operation.
#[cfg(test)]
pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_case_insensitive() {
        let p = params(&[("A", "True"), ("B", "false"), ("C", "yes"), ("D", "")]);
        assert_eq!(p.bool("A").unwrap(), Some(true));
        assert_eq!(p.bool("B").unwrap(), Some(false));
        assert_eq!(p.bool("C").unwrap_err().code, "InvalidParameter");
        assert_eq!(p.bool("D").unwrap(), None);
        assert_eq!(p.bool("E").unwrap(), None);
    }

    #[test]
    fn ranges_and_required() {
        let p = params(&[("N", "0"), ("M", "50"), ("X", "abc")]);
        assert!(p.int_in::<u32>("N", 1..=50).is_err());
        assert_eq!(p.int_in::<u32>("M", 1..=50).unwrap(), Some(50));
        assert!(p.int::<u32>("X").is_err());
        assert_eq!(p.required("Q").unwrap_err().code, "MissingQ");
    }

    #[test]
    fn client_token_limits() {
        let long = "x".repeat(65);
        assert!(
            params(&[("ClientToken", &long)])
                .client_token(true)
                .is_err()
        );
        assert!(
            params(&[("ClientToken", &"x".repeat(64))])
                .client_token(true)
                .is_ok()
        );
        assert_eq!(
            params(&[("ClientToken", "é")])
                .client_token(true)
                .unwrap_err()
                .code,
            "InvalidParameter"
        );
        assert_eq!(
            params(&[("ClientToken", "é")]).client_token(false).unwrap(),
            Some("é")
        );
        assert!(
            params(&[("ClientToken", "a\tb")])
                .client_token(false)
                .is_err()
        );
        assert!(
            params(&[("ClientToken", "a\u{7f}")])
                .client_token(true)
                .is_err()
        );
        assert_eq!(
            params(&[("ClientToken", "a b*c~")])
                .client_token(true)
                .unwrap(),
            Some("a b*c~")
        );
    }
}
