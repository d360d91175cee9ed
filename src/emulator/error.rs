//! API errors as the real VPC and STS gateways return them: an HTTP status, a code and a message.

use std::borrow::Cow;

/// An error answered to an API caller (rendered as `{"RequestId","HostId","Code","Message","Recommend"}`
/// or as `<Error>…</Error>`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Error code, e.g. `InvalidRegionId.NotFound`.
    pub code: Cow<'static, str>,
    /// Human-readable message.
    pub message: Cow<'static, str>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// An error with a documented code; the status and message come from [`known_error`], or
    /// 400 and a generic message if the code is not in the catalogue.
    pub fn from_code(code: &str) -> Self {
        match known_error(code) {
            Some((status, message)) => Self::new(status, code.to_owned(), message),
            None => Self::new(400, code.to_owned(), "The request has failed."),
        }
    }

    /// `Missing{Param}`: a required parameter is absent, as the POP gateway reports it.
    pub fn missing(param: &str) -> Self {
        Self::new(
            400,
            format!("Missing{param}"),
            format!("{param} is mandatory for this action."),
        )
    }

    /// `InvalidParameter`: a parameter has the wrong type or is out of its documented range.
    pub fn invalid_parameter(param: &str) -> Self {
        Self::new(
            400,
            "InvalidParameter",
            format!("The specified parameter \"{param}\" is not valid."),
        )
    }

    /// `IncompleteSignature` with the gateway's wording, plus `detail` (what is missing).
    pub fn incomplete_signature(detail: &str) -> Self {
        Self::new(
            400,
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards. {detail}"),
        )
    }

    /// `SignatureDoesNotMatch` for a V3 request: the gateway's V3 wording ("Specified signature
    /// does not match our calculation."), then the string to sign after `server string to sign
    /// is:` as the V1 answer has it (the SDK cross-tests read it there).
    pub fn signature_mismatch_v3(string_to_sign: &str) -> Self {
        Self::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature does not match our calculation. server string to sign is:{string_to_sign}"
            ),
        )
    }

    /// `SignatureDoesNotMatch`, quoting the string to sign the server computed.
    pub fn signature_mismatch(string_to_sign: &str) -> Self {
        Self::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        )
    }
}

