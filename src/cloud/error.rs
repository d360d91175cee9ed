//! Typed errors of the VPC client and the classification of API error codes.
//!
//! Every failure of a call is a [`CloudError`]. [`CloudError::class`] maps it to an
//! [`ErrorClass`], which is what the controller's error policy matches on: one requeue rule
//! per class. The code-by-code table lives in [`CLASSIFICATION`] so the README and the
//! controller tests can use the same data.
//!
//! No variant carries credentials: messages come from the server or from the transport
//! layer with the URL stripped (a V1 URL holds the `SecurityToken`).

use std::fmt;
use std::time::Duration;

/// Upper bound applied to a server-sent `x-acs-retry-after` hint (the Tea SDK caps it the same way).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// What the caller should do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The request itself is wrong (bad parameter, unknown action): the spec must change.
    Terminal,
    /// Something the request refers to does not exist (region, VBR, BGP group, instance).
    DependencyMissing,
    /// An account or VBR quota is exhausted.
    Quota,
    /// The resource is in a state that forbids the operation right now (conflict, busy).
    Busy,
    /// The API throttled the caller: slow down and retry later.
    Throttled,
    /// A temporary server, network or clock/nonce problem: retry with backoff.
    Transient,
    /// The credentials are missing, wrong, expired or not authorised.
    Credentials,
    /// The ClientToken was reused with different parameters.
    IdempotencyMismatch,
    /// An unknown code: kept verbatim; callers treat it as transient.
    Unknown,
}

