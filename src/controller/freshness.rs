//! Whether the cache an object was read from has caught up with this process's own last write
//! of it.
//!
//! A reconcile reads its object from the watch cache. Under load the cache can lag behind the
//! apiserver: a reconcile woken by its timer (the first look after a create comes a Pending
//! duration later) may then see the object as it was before this process's own last status
//! write, for example the recorded ClientToken without the peer ID written right after the
//! create. Acting on that copy is safe (the create protocol replays the token and the API
//! answers the same peer) but not free: an extra CreateBgpPeer per lagging read (337 extra
//! calls for 5,000 peers on a machine at load 10), and status writes that fail with 409.
//!
//! So every successful write records the `resourceVersion` the apiserver answered, and a
//! reconcile whose object is older than that waits for the cache instead: the write's watch
//! event is on its way and wakes the object with the fresh copy (a short requeue is the
//! fallback). Resource versions are compared as the etcd revisions the kube-apiserver uses;
//! a version that is not a number, or a record older than [`REMEMBER`], never holds a
//! reconcile back, so the worst case is the behaviour without this check.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a write is remembered: past this the cache has either caught up or something is
/// wrong with the watch, and a reconcile proceeds with what it has.
pub const REMEMBER: Duration = Duration::from_secs(60);

/// The next look when a reconcile waits for the cache. (A status-only change passes no
/// reconcile trigger (`controller::changes::user_visible_change`), so the watch event of our own status
/// write does not wake the object: this look does.)
pub const RECHECK: Duration = Duration::from_secs(1);

/// Entries kept before expired ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// The last write of each object by this process: UID → (resourceVersion, when).
#[derive(Debug, Default)]
pub struct LastWrites {
    writes: Mutex<HashMap<String, (u64, Instant)>>,
}

impl LastWrites {
    /// Records that this process wrote object `uid`, and the apiserver answered
    /// `resource_version`.
    pub fn wrote(&self, uid: Option<&str>, resource_version: Option<&str>) {
        let (Some(uid), Some(rv)) = (uid, resource_version.and_then(revision)) else {
            return;
        };
        let now = Instant::now();
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        if writes.len() >= PRUNE_ABOVE {
            writes.retain(|_, (_, at)| now.saturating_duration_since(*at) < REMEMBER);
        }
        let entry = writes.entry(uid.to_owned()).or_insert((rv, now));
        if rv >= entry.0 {
            *entry = (rv, now);
        }
    }

    /// True when the copy of object `uid` at `resource_version` is older than this process's
    /// last write of it (within [`REMEMBER`]).
    pub fn is_behind(&self, uid: Option<&str>, resource_version: Option<&str>) -> bool {
        let Some(uid) = uid else {
            return false;
        };
        let writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        behind(writes.get(uid).copied(), resource_version, Instant::now())
    }
}

/// The decision: a copy at `resource_version` is behind `written` (revision, when) at `now`.
fn behind(written: Option<(u64, Instant)>, resource_version: Option<&str>, now: Instant) -> bool {
    let Some((wrote, at)) = written else {
        return false;
    };
    if now.saturating_duration_since(at) >= REMEMBER {
        return false;
    }
    resource_version
        .and_then(revision)
        .is_some_and(|seen| seen < wrote)
}

fn revision(resource_version: &str) -> Option<u64> {
    resource_version.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_older_than_our_last_write_is_behind() {
        let now = Instant::now();
        let wrote = Some((120, now));
        assert!(behind(wrote, Some("119"), now));
        assert!(behind(wrote, Some("7"), now));
        // The copy of our write, or a later one (somebody else's change): not behind.
        assert!(!behind(wrote, Some("120"), now));
        assert!(!behind(wrote, Some("121"), now));
    }

    #[test]
    fn nothing_holds_a_reconcile_back_without_a_recent_numeric_record() {
        let now = Instant::now();
        // Never written by us.
        assert!(!behind(None, Some("1"), now));
        // Versions that are not etcd revisions.
        assert!(!behind(Some((120, now)), Some("abc"), now));
        assert!(!behind(Some((120, now)), None, now));
        // A record past REMEMBER: the watch may be broken; proceed with what there is.
        let later = now + REMEMBER;
        assert!(!behind(Some((120, now)), Some("1"), later));
        assert!(behind(
            Some((120, now)),
            Some("1"),
            now + REMEMBER - Duration::from_millis(1)
        ));
    }

    #[test]
    fn writes_are_kept_per_object_and_never_go_back() {
        let w = LastWrites::default();
        w.wrote(Some("a"), Some("10"));
        w.wrote(Some("b"), Some("20"));
        // An answer that arrives late (an older revision) does not lower the record.
        w.wrote(Some("a"), Some("8"));
        assert!(w.is_behind(Some("a"), Some("9")));
        assert!(!w.is_behind(Some("a"), Some("10")));
        assert!(w.is_behind(Some("b"), Some("19")));
        // Unknown objects, objects without a UID, and non-numeric answers.
        assert!(!w.is_behind(Some("c"), Some("1")));
        assert!(!w.is_behind(None, Some("1")));
        w.wrote(Some("d"), Some("x"));
        assert!(!w.is_behind(Some("d"), Some("1")));
    }
}
