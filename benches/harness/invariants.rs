//! The end state a chaos run must reach, checked against the apiserver and the emulator:
//! every surviving object Ready with exactly one cloud peer (the one in its status), every
//! deleted object gone with no peer left, no peer that belongs to no object.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use kube::{Api, Client, ResourceExt};

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::controller::token::TOKEN_PREFIX;
use alicloud_bgp_operator::emulator::PeerSnapshot;

use super::tracker::is_ready;

/// One object of a run and what was asked of it.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Object name.
    pub name: String,
    /// Its UID (the root of its ClientTokens).
    pub uid: String,
    /// Deletion was requested.
    pub deleted: bool,
}

/// What the checks found. Every list is empty in a correct run.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Objects created.
    pub objects: usize,
    /// Of which deletion was requested.
    pub deletions: usize,
    /// Surviving objects that are Ready.
    pub ready: usize,
    /// Surviving objects that are not Ready.
    pub not_ready: Vec<String>,
    /// Surviving objects that disappeared.
    pub vanished: Vec<String>,
    /// Deleted objects still present (finalizer not released).
    pub stuck: Vec<String>,
    /// Objects with more than one cloud peer: (name, peer ids).
    pub duplicates: Vec<(String, Vec<String>)>,
    /// Cloud peers whose object was deleted or is unknown.
    pub leaked: Vec<String>,
    /// Surviving objects whose status does not name their one cloud peer.
    pub status_mismatch: Vec<String>,
    /// Operator-made peers in the emulator.
    pub emulator_peers: usize,
    /// Peers the emulator should hold (one per surviving object).
    pub expected_peers: usize,
    /// Peers of other owners (seeded) still present, and how many were seeded.
    pub foreign_peers: (usize, usize),
}

impl Verdict {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.not_ready.is_empty()
            && self.vanished.is_empty()
            && self.stuck.is_empty()
            && self.duplicates.is_empty()
            && self.leaked.is_empty()
            && self.status_mismatch.is_empty()
            && self.emulator_peers == self.expected_peers
            && self.foreign_peers.0 == self.foreign_peers.1
    }

    /// Markdown rows `| check | result |`.
    pub fn markdown_rows(&self) -> String {
        let mut s = String::new();
        let list = |v: &[String]| {
            if v.is_empty() {
                "0".to_owned()
            } else {
                let head: Vec<&str> = v.iter().take(5).map(String::as_str).collect();
                format!(
                    "**{}** ({}{})",
                    v.len(),
                    head.join(", "),
                    if v.len() > 5 { ", …" } else { "" }
                )
            }
        };
        let dups: Vec<String> = self
            .duplicates
            .iter()
            .map(|(n, ids)| format!("{n}: {}", ids.join("+")))
            .collect();
        let _ = writeln!(
            s,
            "| objects created / deletion requested | {} / {} |",
            self.objects, self.deletions
        );
        let _ = writeln!(
            s,
            "| surviving objects Ready | {} of {} |",
            self.ready,
            self.objects - self.deletions
        );
        let _ = writeln!(
            s,
            "| surviving objects not Ready | {} |",
            list(&self.not_ready)
        );
        let _ = writeln!(
            s,
            "| surviving objects vanished | {} |",
            list(&self.vanished)
        );
        let _ = writeln!(
            s,
            "| stuck finalizers (deleted objects still present) | {} |",
            list(&self.stuck)
        );
        let _ = writeln!(
            s,
            "| duplicates (objects with > 1 cloud peer) | {} |",
            list(&dups)
        );
        let _ = writeln!(s, "| leaked cloud peers | {} |", list(&self.leaked));
        let _ = writeln!(
            s,
            "| status names a wrong or missing peer | {} |",
            list(&self.status_mismatch)
        );
        let _ = writeln!(
            s,
            "| emulator peers (expected) | {} ({}) |",
            self.emulator_peers, self.expected_peers
        );
        let _ = writeln!(
            s,
            "| other owners' peers (in our groups or regions) untouched | {} of {} |",
            self.foreign_peers.0, self.foreign_peers.1
        );
        s
    }
}

