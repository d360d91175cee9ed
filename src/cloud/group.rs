//! The BGP group operations: `CreateBgpGroup`, `ModifyBgpGroupAttribute`, `DeleteBgpGroup`
//! (and a by-ID `DescribeBgpGroups`), and [`AuthKey`], the MD5 key held only in memory.
//!
//! Parameters follow the official SDK model (`alibabacloud-vpc20160428`
//! `CreateBgpGroupRequest` / `ModifyBgpGroupAttributeRequest`) and the API reference.
//! ModifyBgpGroupAttribute documents `IsFakeAsn` as "false (default)", the same wording as
//! ModifyBgpPeerAttribute's `EnableBfd`, which switches BFD off when left out: so
//! [`ModifyBgpGroupAttributeRequest::is_fake_asn`] is a plain `bool`, sent in every call.
//!
//! **The auth key is a secret.** `DescribeBgpGroups` answers it in plain text; it is decoded
//! into an [`AuthKey`], whose `Debug` is redacted, which has no `Display` and no `Serialize`,
//! and which compares in constant time. Requests carry it the same way; its plain text exists
//! only in the signed query string of the one call that sends it (the client logs action,
//! region and error, never parameters).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::client::{Api, RetryPolicy, VpcClient};
use super::credentials::Credentials;
use super::error::CloudError;
use super::model::{
    BgpGroupInfo, DescribeBgpGroupsRequest, Params, RequestId, check_client_token, push, push_str,
    require,
};

/// A BGP MD5 authentication key. Never printed (`Debug` shows `AuthKey(<redacted>)`), never
/// serialized, compared in constant time.
#[derive(Clone)]
pub struct AuthKey(String);

impl AuthKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        AuthKey(key.into())
    }

    /// The plain key, for the one request parameter that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether two keys are equal, in time independent of where they differ.
    pub fn matches(&self, other: &AuthKey) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        let mut diff = a.len() ^ b.len();
        for i in 0..a.len().max(b.len()) {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            diff |= usize::from(x ^ y);
        }
        diff == 0
    }

    /// Length in characters (for validation messages that must not show the key).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl PartialEq for AuthKey {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for AuthKey {}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

/// Decodes `AuthKey` of a DescribeBgpGroups item: `""` and null are `None`.
pub(crate) fn de_auth_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AuthKey>, D::Error> {
    // Only a string is a key; any other JSON type is treated as no key rather than echoed
    // in a decode error (which would be logged).
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(AuthKey(s)),
        _ => None,
    })
}

/// `CreateBgpGroup`: creates a BGP group on a VBR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateBgpGroupRequest {
    /// Region of the VBR.
    pub region_id: String,
    /// The VBR (`vbr-…`).
    pub router_id: String,
    /// ASN of the on-premises router (required; not 45104).
    pub peer_asn: u32,
    /// ASN on the Alibaba Cloud side (45104 when `None`).
    pub local_asn: Option<u32>,
    /// MD5 authentication key.
    pub auth_key: Option<AuthKey>,
    /// Whether to use a fake ASN (false when `None`).
    pub is_fake_asn: Option<bool>,
    /// `IPv4` (default) or `IPv6`.
    pub ip_version: Option<String>,
    /// Maximum routes per peer (110 when `None`).
    pub route_quota: Option<u32>,
    /// Name, 2–128 characters.
    pub name: Option<String>,
    /// Description, 2–256 characters.
    pub description: Option<String>,
    /// Idempotency token (≤ 64 ASCII characters). With a token, a failed attempt that may
    /// have reached the server (transport error, 5xx) is retried with the same token.
    pub client_token: Option<String>,
}

impl CreateBgpGroupRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("RouterId", &self.router_id)?;
        check_client_token(&self.client_token)?;
        if self.peer_asn == 0 {
            return Err(CloudError::invalid_request("PeerAsn is required"));
        }
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("RouterId".to_owned(), self.router_id.clone()),
            ("PeerAsn".to_owned(), self.peer_asn.to_string()),
        ];
        push(&mut p, "LocalAsn", self.local_asn);
        push_auth_key(&mut p, &self.auth_key)?;
        push(&mut p, "IsFakeAsn", self.is_fake_asn);
        push_str(&mut p, "IpVersion", &self.ip_version);
        push(&mut p, "RouteQuota", self.route_quota);
        push_str(&mut p, "Name", &self.name);
        push_str(&mut p, "Description", &self.description);
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

fn push_auth_key(p: &mut Params, key: &Option<AuthKey>) -> Result<(), CloudError> {
    if let Some(k) = key {
        if k.expose().is_empty() {
            return Err(CloudError::invalid_request("AuthKey must not be empty"));
        }
        p.push(("AuthKey".to_owned(), k.expose().to_owned()));
    }
    Ok(())
}

