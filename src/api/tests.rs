//! Unit tests of the generated schema: what the apiserver will enforce at admission.
//! (Admission behaviour itself is tested against a real kube-apiserver in `tests/admission.rs`.)

use kube::CustomResourceExt;
use serde_json::Value;

use super::*;

fn crd_json() -> Value {
    serde_json::to_value(BgpPeer::crd()).expect("CRD serialises")
}

fn version(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]
}

fn spec_schema(crd: &Value) -> &Value {
    &version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"]
}

fn rules(schema: &Value) -> Vec<String> {
    schema["x-kubernetes-validations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["rule"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn identity_of_the_resource() {
    let crd = crd_json();
    assert_eq!(crd["metadata"]["name"], "bgppeers.vpc.alicloud.dev");
    assert_eq!(crd["spec"]["group"], GROUP);
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "BgpPeer");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "bgpp");
    let categories = crd["spec"]["names"]["categories"]
        .as_array()
        .expect("categories");
    assert!(categories.iter().any(|c| c == "alicloud"));
    assert_eq!(version(&crd)["name"], "v1alpha1");
    assert!(version(&crd)["subresources"]["status"].is_object());
}

#[test]
fn required_fields_are_the_region_and_one_of_the_group_fields() {
    let crd = crd_json();
    let required: Vec<&str> = spec_schema(&crd)["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, vec!["regionId"]);
    // The group is required as exactly one of bgpGroupId and bgpGroupRef (CEL).
    let rules: Vec<&str> = spec_schema(&crd)["x-kubernetes-validations"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(
        rules.contains(&"has(self.bgpGroupId) != has(self.bgpGroupRef)"),
        "{rules:?}"
    );
    let top: Vec<&str> = version(&crd)["schema"]["openAPIV3Schema"]["required"]
        .as_array()
        .expect("top-level required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(top, vec!["spec"]);
}

#[test]
fn patterns_and_ranges() {
    let crd = crd_json();
    let props = &spec_schema(&crd)["properties"];
    let region = regex_lite_match(props["regionId"]["pattern"].as_str().expect("pattern"));
    assert!(region("cn-shanghai"));
    assert!(region("ap-southeast-1"));
    assert!(!region("CN-Shanghai"));
    assert!(!region("shanghai"));
    let group = regex_lite_match(props["bgpGroupId"]["pattern"].as_str().expect("pattern"));
    assert!(group("bgpg-wz9f62v4fbg2gwwwasa"));
    assert!(!group("bgp-wz9f62v4fbg2gwwwasa"));
    assert!(!group("bgpg-UPPER"));
    assert_eq!(props["bfdMultiHop"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(props["bfdMultiHop"]["maximum"].as_f64(), Some(255.0));
    assert_eq!(props["peerIpAddress"]["maxLength"].as_u64(), Some(45));
    let enums = |field: &str| props[field]["enum"].clone();
    assert_eq!(enums("ipVersion"), serde_json::json!(["IPv4", "IPv6"]));
    assert_eq!(
        enums("deletionPolicy"),
        serde_json::json!(["Delete", "Orphan"])
    );
    assert_eq!(props["ipVersion"]["default"], "IPv4");
    assert_eq!(props["deletionPolicy"]["default"], "Delete");
    assert_eq!(props["enableBfd"]["default"], false);
}

fn regex_lite_match(pattern: &str) -> impl Fn(&str) -> bool {
    let re = regex::Regex::new(pattern).expect("schema pattern compiles");
    move |s: &str| re.is_match(s)
}

#[test]
fn cel_rules_are_in_the_schema() {
    let crd = crd_json();
    let spec = spec_schema(&crd);
    let spec_rules = rules(spec);
    assert!(
        spec_rules
            .iter()
            .any(|r| r.contains("bfdMultiHop") && r.contains("enableBfd"))
    );
    assert!(
        spec_rules
            .iter()
            .any(|r| r.contains("family()") && r.contains("ipVersion"))
    );
    assert!(
        spec_rules
            .iter()
            .any(|r| r.contains("oldSelf.adoptBgpPeerId"))
    );
    for field in ["regionId", "bgpGroupId", "ipVersion"] {
        assert_eq!(
            rules(&spec["properties"][field]),
            vec!["self == oldSelf".to_owned()],
            "{field} must be immutable"
        );
    }
    // Mutable in place through ModifyBgpPeerAttribute.
    for field in [
        "peerIpAddress",
        "enableBfd",
        "bfdMultiHop",
        "deletionPolicy",
    ] {
        assert!(
            !rules(&spec["properties"][field]).contains(&"self == oldSelf".to_owned()),
            "{field} must stay mutable"
        );
    }
    assert!(rules(&spec["properties"]["peerIpAddress"]).contains(&"isIP(self)".to_owned()));
    // Every rule carries a message a user can act on.
    let all = spec["x-kubernetes-validations"].as_array().expect("rules");
    assert!(
        all.iter()
            .all(|r| r["message"].as_str().is_some_and(|m| m.len() > 10))
    );
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    let crd = crd_json();
    let conditions = &version(&crd)["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
    let item_required = conditions["items"]["required"]
        .as_array()
        .expect("required");
    assert!(item_required.iter().any(|r| r == "type"));
    assert!(item_required.iter().any(|r| r == "status"));
}

#[test]
fn printer_columns() {
    let crd = crd_json();
    // The group as the peer is bound to it (also for bgpGroupRef peers, whose spec has no ID).
    let group = version(&crd)["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["name"] == "Group")
        .expect("Group column");
    assert_eq!(group["jsonPath"], ".status.bgpGroupId");
    let names: Vec<&str> = version(&crd)["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "Peer IP",
            "Group",
            "Group Ref",
            "Peer ID",
            "Ready",
            "Reason",
            "Cloud Status",
            "Session",
            "Last Error",
            "Last Sync",
            "Age"
        ]
    );
}

#[test]
fn every_spec_field_is_documented() {
    let crd = crd_json();
    let props = spec_schema(&crd)["properties"]
        .as_object()
        .expect("properties");
    assert!(props.len() >= 9);
    for (name, schema) in props {
        let doc = schema["description"].as_str().unwrap_or_default();
        assert!(
            doc.len() > 20,
            "spec.{name} needs a description for kubectl explain"
        );
    }
}

#[test]
fn sample_manifests_parse_as_bgp_peers() {
    for path in [
        "deploy/samples/bgppeer.yaml",
        "deploy/samples/bgppeer-ipv6-bfd.yaml",
    ] {
        let text = std::fs::read_to_string(path).expect("sample exists");
        let peer: BgpPeer = serde_saphyr::from_str(&text).expect("sample parses");
        assert_eq!(peer.spec.region_id, "cn-shanghai", "{path}");
    }
}

#[test]
fn checked_in_crd_is_current() {
    let expected = crdgen::bgp_peer_crd_yaml().expect("render");
    let actual = std::fs::read_to_string(crdgen::BGP_PEER_CRD_PATH).unwrap_or_default();
    assert!(
        expected == actual,
        "{} is stale: run `make crds` (cargo run -- crd --output {})",
        crdgen::BGP_PEER_CRD_PATH,
        crdgen::BGP_PEER_CRD_PATH
    );
}

#[test]
fn spec_defaults_when_fields_are_omitted() {
    let spec: BgpPeerSpec = serde_json::from_value(serde_json::json!({
        "regionId": "cn-shanghai",
        "bgpGroupId": "bgpg-abc123"
    }))
    .expect("minimal spec");
    assert_eq!(spec.ip_version, IpVersion::IPv4);
    assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
    assert!(!spec.enable_bfd);
    assert_eq!(spec.peer_ip_address, None);
}
