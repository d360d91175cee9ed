//! The wire format: reading an RPC request (query + form body, V1 or V3 headers) and writing
//! JSON or XML responses and error bodies as the real gateway does.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::params::Params;
use super::sign::{self, V3Authorization};

/// Response body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/xml` (the V1 default).
    Xml,
}

/// How the request is authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// RPC V1: `Signature` etc. among the parameters.
    V1,
    /// V3: an `Authorization: ACS3-HMAC-SHA256 …` header (`None` if it did not parse).
    V3(Option<V3Authorization>),
}

/// One API request as received.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Path as received.
    pub path: String,
    /// Raw query string.
    pub raw_query: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Query and form-body parameters merged (the body wins on a repeated key).
    pub params: Params,
    /// `x-acs-action` header, else the `Action` parameter.
    pub action: Option<String>,
    /// `x-acs-version` header, else the `Version` parameter.
    pub version: Option<String>,
    /// Requested response format.
    pub format: Format,
    /// Signature scheme.
    pub auth: Auth,
    /// Host header (for `HostId`).
    pub host: String,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn form_pairs(text: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(text).unwrap_or_default()
}

impl ApiRequest {
    /// Reads the parts of an HTTP request.
    pub fn parse(method: Method, uri: &axum::http::Uri, headers: HeaderMap, body: Bytes) -> Self {
        let raw_query = uri.query().unwrap_or("").to_owned();
        let auth = match header_str(&headers, "authorization") {
            Some(a) if a.starts_with("ACS3-") => Auth::V3(sign::parse_v3_authorization(a)),
            _ => Auth::V1,
        };
        let mut map = BTreeMap::new();
        // Both signature versions: `+` is a space, `%XX` decoded, raw characters kept.
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(sign::query_decode(k), sign::query_decode(v));
        }
        let is_form = header_str(&headers, "content-type").is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        if is_form && !body.is_empty() {
            map.extend(form_pairs(&String::from_utf8_lossy(&body)));
        }
        let params = Params::new(map);
        let action = header_str(&headers, "x-acs-action")
            .map(str::to_owned)
            .or_else(|| params.get("Action").map(str::to_owned));
        let version = header_str(&headers, "x-acs-version")
            .map(str::to_owned)
            .or_else(|| params.get("Version").map(str::to_owned));
        let format = match (&auth, params.get("Format")) {
            (_, Some(f)) if f.eq_ignore_ascii_case("json") => Format::Json,
            (_, Some(f)) if f.eq_ignore_ascii_case("xml") => Format::Xml,
            (Auth::V3(_), _) => Format::Json,
            // V3-shaped unsigned calls (x-acs-action header) also default to JSON.
            (Auth::V1, _) if headers.contains_key("x-acs-action") => Format::Json,
            (Auth::V1, _) => Format::Xml,
        };
        let host = header_str(&headers, "host")
            .unwrap_or("vpc.aliyuncs.com")
            .to_owned();
        Self {
            method,
            path: uri.path().to_owned(),
            raw_query,
            headers,
            body,
            params,
            action,
            version,
            format,
            auth,
            host,
        }
    }

    /// A header value (trimmed, non-empty).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }

    /// All values of a header, each trimmed, sorted and joined with `,` (the V3 canonical
    /// header value of a repeated header).
    pub fn joined_header(&self, name: &str) -> String {
        let mut values: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .collect();
        values.sort();
        values.join(",")
    }
}

/// A new request id: an upper-case UUID.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}

fn content_type(format: Format) -> HeaderValue {
    match format {
        Format::Json => HeaderValue::from_static("application/json;charset=utf-8"),
        Format::Xml => HeaderValue::from_static("text/xml;charset=utf-8"),
    }
}

fn respond(status: u16, format: Format, request_id: &str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type(format));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", v);
    }
    response
}

/// A success body: `fields` plus `RequestId`, as JSON or as `<{Action}Response>` XML.
pub fn success_response(
    format: Format,
    action: &str,
    request_id: &str,
    fields: &Map<String, Value>,
) -> Response {
    let mut body = fields.clone();
    body.insert("RequestId".to_owned(), Value::String(request_id.to_owned()));
    let body = Value::Object(body);
    let text = match format {
        Format::Json => body.to_string(),
        Format::Xml => to_xml(&format!("{action}Response"), &body),
    };
    respond(200, format, request_id, text)
}

/// The error body fields, in the real API's order.
pub fn error_fields(err: &ApiError, request_id: &str, host_id: &str, product: &str) -> Value {
    let mut m = Map::new();
    m.insert("RequestId".to_owned(), request_id.into());
    m.insert("HostId".to_owned(), host_id.into());
    m.insert("Code".to_owned(), err.code.as_ref().into());
    m.insert("Message".to_owned(), err.message.as_ref().into());
    m.insert(
        "Recommend".to_owned(),
        format!(
            "https://api.aliyun.com/troubleshoot?q={}&product={product}&requestId={request_id}",
            err.code
        )
        .into(),
    );
    Value::Object(m)
}

