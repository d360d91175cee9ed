//! Where each region's VPC API lives.
//!
//! The current SDKs use the `regional` rule, `vpc.<region>.aliyuncs.com`, except for a map of
//! regions served by the central endpoint `vpc.aliyuncs.com` (or a special one). An endpoint
//! override (e.g. the emulator's `http://127.0.0.1:PORT`) is used for every region.

use reqwest::Url;

use super::error::CloudError;

/// The central VPC endpoint, which routes by `RegionId`.
pub const CENTRAL_ENDPOINT: &str = "vpc.aliyuncs.com";

/// Regions whose endpoint is not `vpc.<region>.aliyuncs.com` (the SDK's endpoint map for
/// VPC 2016-04-28).
pub const ENDPOINT_EXCEPTIONS: &[(&str, &str)] = &[
    ("cn-qingdao", CENTRAL_ENDPOINT),
    ("cn-beijing", CENTRAL_ENDPOINT),
    ("cn-hangzhou", CENTRAL_ENDPOINT),
    ("cn-shanghai", CENTRAL_ENDPOINT),
    ("cn-shenzhen", CENTRAL_ENDPOINT),
    ("cn-hongkong", CENTRAL_ENDPOINT),
    ("ap-southeast-1", CENTRAL_ENDPOINT),
    ("us-east-1", CENTRAL_ENDPOINT),
    ("us-west-1", CENTRAL_ENDPOINT),
    ("cn-shanghai-finance-1", CENTRAL_ENDPOINT),
    ("cn-shenzhen-finance-1", CENTRAL_ENDPOINT),
    ("cn-north-2-gov-1", CENTRAL_ENDPOINT),
    ("ap-northeast-2-pop", CENTRAL_ENDPOINT),
    ("cn-beijing-finance-pop", CENTRAL_ENDPOINT),
    ("cn-beijing-gov-1", CENTRAL_ENDPOINT),
    ("cn-beijing-nu16-b01", CENTRAL_ENDPOINT),
    ("cn-edge-1", "vpc-nebula.cn-qingdao-nebula.aliyuncs.com"),
    ("cn-fujian", CENTRAL_ENDPOINT),
    ("cn-haidian-cm12-c01", CENTRAL_ENDPOINT),
    ("cn-hangzhou-bj-b01", CENTRAL_ENDPOINT),
    ("cn-hangzhou-finance", CENTRAL_ENDPOINT),
    ("cn-hangzhou-internal-prod-1", CENTRAL_ENDPOINT),
    ("cn-hangzhou-internal-test-1", CENTRAL_ENDPOINT),
    ("cn-hangzhou-internal-test-2", CENTRAL_ENDPOINT),
    ("cn-hangzhou-internal-test-3", CENTRAL_ENDPOINT),
    ("cn-hangzhou-test-306", CENTRAL_ENDPOINT),
    ("cn-hongkong-finance-pop", CENTRAL_ENDPOINT),
    (
        "cn-huhehaote-nebula-1",
        "vpc-nebula.cn-qingdao-nebula.aliyuncs.com",
    ),
    (
        "cn-qingdao-nebula",
        "vpc-nebula.cn-qingdao-nebula.aliyuncs.com",
    ),
    ("cn-shanghai-et15-b01", CENTRAL_ENDPOINT),
    ("cn-shanghai-et2-b01", CENTRAL_ENDPOINT),
    ("cn-shanghai-inner", CENTRAL_ENDPOINT),
    ("cn-shanghai-internal-test-1", CENTRAL_ENDPOINT),
    ("cn-shenzhen-inner", CENTRAL_ENDPOINT),
    ("cn-shenzhen-st4-d01", CENTRAL_ENDPOINT),
    ("cn-shenzhen-su18-b01", CENTRAL_ENDPOINT),
    ("cn-wuhan", CENTRAL_ENDPOINT),
    ("cn-yushanfang", CENTRAL_ENDPOINT),
    ("cn-zhangbei", CENTRAL_ENDPOINT),
    ("cn-zhangbei-na61-b01", CENTRAL_ENDPOINT),
    ("cn-zhangjiakou-na62-a01", "vpc.cn-zhangjiakou.aliyuncs.com"),
    (
        "cn-zhengzhou-nebula-1",
        "vpc-nebula.cn-qingdao-nebula.aliyuncs.com",
    ),
    (
        "eu-west-1-oxs",
        "vpc-nebula.cn-shenzhen-cloudstone.aliyuncs.com",
    ),
    ("rus-west-1-pop", CENTRAL_ENDPOINT),
];