/// The answer to `CreateBgpGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBgpGroupResponse {
    /// Request id.
    #[serde(rename = "RequestId", default)]
    pub request_id: String,
    /// The new group's id (`bgpg-…`).
    #[serde(rename = "BgpGroupId")]
    pub bgp_group_id: String,
}

/// `ModifyBgpGroupAttribute`: changes a group's ASNs, key, name, description or route quota.
/// `None` leaves a field out of the call; `is_fake_asn` is always sent (documented default
/// false).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyBgpGroupAttributeRequest {
    /// Region of the group.
    pub region_id: String,
    /// The group (`bgpg-…`).
    pub bgp_group_id: String,
    /// New peer ASN.
    pub peer_asn: Option<u32>,
    /// New local ASN.
    pub local_asn: Option<u32>,
    /// Fake ASN on or off after the call (always sent).
    pub is_fake_asn: bool,
    /// New MD5 key.
    pub auth_key: Option<AuthKey>,
    /// Remove the group's MD5 key (not with `auth_key`).
    pub clear_auth_key: bool,
    /// New route quota.
    pub route_quota: Option<u32>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
}

impl ModifyBgpGroupAttributeRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("BgpGroupId", &self.bgp_group_id)?;
        check_client_token(&self.client_token)?;
        if self.clear_auth_key && self.auth_key.is_some() {
            return Err(CloudError::invalid_request(
                "AuthKey and ClearAuthKey cannot be sent together",
            ));
        }
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("BgpGroupId".to_owned(), self.bgp_group_id.clone()),
        ];
        push(&mut p, "PeerAsn", self.peer_asn);
        push(&mut p, "LocalAsn", self.local_asn);
        p.push(("IsFakeAsn".to_owned(), self.is_fake_asn.to_string()));
        push_auth_key(&mut p, &self.auth_key)?;
        if self.clear_auth_key {
            p.push(("ClearAuthKey".to_owned(), "true".to_owned()));
        }
        push(&mut p, "RouteQuota", self.route_quota);
        push_str(&mut p, "Name", &self.name);
        push_str(&mut p, "Description", &self.description);
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

/// `DeleteBgpGroup` (refused with `DependencyViolation.BgpPeer` while the group has peers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteBgpGroupRequest {
    /// Region of the group.
    pub region_id: String,
    /// The group (`bgpg-…`).
    pub bgp_group_id: String,
    /// Idempotency token.
    pub client_token: Option<String>,
}

impl DeleteBgpGroupRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("BgpGroupId", &self.bgp_group_id)?;
        check_client_token(&self.client_token)?;
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("BgpGroupId".to_owned(), self.bgp_group_id.clone()),
        ];
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

impl VpcClient {
    /// `CreateBgpGroup`. Retried (same ClientToken) only if `client_token` is set and the
    /// failure was a transport error or 5xx.
    pub async fn create_bgp_group(
        &self,
        creds: &Credentials,
        req: &CreateBgpGroupRequest,
    ) -> Result<CreateBgpGroupResponse, CloudError> {
        let params = req.to_params()?;
        self.call(
            creds,
            Api::Vpc,
            "CreateBgpGroup",
            &req.region_id,
            params,
            RetryPolicy::mutating(&req.client_token),
        )
        .await
    }

    /// `ModifyBgpGroupAttribute`. Same retry rule as [`VpcClient::create_bgp_group`].
    pub async fn modify_bgp_group_attribute(
        &self,
        creds: &Credentials,
        req: &ModifyBgpGroupAttributeRequest,
    ) -> Result<RequestId, CloudError> {
        self.request_id_call(
            creds,
            "ModifyBgpGroupAttribute",
            &req.region_id,
            req.to_params()?,
            &req.client_token,
        )
        .await
    }

    /// `DeleteBgpGroup`. Same retry rule as [`VpcClient::create_bgp_group`].
    pub async fn delete_bgp_group(
        &self,
        creds: &Credentials,
        req: &DeleteBgpGroupRequest,
    ) -> Result<RequestId, CloudError> {
        self.request_id_call(
            creds,
            "DeleteBgpGroup",
            &req.region_id,
            req.to_params()?,
            &req.client_token,
        )
        .await
    }

