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

    /// `ClientToken`: at most 64 characters. (The docs say ASCII; the emulator accepts any
    /// character, as the published signing vectors use a token with `é`.)
    pub fn client_token(&self) -> Result<Option<&str>, ApiError> {
        match self.get("ClientToken") {
            Some(t) if t.chars().count() > 64 => Err(ApiError::invalid_parameter("ClientToken")),
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

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
        assert!(params(&[("ClientToken", &long)]).client_token().is_err());
        assert_eq!(
            params(&[("ClientToken", "é")]).client_token().unwrap(),
            Some("é")
        );
        assert_eq!(
            params(&[("ClientToken", "a b*c")]).client_token().unwrap(),
            Some("a b*c")
        );
    }
}