/// Checks that a region id is a plausible `[a-z0-9-]+` id (it becomes part of a host name).
pub fn validate_region(region: &str) -> Result<(), CloudError> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CloudError::invalid_request(format!(
            "invalid region id {region:?} (expected lower-case letters, digits and '-')"
        )))
    }
}

/// The VPC API host for `region`, without scheme.
pub fn regional_host(region: &str) -> String {
    ENDPOINT_EXCEPTIONS
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(_, host)| (*host).to_owned())
        .unwrap_or_else(|| format!("vpc.{region}.aliyuncs.com"))
}

/// The base URL (scheme, host, port; path `/`) for calls in `region`. An `override_endpoint`
/// without a scheme gets `https://`.
pub fn endpoint_url(region: &str, override_endpoint: Option<&str>) -> Result<Url, CloudError> {
    validate_region(region)?;
    let raw = match override_endpoint.map(str::trim).filter(|s| !s.is_empty()) {
        Some(e) if e.contains("://") => e.to_owned(),
        Some(e) => format!("https://{e}"),
        None => format!("https://{}", regional_host(region)),
    };
    let url = Url::parse(&raw)
        .map_err(|e| CloudError::invalid_request(format!("invalid endpoint {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CloudError::invalid_request(format!(
            "invalid endpoint {raw:?}: expected http(s)://host[:port]"
        )));
    }
    Ok(url)
}

/// The `Host` header value for `url`: host, plus `:port` when it is not the scheme's default.
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_and_central_hosts() {
        assert_eq!(regional_host("cn-hangzhou"), "vpc.aliyuncs.com");
        assert_eq!(regional_host("cn-hangzhou-finance"), "vpc.aliyuncs.com");
        assert_eq!(regional_host("cn-shanghai-finance-1"), "vpc.aliyuncs.com");
        assert_eq!(regional_host("cn-north-2-gov-1"), "vpc.aliyuncs.com");
        assert_eq!(
            regional_host("cn-hangzhou-internal-prod-1"),
            "vpc.aliyuncs.com"
        );
        assert_eq!(
            regional_host("eu-central-1"),
            "vpc.eu-central-1.aliyuncs.com"
        );
        assert_eq!(
            regional_host("cn-wulanchabu"),
            "vpc.cn-wulanchabu.aliyuncs.com"
        );
        assert_eq!(
            regional_host("cn-zhangjiakou-na62-a01"),
            "vpc.cn-zhangjiakou.aliyuncs.com"
        );
    }

    #[test]
    fn urls_and_host_headers() {
        let u = endpoint_url("eu-central-1", None).unwrap();
        assert_eq!(u.as_str(), "https://vpc.eu-central-1.aliyuncs.com/");
        assert_eq!(host_header(&u), "vpc.eu-central-1.aliyuncs.com");
        let u = endpoint_url("cn-shanghai", Some("http://127.0.0.1:8080")).unwrap();
        assert_eq!(host_header(&u), "127.0.0.1:8080");
        assert_eq!(u.scheme(), "http");
        let u = endpoint_url("cn-shanghai", Some("vpc.example.test")).unwrap();
        assert_eq!(u.as_str(), "https://vpc.example.test/");
        let u = endpoint_url("cn-shanghai", Some("https://vpc.example.test:443")).unwrap();
        assert_eq!(host_header(&u), "vpc.example.test");
    }

    #[test]
    fn bad_regions_and_endpoints_are_rejected() {
        for bad in ["", "CN-HANGZHOU", "evil.com/x", "a b", "-x", "x-", "cn_hz"] {
            assert!(endpoint_url(bad, None).is_err(), "{bad:?} accepted");
        }
        assert!(endpoint_url("cn-shanghai", Some("ftp://x")).is_err());
    }
}