    /// One group by ID (`DescribeBgpGroups` filtered by `BgpGroupId`); `None` when the answer
    /// is empty (a missing ID is an empty list, not an error; it may also be a group created
    /// a moment ago and not yet visible).
    pub async fn describe_bgp_group(
        &self,
        creds: &Credentials,
        region_id: &str,
        bgp_group_id: &str,
    ) -> Result<Option<BgpGroupInfo>, CloudError> {
        let page = self
            .describe_bgp_groups(
                creds,
                &DescribeBgpGroupsRequest {
                    region_id: region_id.to_owned(),
                    bgp_group_id: Some(bgp_group_id.to_owned()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(page
            .groups
            .into_iter()
            .find(|g| g.bgp_group_id == bgp_group_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
        p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn auth_key_is_never_printed_and_compares_by_value() {
        let k = AuthKey::new("s3cr3t-md5");
        assert_eq!(format!("{k:?}"), "AuthKey(<redacted>)");
        let req = CreateBgpGroupRequest {
            auth_key: Some(k.clone()),
            ..Default::default()
        };
        assert!(!format!("{req:?}").contains("s3cr3t"));
        assert!(k.matches(&AuthKey::new("s3cr3t-md5")));
        assert!(!k.matches(&AuthKey::new("s3cr3t-md6")));
        assert!(!k.matches(&AuthKey::new("s3cr3t-md5x")));
        assert!(!k.matches(&AuthKey::new("")));
        assert_eq!(k.char_count(), 10);
    }

    #[test]
    fn create_params() {
        let req = CreateBgpGroupRequest {
            region_id: "cn-shanghai".into(),
            router_id: "vbr-1".into(),
            peer_asn: 65010,
            local_asn: Some(64512),
            auth_key: Some(AuthKey::new("k")),
            is_fake_asn: Some(true),
            ip_version: Some("IPv6".into()),
            route_quota: Some(200),
            name: Some("edge".into()),
            description: Some("Edge group".into()),
            client_token: Some("abo-1".into()),
        };
        let p = req.to_params().unwrap();
        for (k, v) in [
            ("RegionId", "cn-shanghai"),
            ("RouterId", "vbr-1"),
            ("PeerAsn", "65010"),
            ("LocalAsn", "64512"),
            ("AuthKey", "k"),
            ("IsFakeAsn", "true"),
            ("IpVersion", "IPv6"),
            ("RouteQuota", "200"),
            ("Name", "edge"),
            ("Description", "Edge group"),
            ("ClientToken", "abo-1"),
        ] {
            assert_eq!(value(&p, k), Some(v), "{k}");
        }
        let minimal = CreateBgpGroupRequest {
            region_id: "cn-shanghai".into(),
            router_id: "vbr-1".into(),
            peer_asn: 65010,
            ..Default::default()
        };
        assert_eq!(minimal.to_params().unwrap().len(), 3);
        assert!(
            CreateBgpGroupRequest {
                peer_asn: 0,
                ..minimal.clone()
            }
            .to_params()
            .is_err()
        );
        assert!(
            CreateBgpGroupRequest {
                auth_key: Some(AuthKey::new("")),
                ..minimal
            }
            .to_params()
            .is_err()
        );
    }

    #[test]
    fn modify_always_states_is_fake_asn_and_never_key_with_clear() {
        let req = ModifyBgpGroupAttributeRequest {
            region_id: "cn-shanghai".into(),
            bgp_group_id: "bgpg-1".into(),
            ..Default::default()
        };
        let p = req.to_params().unwrap();
        assert_eq!(value(&p, "IsFakeAsn"), Some("false"));
        assert_eq!(value(&p, "ClearAuthKey"), None);
        assert_eq!(value(&p, "AuthKey"), None);
        let clear = ModifyBgpGroupAttributeRequest {
            clear_auth_key: true,
            ..req.clone()
        };
        assert_eq!(
            value(&clear.to_params().unwrap(), "ClearAuthKey"),
            Some("true")
        );
        let both = ModifyBgpGroupAttributeRequest {
            clear_auth_key: true,
            auth_key: Some(AuthKey::new("k")),
            ..req
        };
        assert!(both.to_params().is_err());
    }

    #[test]
    fn decoded_groups_keep_the_key_redacted() {
        let info: BgpGroupInfo = serde_json::from_str(
            r#"{"BgpGroupId":"bgpg-1","AuthKey":"pl41n-k3y","IsFake":"false","LocalAsn":"45104"}"#,
        )
        .unwrap();
        assert!(
            info.auth_key
                .as_ref()
                .is_some_and(|k| k.matches(&AuthKey::new("pl41n-k3y")))
        );
        assert!(!format!("{info:?}").contains("pl41n"));
        assert!(!serde_json::to_string(&info).unwrap().contains("pl41n"));
        let none: BgpGroupInfo =
            serde_json::from_str(r#"{"BgpGroupId":"bgpg-1","AuthKey":""}"#).unwrap();
        assert!(none.auth_key.is_none());
        let odd: BgpGroupInfo =
            serde_json::from_str(r#"{"BgpGroupId":"bgpg-1","AuthKey":{"x":"pl41n"}}"#).unwrap();
        assert!(odd.auth_key.is_none());
    }
}
