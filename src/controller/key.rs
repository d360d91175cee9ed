//! How the controllers name and compare things: an object's `namespace/name` key and whether two
//! IP addresses are the same. One owner each, for every kind.

use kube::Resource;

/// `namespace/name` of an object: the key of its backoff, its claims and its log lines.
pub fn object_key<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    namespaced_key(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// `namespace/name` of an object known by its two names (a reference not yet read).
pub fn namespaced_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Compares two IP addresses by value (`2408:4000::2` equals `2408:4000:0::2`), or as text
/// (case-insensitive) when either is not an address.
pub fn same_ip(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BgpPeer;

    #[test]
    fn object_keys() {
        let mut peer = BgpPeer::new("router-a", Default::default());
        assert_eq!(object_key(&peer), "/router-a");
        peer.metadata.namespace = Some("team-a".into());
        assert_eq!(object_key(&peer), "team-a/router-a");
        assert_eq!(namespaced_key("team-a", "default"), "team-a/default");
    }

    #[test]
    fn ips_compare_by_value_then_as_text() {
        assert!(same_ip("2408:4000::2", "2408:4000:0:0::2"));
        assert!(same_ip("2408:4000::A", "2408:4000::a"));
        assert!(same_ip("10.0.0.2", "10.0.0.2"));
        assert!(!same_ip("10.0.0.2", "10.0.0.3"));
        assert!(!same_ip("10.0.0.2", "::ffff:10.0.0.3"));
        assert!(same_ip("not-an-ip", "NOT-AN-IP"));
        assert!(!same_ip("10.0.0.2", ""));
    }
}