impl ErrorClass {
    /// Every class, in declaration order.
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::Terminal,
        ErrorClass::DependencyMissing,
        ErrorClass::Quota,
        ErrorClass::Busy,
        ErrorClass::Throttled,
        ErrorClass::Transient,
        ErrorClass::Credentials,
        ErrorClass::IdempotencyMismatch,
        ErrorClass::Unknown,
    ];

    /// A stable CamelCase name, usable as a condition reason or metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Terminal => "Terminal",
            ErrorClass::DependencyMissing => "DependencyMissing",
            ErrorClass::Quota => "Quota",
            ErrorClass::Busy => "Busy",
            ErrorClass::Throttled => "Throttled",
            ErrorClass::Transient => "Transient",
            ErrorClass::Credentials => "Credentials",
            ErrorClass::IdempotencyMismatch => "IdempotencyMismatch",
            ErrorClass::Unknown => "Unknown",
        }
    }

    /// Whether retrying the same request later can succeed without any change to the spec
    /// or the account: true for busy, throttled, transient and unknown errors.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Busy | ErrorClass::Throttled | ErrorClass::Transient | ErrorClass::Unknown
        )
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer of the VPC API (or of STS), as sent by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the answer.
    pub http_status: u16,
    /// The API error code, verbatim (e.g. `InvalidBgpGroup`). When the body carried no code,
    /// `HttpStatus<NNN>` (e.g. `HttpStatus502`).
    pub code: String,
    /// The server's message.
    pub message: String,
    /// The request id, from the body or the `x-acs-request-id` header.
    pub request_id: Option<String>,
    /// The server's `x-acs-retry-after` hint, capped at [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An API error without a retry hint.
    pub fn new(
        http_status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
        request_id: Option<String>,
    ) -> Self {
        ApiError {
            http_status,
            code: code.into(),
            message: message.into(),
            request_id,
            retry_after: None,
        }
    }

    /// The class of this error, from its code and HTTP status.
    pub fn class(&self) -> ErrorClass {
        classify(&self.code, self.http_status)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (HTTP {}): {}",
            self.code, self.http_status, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [RequestId: {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Any failure of a VPC or STS call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    /// The API answered with an error code.
    #[error("API error {0}")]
    Api(ApiError),
    /// No usable answer: connection refused or reset, timeout, TLS failure.
    #[error("transport error calling {action}: {message}")]
    Transport {
        /// The API action being called.
        action: String,
        /// What went wrong (never includes the request URL).
        message: String,
        /// Whether the failure was a timeout.
        timeout: bool,
    },
    /// No credentials could be found, or the credential provider failed.
    #[error("credentials error: {message}")]
    Credentials {
        /// What went wrong (never includes secrets).
        message: String,
    },
    /// The API answered with a body that could not be understood.
    #[error("cannot decode the {action} response: {message}")]
    Decode {
        /// The API action being called.
        action: String,
        /// What went wrong.
        message: String,
    },
    /// The request was rejected before sending because it cannot be valid
    /// (e.g. `PageSize` outside 1..=50, a ClientToken longer than 64 characters).
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong with the request.
        message: String,
    },
}

impl CloudError {
    /// The class of this error, for the caller's retry policy.
    pub fn class(&self) -> ErrorClass {
        match self {
            CloudError::Api(api) => api.class(),
            CloudError::Transport { .. } => ErrorClass::Transient,
            CloudError::Credentials { .. } => ErrorClass::Credentials,
            CloudError::Decode { .. } => ErrorClass::Unknown,
            CloudError::InvalidRequest { .. } => ErrorClass::Terminal,
        }
    }

    /// The API error code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api(api) => Some(api.code.as_str()),
            _ => None,
        }
    }

    /// The request id of the failed call, if known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CloudError::Api(api) => api.request_id.as_deref(),
            _ => None,
        }
    }

    /// How long the server asked the caller to wait before retrying (`x-acs-retry-after`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CloudError::Api(api) => api.retry_after,
            _ => None,
        }
    }

    /// The HTTP status of the answer, if there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CloudError::Api(api) => Some(api.http_status),
            _ => None,
        }
    }

    /// A short label for metrics: the API code, or the variant name.
    pub fn outcome_label(&self) -> &str {
        match self {
            CloudError::Api(api) => api.code.as_str(),
            CloudError::Transport { .. } => "Transport",
            CloudError::Credentials { .. } => "Credentials",
            CloudError::Decode { .. } => "Decode",
            CloudError::InvalidRequest { .. } => "InvalidRequest",
        }
    }

    pub(crate) fn credentials(message: impl Into<String>) -> Self {
        CloudError::Credentials {
            message: message.into(),
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        CloudError::InvalidRequest {
            message: message.into(),
        }
    }

    /// A transport error from reqwest, with the URL (which may hold a V1 `SecurityToken`)
    /// stripped.
    pub(crate) fn transport(action: &str, err: reqwest::Error) -> Self {
        let timeout = err.is_timeout();
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        CloudError::Transport {
            action: action.to_owned(),
            message,
            timeout,
        }
    }

    pub(crate) fn decode(action: &str, message: impl Into<String>) -> Self {
        CloudError::Decode {
            action: action.to_owned(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for CloudError {
    fn from(api: ApiError) -> Self {
        CloudError::Api(api)
    }
}

/// Every documented error code with its documented HTTP status and its class.
///
/// Sources: the CreateBgpPeer error table, the generic VBR/BGP error table shared by the
/// BGP operations, the codes Terraform handles, and the common gateway errors (reference
/// `vpc-bgp-api.md` sections 1 and 2). Codes not listed here are classified by the rules of
/// [`classify`].
pub const CLASSIFICATION: &[(&str, u16, ErrorClass)] = &[
    // Generic VBR/BGP table (CreateBgpPeer and friends).
    (
        "InvalidRegionId.NotFound",
        404,
        ErrorClass::DependencyMissing,
    ),
    ("QuotaExceeded.Bgp", 400, ErrorClass::Quota),
    ("QuotaExceeded.Nqa", 400, ErrorClass::Quota),
    ("QuotaExceeded.BgpNetwork", 400, ErrorClass::Quota),
    ("InvalidPeerIpAddress", 400, ErrorClass::Terminal),
    // ModifyBgpPeerAttribute's documented refusal of a peer IP.
    ("IllegalParam.IpAddress", 400, ErrorClass::Terminal),
    // A second peer with the same IP in one group (the emulator's code; the real one is
    // undocumented, see docs/cloud-fidelity.md).
    (
        "InvalidPeerIpAddress.AlreadyExists",
        400,
        ErrorClass::Terminal,
    ),
    ("InvalidVbrNetwork", 400, ErrorClass::DependencyMissing),
    ("InvalidBgpGroup", 400, ErrorClass::DependencyMissing),
    ("InvalidBgpName.Malformed", 400, ErrorClass::Terminal),
    ("InvalidBgpDiscription.Malformed", 400, ErrorClass::Terminal),
    ("InvalidBgpDescription.Malformed", 400, ErrorClass::Terminal),
    ("InvalidBgpAuthkey.Malformed", 400, ErrorClass::Terminal),
    ("InvalidIP.Malformed", 400, ErrorClass::Terminal),
    ("InvalidPeerAsn.Malformed", 400, ErrorClass::Terminal),
    ("InvalidParams.NotNull", 400, ErrorClass::Terminal),
    ("InvalidParams.NotFound", 400, ErrorClass::DependencyMissing),
    ("InvalidParams.AlreadyExists", 400, ErrorClass::Terminal),
    ("InvalidStatus.CannotOperate", 400, ErrorClass::Busy),
    // Codes Terraform retries for BGP resources.
    ("OperationConflict", 409, ErrorClass::Busy),
    ("DependencyViolation.BgpPeer", 400, ErrorClass::Busy),
    // Common gateway errors.
    ("Throttling", 400, ErrorClass::Throttled),
    ("Throttling.User", 400, ErrorClass::Throttled),
    ("Throttling.Api", 400, ErrorClass::Throttled),
    ("Throttling.Resource", 429, ErrorClass::Throttled),
    ("Rejected.Throttling", 400, ErrorClass::Throttled),
    ("ServiceUnavailable", 503, ErrorClass::Transient),
    ("InternalError", 500, ErrorClass::Transient),
    ("UnknownError", 500, ErrorClass::Transient),
    ("SignatureDoesNotMatch", 400, ErrorClass::Credentials),
    ("IncompleteSignature", 400, ErrorClass::Credentials),
    ("InvalidAccessKeyId.NotFound", 404, ErrorClass::Credentials),
    ("InvalidAccessKeyId.Inactive", 400, ErrorClass::Credentials),
    ("InvalidSecurityToken.Expired", 400, ErrorClass::Credentials),
    (
        "InvalidSecurityToken.Malformed",
        400,
        ErrorClass::Credentials,
    ),
    (
        "InvalidSecurityToken.MismatchWithAccessKey",
        400,
        ErrorClass::Credentials,
    ),
    ("Forbidden.RAM", 403, ErrorClass::Credentials),
    ("Forbidden", 403, ErrorClass::Credentials),
    ("Forbidden.AccessKeyDisabled", 403, ErrorClass::Credentials),
    ("InvalidTimeStamp.Format", 400, ErrorClass::Transient),
    ("InvalidTimeStamp.Expired", 400, ErrorClass::Transient),
    ("SignatureNonceUsed", 400, ErrorClass::Transient),
    ("InvalidSignatureMethod", 400, ErrorClass::Terminal),
    ("UnsupportedHTTPMethod", 400, ErrorClass::Terminal),
    ("InvalidApi.NotFound", 404, ErrorClass::Terminal),
    ("InvalidAction.NotFound", 404, ErrorClass::Terminal),
    ("MissingParameter", 400, ErrorClass::Terminal),
    ("MissingBgpGroupId", 400, ErrorClass::Terminal),
    ("MissingRegionId", 400, ErrorClass::Terminal),
    ("InvalidParameter", 400, ErrorClass::Terminal),
    (
        "IdempotentParameterMismatch",
        400,
        ErrorClass::IdempotencyMismatch,
    ),
    (
        "IdempotentParameterMismatch",
        403,
        ErrorClass::IdempotencyMismatch,
    ),
];

/// [`CLASSIFICATION`] as a Markdown table (`| Code | HTTP | Class |`), for the README.
pub fn classification_markdown() -> String {
    let mut out = String::from("| Code | HTTP | Class |\n|---|---|---|\n");
    for (code, status, class) in CLASSIFICATION {
        out.push_str(&format!("| `{code}` | {status} | {class} |\n"));
    }
    out
}

/// Exact codes and their classes (the explicit part of the rules).
const EXACT: &[(&str, ErrorClass)] = &[
    ("InvalidRegionId.NotFound", ErrorClass::DependencyMissing),
    ("InvalidVbrNetwork", ErrorClass::DependencyMissing),
    ("InvalidBgpGroup", ErrorClass::DependencyMissing),
    ("InvalidParams.NotFound", ErrorClass::DependencyMissing),
    ("InvalidPeerIpAddress", ErrorClass::Terminal),
    ("IllegalParam.IpAddress", ErrorClass::Terminal),
    ("InvalidPeerIpAddress.AlreadyExists", ErrorClass::Terminal),
    ("InvalidParams.NotNull", ErrorClass::Terminal),
    ("InvalidParams.AlreadyExists", ErrorClass::Terminal),
    ("InvalidParameter", ErrorClass::Terminal),
    ("InvalidSignatureMethod", ErrorClass::Terminal),
    ("UnsupportedHTTPMethod", ErrorClass::Terminal),
    ("InvalidApi.NotFound", ErrorClass::Terminal),
    ("InvalidAction.NotFound", ErrorClass::Terminal),
    ("InvalidStatus.CannotOperate", ErrorClass::Busy),
    ("OperationConflict", ErrorClass::Busy),
    ("DependencyViolation.BgpPeer", ErrorClass::Busy),
    ("InternalError", ErrorClass::Transient),
    ("ServiceUnavailable", ErrorClass::Transient),
    ("UnknownError", ErrorClass::Transient),
    ("SignatureNonceUsed", ErrorClass::Transient),
    ("SignatureDoesNotMatch", ErrorClass::Credentials),
    ("IncompleteSignature", ErrorClass::Credentials),
    (
        "IdempotentParameterMismatch",
        ErrorClass::IdempotencyMismatch,
    ),
];

/// Classifies an API error code (with its HTTP status) into an [`ErrorClass`].
///
/// Rules, in order:
/// 1. exact codes (e.g. `InvalidBgpGroup` → DependencyMissing, `OperationConflict` → Busy);
/// 2. families: `QuotaExceeded*` → Quota; any code containing `Throttling` → Throttled;
///    `InvalidAccessKeyId*`, `InvalidSecurityToken*`, `Forbidden*` → Credentials;
///    `InvalidTimeStamp*` → Transient (retried with a fresh timestamp);
///    `Invalid*.Malformed`, `Missing*` → Terminal;
/// 3. by status: 5xx → Transient, 429 → Throttled;
/// 4. anything else → Unknown (the code is kept verbatim by [`ApiError`]).
pub fn classify(code: &str, http_status: u16) -> ErrorClass {
    if let Some((_, class)) = EXACT.iter().find(|(c, _)| *c == code) {
        return *class;
    }
    if code.starts_with("QuotaExceeded") {
        return ErrorClass::Quota;
    }
    if code.contains("Throttling") {
        return ErrorClass::Throttled;
    }
    if code.starts_with("InvalidAccessKeyId")
        || code.starts_with("InvalidSecurityToken")
        || code.starts_with("Forbidden")
    {
        return ErrorClass::Credentials;
    }
    if code.starts_with("InvalidTimeStamp") {
        return ErrorClass::Transient;
    }
    if (code.starts_with("Invalid") && code.ends_with(".Malformed")) || code.starts_with("Missing")
    {
        return ErrorClass::Terminal;
    }
    if (500..=599).contains(&http_status) {
        return ErrorClass::Transient;
    }
    if http_status == 429 {
        return ErrorClass::Throttled;
    }
    ErrorClass::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_entry_classifies_as_listed() {
        for (code, status, class) in CLASSIFICATION {
            assert_eq!(
                classify(code, *status),
                *class,
                "{code} (HTTP {status}) should be {class}"
            );
        }
    }

    /// Every code of the CreateBgpPeer seed table, with the class the brief requires.
    #[test]
    fn create_bgp_peer_seed_table() {
        let cases: &[(&str, u16, ErrorClass, &str)] = &[
            (
                "InvalidRegionId.NotFound",
                404,
                ErrorClass::DependencyMissing,
                "region gone",
            ),
            ("QuotaExceeded.Bgp", 400, ErrorClass::Quota, "quota"),
            ("QuotaExceeded.Nqa", 400, ErrorClass::Quota, "quota"),
            ("QuotaExceeded.BgpNetwork", 400, ErrorClass::Quota, "quota"),
            (
                "InvalidPeerIpAddress",
                400,
                ErrorClass::Terminal,
                "bad spec",
            ),
            (
                "InvalidVbrNetwork",
                400,
                ErrorClass::DependencyMissing,
                "VBR gone",
            ),
            (
                "InvalidBgpName.Malformed",
                400,
                ErrorClass::Terminal,
                "bad spec",
            ),
            (
                "InvalidBgpDiscription.Malformed",
                400,
                ErrorClass::Terminal,
                "bad spec (sic)",
            ),
            (
                "InvalidBgpAuthkey.Malformed",
                400,
                ErrorClass::Terminal,
                "bad spec",
            ),
            ("InvalidIP.Malformed", 400, ErrorClass::Terminal, "bad spec"),
            (
                "InvalidPeerAsn.Malformed",
                400,
                ErrorClass::Terminal,
                "bad spec",
            ),
            (
                "InvalidParams.NotNull",
                400,
                ErrorClass::Terminal,
                "bad spec",
            ),
            (
                "InvalidParams.NotFound",
                400,
                ErrorClass::DependencyMissing,
                "instance gone",
            ),
            (
                "InvalidParams.AlreadyExists",
                400,
                ErrorClass::Terminal,
                "duplicate",
            ),
            (
                "InvalidStatus.CannotOperate",
                400,
                ErrorClass::Busy,
                "resource busy",
            ),
        ];
        for (code, status, class, reason) in cases {
            assert_eq!(classify(code, *status), *class, "{code}: {reason}");
            assert!(
                CLASSIFICATION
                    .iter()
                    .any(|(c, s, k)| c == code && s == status && k == class),
                "{code} missing from CLASSIFICATION"
            );
        }
    }

    #[test]
    fn common_and_section_two_codes() {
        let cases: &[(&str, u16, ErrorClass)] = &[
            ("InvalidBgpGroup", 400, ErrorClass::DependencyMissing),
            ("OperationConflict", 409, ErrorClass::Busy),
            ("DependencyViolation.BgpPeer", 400, ErrorClass::Busy),
            ("Throttling", 400, ErrorClass::Throttled),
            ("Throttling.User", 400, ErrorClass::Throttled),
            ("Throttling.Api", 400, ErrorClass::Throttled),
            ("Throttling.Resource", 429, ErrorClass::Throttled),
            ("ServiceUnavailable", 503, ErrorClass::Transient),
            ("InternalError", 500, ErrorClass::Transient),
            ("UnknownError", 502, ErrorClass::Transient),
            ("SignatureDoesNotMatch", 400, ErrorClass::Credentials),
            ("SignatureDoesNotMatch", 403, ErrorClass::Credentials),
            ("IncompleteSignature", 400, ErrorClass::Credentials),
            ("InvalidAccessKeyId.NotFound", 404, ErrorClass::Credentials),
            ("InvalidAccessKeyId.Inactive", 400, ErrorClass::Credentials),
            ("InvalidTimeStamp.Format", 400, ErrorClass::Transient),
            ("InvalidTimeStamp.Expired", 400, ErrorClass::Transient),
            ("SignatureNonceUsed", 400, ErrorClass::Transient),
            ("InvalidSignatureMethod", 400, ErrorClass::Terminal),
            ("UnsupportedHTTPMethod", 400, ErrorClass::Terminal),
            ("InvalidApi.NotFound", 404, ErrorClass::Terminal),
            ("InvalidAction.NotFound", 404, ErrorClass::Terminal),
            ("MissingParameter", 400, ErrorClass::Terminal),
            ("MissingPeerIpAddress", 400, ErrorClass::Terminal),
            ("Forbidden.RAM", 403, ErrorClass::Credentials),
            ("Forbidden.Anything", 403, ErrorClass::Credentials),
            (
                "IdempotentParameterMismatch",
                400,
                ErrorClass::IdempotencyMismatch,
            ),
            (
                "IdempotentParameterMismatch",
                403,
                ErrorClass::IdempotencyMismatch,
            ),
        ];
        for (code, status, class) in cases {
            assert_eq!(classify(code, *status), *class, "{code} (HTTP {status})");
        }
    }

    #[test]
    fn fallbacks_by_status_and_unknown_codes() {
        assert_eq!(classify("SomethingNew", 400), ErrorClass::Unknown);
        assert_eq!(classify("SomethingNew", 404), ErrorClass::Unknown);
        assert_eq!(classify("SomethingNew", 500), ErrorClass::Transient);
        assert_eq!(classify("HttpStatus502", 502), ErrorClass::Transient);
        assert_eq!(classify("SomethingNew", 429), ErrorClass::Throttled);
        // A code-specific rule wins over the status fallback.
        assert_eq!(
            classify("InvalidBgpGroup", 500),
            ErrorClass::DependencyMissing
        );
        // A "Malformed" code that is not an Invalid* code is not assumed terminal.
        assert_eq!(classify("Something.Malformed", 400), ErrorClass::Unknown);
    }

    #[test]
    fn unknown_code_is_kept_verbatim() {
        let err = CloudError::Api(ApiError::new(
            400,
            "Brand.New.Code",
            "msg",
            Some("RID".into()),
        ));
        assert_eq!(err.code(), Some("Brand.New.Code"));
        assert_eq!(err.class(), ErrorClass::Unknown);
        assert!(err.class().is_retryable());
        assert_eq!(err.request_id(), Some("RID"));
    }

    #[test]
    fn non_api_errors_have_classes() {
        let t = CloudError::Transport {
            action: "DescribeBgpPeers".into(),
            message: "connection refused".into(),
            timeout: false,
        };
        assert_eq!(t.class(), ErrorClass::Transient);
        assert_eq!(t.code(), None);
        assert_eq!(t.outcome_label(), "Transport");
        assert_eq!(
            CloudError::credentials("none").class(),
            ErrorClass::Credentials
        );
        assert_eq!(CloudError::decode("X", "bad").class(), ErrorClass::Unknown);
        assert_eq!(
            CloudError::invalid_request("bad").class(),
            ErrorClass::Terminal
        );
    }

    #[test]
    fn display_has_code_message_and_request_id() {
        let err = CloudError::Api(ApiError::new(
            400,
            "InvalidBgpGroup",
            "bgp group not exists",
            Some("0ED8D006-F706".into()),
        ));
        let text = err.to_string();
        assert!(text.contains("InvalidBgpGroup"), "{text}");
        assert!(text.contains("bgp group not exists"), "{text}");
        assert!(text.contains("0ED8D006-F706"), "{text}");
        assert!(text.contains("400"), "{text}");
    }

    #[test]
    fn retry_after_is_exposed() {
        let mut api = ApiError::new(400, "Throttling", "slow down", None);
        api.retry_after = Some(Duration::from_millis(1500));
        let err = CloudError::from(api);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(err.class(), ErrorClass::Throttled);
    }

    #[test]
    fn markdown_table_lists_every_entry() {
        let md = classification_markdown();
        assert_eq!(md.lines().count(), CLASSIFICATION.len() + 2);
        assert!(
            md.contains("| `InvalidBgpGroup` | 400 | DependencyMissing |"),
            "{md}"
        );
    }

    #[test]
    fn class_names_are_distinct() {
        let mut names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorClass::ALL.len());
    }
}
