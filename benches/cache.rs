//! Memory of the controller's object cache, per object (issue #18: peak RSS at N = 10,000).
//!
//! kube-runtime's reflector store holds one `Arc` of every watched object, keyed by its
//! `ObjectRef`. This benchmark reads N Ready BgpPeers from JSON as the apiserver sends them
//! (`fixtures/ready-peer.json`, taken from a benchmark run, with its managed fields; each copy
//! gets its own name, UID, peer ID and IP, groups of 4 peers, 3 regions and 2 accounts, as
//! in the scale benchmark's fleet topology), compacts them as the watch does
//! (`controller::Compact`) and stores them as the reflector does. It reports the heap bytes
//! and allocations per object that stay, counted by dhat's allocator.
//!
//! `cargo bench --bench cache [-- --n 10000]`. Under `cargo test` only a small self-check runs.

use std::collections::HashMap;
use std::sync::Arc;

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::controller::Compact;
use kube::runtime::reflector::ObjectRef;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const FIXTURE: &str = include_str!("fixtures/ready-peer.json");
const REGIONS: [&str; 3] = ["cn-beijing", "cn-shanghai", "cn-hangzhou"];

/// The JSON of the i-th object: the fixture with the values a real fleet varies.
fn object_text(i: usize) -> String {
    let group = i / 4;
    FIXTURE
        .replace("peer-03560", &format!("peer-{i:05}"))
        .replace(
            "061907ac-4cfe-4914-93b2-9d7d1b268044",
            &format!("061907ac-4cfe-4914-93b2-{i:012}"),
        )
        .replace("bgp-hwpzsiiof2vt067o4frx", &format!("bgp-{i:020}"))
        .replace("000000000002298", &format!("{group:015}"))
        .replace(
            "10.9.250.12",
            &format!("10.{}.{}.{}", group / 250, group % 250, i % 4 + 1),
        )
        .replace("cn-beijing", REGIONS[i % 3])
        .replace("2000000000000002", &format!("200000000000000{}", i % 2 + 1))
        .replace("\"94248\"", &format!("\"{}\"", 100_000 + i))
}

/// Heap bytes and allocations now held.
fn held() -> (u64, u64) {
    let stats = dhat::HeapStats::get();
    (stats.curr_bytes as u64, stats.curr_blocks as u64)
}

struct Measured {
    bytes_per_object: f64,
    allocations_per_object: f64,
}

/// Reads `n` objects (compacted or as read) into a map like the reflector's store and
/// measures what the map holds.
fn measure(n: usize, compact: bool) -> Measured {
    let texts: Vec<String> = (0..n).map(object_text).collect();
    let before = held();
    let mut store: HashMap<ObjectRef<BgpPeer>, Arc<BgpPeer>> = HashMap::new();
    for text in &texts {
        let mut obj: BgpPeer = match serde_json::from_str(text) {
            Ok(obj) => obj,
            Err(e) => panic!("the fixture is a BgpPeer: {e}"),
        };
        if compact {
            obj.compact();
        }
        store.insert(ObjectRef::from_obj(&obj), Arc::new(obj));
    }
    let after = held();
    let measured = Measured {
        bytes_per_object: (after.0 - before.0) as f64 / n as f64,
        allocations_per_object: (after.1 - before.1) as f64 / n as f64,
    };
    drop(store);
    measured
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut args = std::env::args().skip(1);
    let mut n = 10_000;
    let mut bench = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => bench = true,
            "--n" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => n = v,
                None => panic!("--n takes a count"),
            },
            _ => {}
        }
    }
    if !bench {
        // Self-check: the fixture reads, the copies differ, and compacting holds less.
        let (a, b) = (object_text(0), object_text(5));
        assert_ne!(a, b);
        let compacted = measure(200, true);
        let read = measure(200, false);
        assert!(compacted.bytes_per_object < read.bytes_per_object);
        return;
    }
    // Compacted first: the strings it interns are counted there, and the uncompacted
    // copies read after it may reuse some (so "as read" is, if anything, low).
    let compacted = measure(n, true);
    let read = measure(n, false);
    println!("object cache, N = {n} Ready BgpPeers (fleet topology values)");
    println!(
        "| as read from the apiserver | {:.0} bytes/object | {:.1} allocations/object |",
        read.bytes_per_object, read.allocations_per_object
    );
    println!(
        "| compacted, as the store holds it | {:.0} bytes/object | {:.1} allocations/object | {:.1} MiB at N = {n} |",
        compacted.bytes_per_object,
        compacted.allocations_per_object,
        compacted.bytes_per_object * n as f64 / (1024.0 * 1024.0)
    );
    println!(
        "inline sizes: BgpPeer {} (ObjectMeta {}, spec {}, status {}), Condition {}, ObjectRef {}",
        size_of::<BgpPeer>(),
        size_of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(),
        size_of::<alicloud_bgp_operator::api::BgpPeerSpec>(),
        size_of::<Option<alicloud_bgp_operator::api::BgpPeerStatus>>(),
        size_of::<alicloud_bgp_operator::api::Condition>(),
        size_of::<ObjectRef<BgpPeer>>(),
    );
}