/// Codes the emulator emits, with their HTTP status and message (seed page CreateBgpPeer.md and
/// the reference's common-error table). Fault injection uses this table to fill in a message.
pub const CATALOGUE: &[(&str, u16, &str)] = &[
    // Generic VBR/BGP table (CreateBgpPeer, CreateBgpGroup, DeleteBgpPeer, DeleteBgpGroup).
    (
        "InvalidRegionId.NotFound",
        404,
        "Specified value of \"regionId\" is not supported.",
    ),
    (
        "QuotaExceeded.Bgp",
        400,
        "bgp peer count per vbr quota exceed.",
    ),
    ("QuotaExceeded.Nqa", 400, "nqa count per vbr quota exceed."),
    (
        "QuotaExceeded.BgpNetwork",
        400,
        "bgp network count per vbr quota exceed.",
    ),
    (
        "InvalidPeerIpAddress",
        400,
        "multi pconn peer ip can not be null.",
    ),
    ("InvalidVbrNetwork", 400, "vbr netowrk not exists"),
    ("InvalidBgpGroup", 400, "bgp group not exists"),
    (
        "InvalidBgpName.Malformed",
        400,
        "Specified Bgp Group name is not valid.",
    ),
    (
        "InvalidBgpDiscription.Malformed",
        400,
        "Specified Bgp Group description is not valid.",
    ),
    (
        "InvalidBgpDescription.Malformed",
        400,
        "Specified Bgp Group description is not valid.",
    ),
    (
        "InvalidBgpAuthkey.Malformed",
        400,
        "Specified Bgp Group authkey is not valid.",
    ),
    ("InvalidIP.Malformed", 400, "Ip malformed."),
    // ModifyBgpPeerAttribute's documented error.
    (
        "IllegalParam.IpAddress",
        400,
        "The specified IpAddress is illegal.",
    ),
    // Assumed: no documented code for a second peer with the same IP in a group.
    (
        "InvalidPeerIpAddress.AlreadyExists",
        400,
        "The specified peer IP address is already used by a BGP peer of the group.",
    ),
    (
        "InvalidPeerAsn.Malformed",
        400,
        "invalid peer asn cannot equals aliyun asn:45104",
    ),
    (
        "InvalidParams.NotNull",
        400,
        "invalid peer asn cannot equals aliyun asn:45104",
    ),
    ("InvalidParams.NotFound", 400, "vpc instance not found"),
    (
        "InvalidParams.AlreadyExists",
        400,
        "bgp network already exists",
    ),
    (
        "InvalidStatus.CannotOperate",
        400,
        "invalid status cannot operate",
    ),
    (
        "DependencyViolation.BgpPeer",
        400,
        "The specified bgp group still has bgp peers.",
    ),
    (
        "OperationConflict",
        400,
        "Request was denied due to conflict with a previous request.",
    ),
    (
        "IdempotentParameterMismatch",
        400,
        "The request uses the same client token as a previous, but non-identical request.",
    ),
    // Common errors.
    (
        "Throttling",
        400,
        "Request was denied due to request throttling.",
    ),
    (
        "Throttling.User",
        400,
        "Request was denied due to user flow control.",
    ),
    (
        "Throttling.Api",
        400,
        "Request was denied due to api flow control.",
    ),
    (
        "Throttling.Resource",
        429,
        "Request was denied due to resource flow control.",
    ),
    (
        "ServiceUnavailable",
        503,
        "The request has failed due to a temporary failure of the server.",
    ),
    (
        "InternalError",
        500,
        "The request processing has failed due to some unknown error, exception or failure.",
    ),
    (
        "UnknownError",
        500,
        "The request processing has failed due to some unknown error.",
    ),
    (
        "IncompleteSignature",
        400,
        "The request signature does not conform to Aliyun standards.",
    ),
    (
        "InvalidAccessKeyId.NotFound",
        404,
        "Specified access key is not found.",
    ),
    (
        "InvalidAccessKeyId.Inactive",
        400,
        "Specified access key is disabled.",
    ),
    (
        "InvalidTimeStamp.Format",
        400,
        "Specified time stamp or date value is not well formatted.",
    ),
    (
        "InvalidTimeStamp.Expired",
        400,
        "Specified time stamp or date value is expired.",
    ),
    (
        "SignatureNonceUsed",
        400,
        "Specified signature nonce was used already.",
    ),
    (
        "InvalidSignatureMethod",
        400,
        "Specified signature method is not valid.",
    ),
    (
        "InvalidSignatureVersion",
        400,
        "Specified signature version is not valid.",
    ),
    (
        "UnsupportedHTTPMethod",
        400,
        "Specified http method is not supported.",
    ),
    (
        "InvalidAction.NotFound",
        404,
        "Specified api is not found, please check your url and method.",
    ),
    (
        "InvalidApi.NotFound",
        404,
        "Specified api is not found, please check your url and method.",
    ),
    (
        "InvalidVersion",
        400,
        "Specified parameter Version is not valid.",
    ),
    (
        "InvalidSecurityToken.MismatchWithAccessKey",
        400,
        "Specified SecurityToken mismatch with the AccessKey.",
    ),
    (
        "InvalidSecurityToken.Expired",
        400,
        "Specified SecurityToken is expired.",
    ),
    (
        "Forbidden.RAM",
        403,
        "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
    ),
    (
        "InvalidParameter",
        400,
        "The specified parameter is not valid.",
    ),
];

/// The HTTP status and message of a catalogued error code.
pub fn known_error(code: &str) -> Option<(u16, &'static str)> {
    CATALOGUE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, status, message)| (*status, *message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_codes_are_unique_and_statuses_plausible() {
        let mut seen = std::collections::HashSet::new();
        for (code, status, message) in CATALOGUE {
            assert!(seen.insert(*code), "duplicate code {code}");
            assert!((400..600).contains(status), "{code}");
            assert!(!message.is_empty(), "{code}");
        }
    }

    #[test]
    fn from_code_uses_catalogue() {
        let e = ApiError::from_code("InvalidRegionId.NotFound");
        assert_eq!(e.status, 404);
        assert_eq!(
            e.message,
            "Specified value of \"regionId\" is not supported."
        );
        let unknown = ApiError::from_code("Some.Other");
        assert_eq!(unknown.status, 400);
        assert_eq!(unknown.code, "Some.Other");
    }

    #[test]
    fn missing_and_invalid_parameter_wording() {
        let e = ApiError::missing("RegionId");
        assert_eq!(e.code, "MissingRegionId");
        assert_eq!(e.message, "RegionId is mandatory for this action.");
        let e = ApiError::invalid_parameter("PageSize");
        assert_eq!(e.code, "InvalidParameter");
        assert_eq!(
            e.message,
            "The specified parameter \"PageSize\" is not valid."
        );
    }
}