/// The UID inside an operator ClientToken (`abo-<uid>` or `abo-<uid>-<n>`), if it is one.
fn token_uid<'a>(token: &'a str, uids: &BTreeSet<&str>) -> Option<&'a str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    // A Kubernetes UID is 36 characters; fall back to any known UID the token starts with.
    if let Some(uid) = rest.get(..36)
        && uids.contains(uid)
    {
        return Some(uid);
    }
    uids.iter()
        .find(|u| rest.starts_with(**u))
        .and_then(|u| rest.get(..u.len()))
}

/// Lists the namespace (retrying while the apiserver is unavailable).
pub async fn list_objects(client: &Client, ns: &str) -> anyhow::Result<Vec<BgpPeer>> {
    let api: Api<BgpPeer> = Api::namespaced(client.clone(), ns);
    let mut last = None;
    for _ in 0..30 {
        match api.list(&Default::default()).await {
            Ok(list) => return Ok(list.items),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Err(anyhow::anyhow!("listing BgpPeers: {last:?}"))
}

/// True when every surviving object is Ready and every deleted one is gone.
pub fn converged(expected: &[Expected], objects: &[BgpPeer]) -> bool {
    let by_uid: BTreeMap<String, &BgpPeer> = objects
        .iter()
        .map(|o| (o.uid().unwrap_or_default(), o))
        .collect();
    expected
        .iter()
        .all(|e| match (e.deleted, by_uid.get(&e.uid)) {
            (true, present) => present.is_none(),
            (false, Some(obj)) => is_ready(obj),
            (false, None) => false,
        })
}

/// Checks the end state. `peers` are the emulator's peers: those created with an operator
/// ClientToken are matched to objects; the others (`foreign`: seeded, of other owners) must
/// all still be there.
pub fn check(
    expected: &[Expected],
    objects: &[BgpPeer],
    peers: &[PeerSnapshot],
    foreign: usize,
) -> Verdict {
    let mut v = Verdict {
        objects: expected.len(),
        deletions: expected.iter().filter(|e| e.deleted).count(),
        foreign_peers: (0, foreign),
        ..Verdict::default()
    };
    let by_uid: BTreeMap<String, &BgpPeer> = objects
        .iter()
        .map(|o| (o.uid().unwrap_or_default(), o))
        .collect();
    let uids: BTreeSet<&str> = expected.iter().map(|e| e.uid.as_str()).collect();
    let mut peers_of: BTreeMap<&str, Vec<&PeerSnapshot>> = BTreeMap::new();
    for p in peers {
        let Some(token) = p
            .client_token
            .as_deref()
            .filter(|t| t.starts_with(TOKEN_PREFIX))
        else {
            v.foreign_peers.0 += 1;
            continue;
        };
        v.emulator_peers += 1;
        match token_uid(token, &uids) {
            Some(uid) => peers_of.entry(uid).or_default().push(p),
            None => v
                .leaked
                .push(format!("{} (token of no object)", p.bgp_peer_id)),
        }
    }
    for e in expected {
        let obj = by_uid.get(&e.uid);
        let mine = peers_of.get(e.uid.as_str()).cloned().unwrap_or_default();
        if mine.len() > 1 {
            v.duplicates.push((
                e.name.clone(),
                mine.iter().map(|p| p.bgp_peer_id.clone()).collect(),
            ));
        }
        if e.deleted {
            if obj.is_some() {
                v.stuck.push(e.name.clone());
            }
            v.leaked.extend(
                mine.iter()
                    .map(|p| format!("{} ({})", p.bgp_peer_id, e.name)),
            );
            continue;
        }
        v.expected_peers += 1;
        let Some(obj) = obj else {
            v.vanished.push(e.name.clone());
            continue;
        };
        if is_ready(obj) {
            v.ready += 1;
        } else {
            v.not_ready.push(e.name.clone());
        }
        let recorded = obj.status.as_ref().and_then(|s| s.bgp_peer_id.clone());
        let matches = mine.len() == 1 && recorded.as_deref() == Some(mine[0].bgp_peer_id.as_str());
        if !matches {
            v.status_mismatch.push(format!(
                "{} (status {:?}, cloud {:?})",
                e.name,
                recorded,
                mine.iter()
                    .map(|p| p.bgp_peer_id.as_str())
                    .collect::<Vec<_>>()
            ));
        }
    }
    v
}