/// An error response with the documented HTTP status.
pub fn error_response(
    format: Format,
    err: &ApiError,
    request_id: &str,
    host_id: &str,
    product: &str,
) -> Response {
    let body = error_fields(err, request_id, host_id, product);
    let text = match format {
        Format::Json => body.to_string(),
        Format::Xml => {
            // The real gateway's element order.
            let mut writer = Writer::new(Vec::new());
            let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
            let _ = writer.write_event(Event::Start(BytesStart::new("Error")));
            for key in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
                write_xml_element(&mut writer, key, &body[key]);
            }
            let _ = writer.write_event(Event::End(BytesEnd::new("Error")));
            String::from_utf8_lossy(&writer.into_inner()).into_owned()
        }
    };
    respond(err.status, format, request_id, text)
}

/// A bare HTTP status with a short text body (fault injection of gateway-level failures).
pub fn raw_status_response(status: u16, request_id: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", v);
    }
    response
}

/// Renders a JSON value as the POP gateway's XML: objects become child elements, arrays
/// repeat the element of their key (`{"BgpPeer":[a,b]}` → `<BgpPeer>a</BgpPeer><BgpPeer>b</BgpPeer>`).
pub fn to_xml(root: &str, value: &Value) -> String {
    let mut writer = Writer::new(Vec::new());
    // Writing to a Vec cannot fail; the results are ignored on purpose.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    write_xml_element(&mut writer, root, value);
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

fn write_xml_element(writer: &mut Writer<Vec<u8>>, name: &str, value: &Value) {
    if let Value::Array(items) = value {
        for item in items {
            write_xml_element(writer, name, item);
        }
        return;
    }
    let _ = writer.write_event(Event::Start(BytesStart::new(name)));
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                write_xml_element(writer, k, v);
            }
        }
        Value::String(s) => {
            let _ = writer.write_event(Event::Text(BytesText::new(s)));
        }
        Value::Null => {}
        other => {
            let text = other.to_string();
            let _ = writer.write_event(Event::Text(BytesText::new(&text)));
        }
    }
    let _ = writer.write_event(Event::End(BytesEnd::new(name)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_lists_repeat_the_item_element_and_escape() {
        let v = json!({"TotalCount": 2, "BgpPeers": {"BgpPeer": [{"BgpPeerId": "bgp-1"}, {"BgpPeerId": "a<&>"}]}});
        let xml = to_xml("DescribeBgpPeersResponse", &v);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeBgpPeersResponse><BgpPeers><BgpPeer><BgpPeerId>bgp-1</BgpPeerId></BgpPeer><BgpPeer><BgpPeerId>a&lt;&amp;&gt;</BgpPeerId></BgpPeer></BgpPeers><TotalCount>2</TotalCount></DescribeBgpPeersResponse>"
        );
    }

    #[test]
    fn error_body_has_recommend_link() {
        let err = ApiError::from_code("QuotaExceeded.Bgp");
        let v = error_fields(&err, "ABC", "vpc.aliyuncs.com", "Vpc");
        assert_eq!(v["Code"], "QuotaExceeded.Bgp");
        assert_eq!(
            v["Recommend"],
            "https://api.aliyun.com/troubleshoot?q=QuotaExceeded.Bgp&product=Vpc&requestId=ABC"
        );
        let xml = to_xml("Error", &v);
        assert!(
            xml.contains("<Error><Code>QuotaExceeded.Bgp</Code>"),
            "{xml}"
        );
    }

    #[test]
    fn request_ids_are_upper_case_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_ascii_uppercase());
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }

    fn parse(method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> ApiRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        ApiRequest::parse(
            method,
            &uri.parse().unwrap(),
            map,
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn v1_merges_query_and_form_body_and_reads_format() {
        let r = parse(
            Method::POST,
            "/?Action=DescribeBgpPeers&Format=json&A=a+b",
            &[("content-type", "application/x-www-form-urlencoded")],
            "RegionId=cn-shanghai&B=%2A",
        );
        assert_eq!(r.action.as_deref(), Some("DescribeBgpPeers"));
        assert_eq!(r.format, Format::Json);
        assert_eq!(r.params.get("RegionId"), Some("cn-shanghai"));
        assert_eq!(r.params.get("A"), Some("a b"));
        assert_eq!(r.params.get("B"), Some("*"));
        assert_eq!(r.auth, Auth::V1);
        let xml = parse(Method::GET, "/?Action=X", &[], "");
        assert_eq!(xml.format, Format::Xml);
    }

    #[test]
    fn v3_reads_headers_and_decodes_plus_as_space() {
        let r = parse(
            Method::POST,
            "/?ClientToken=a%20b*c%2Bd+e",
            &[
                ("x-acs-action", "CreateBgpPeer"),
                ("x-acs-version", "2016-04-28"),
                (
                    "authorization",
                    "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host,Signature=00",
                ),
            ],
            "",
        );
        assert_eq!(r.action.as_deref(), Some("CreateBgpPeer"));
        assert_eq!(r.version.as_deref(), Some("2016-04-28"));
        assert_eq!(r.format, Format::Json);
        assert_eq!(r.params.get("ClientToken"), Some("a b*c+d e"));
        assert!(matches!(r.auth, Auth::V3(Some(_))));
    }
}
