//! Which watch events trigger a reconcile, in little memory.
//!
//! A reconcile is triggered by a change a user (or the finalizer machinery) makes: spec
//! (generation), annotations, labels, finalizers, the deletion mark
//! ([`user_visible_change`]); our own status writes do not trigger, so an error's requeue
//! delay is never cut short by the status write that reports it.
//!
//! kube-runtime's `predicate_filter` does this with a cache keyed by the object's name,
//! namespace and UID as three strings, and its triggers carry the object's UID and
//! resourceVersion as two more strings into the scheduler, which keeps two copies of each
//! reference for every object with a requeue (every object: the resync). At N = 10,000 that
//! was about 4 MB of strings. Here the cache key is a 64-bit hash of the three, and the
//! trigger is a reference with name and namespace only (the scheduler and the store compare
//! references by those alone).
//!
//! A key collision (two objects with the same 64-bit hash) can only make one of them
//! trigger a reconcile it did not need, never skip one: the entry holds the last object's
//! hash, and the other's differs unless its change hash collides too.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

/// The hash of what a user changes (everything but status and bookkeeping).
pub(crate) fn user_visible_change<K: Resource>(obj: &K) -> u64 {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.labels.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    h.finish()
}

/// The 64-bit key of an object: namespace, name and UID (a recreated object is another).
fn key<K: Resource>(obj: &K) -> u64 {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.namespace.hash(&mut h);
    meta.name.hash(&mut h);
    meta.uid.hash(&mut h);
    h.finish()
}

/// The change hash last seen per object of one watch.
#[derive(Default)]
pub(crate) struct ChangeFilter {
    seen: HashMap<u64, u64>,
    /// While the watch relists: the objects listed so far. When the relist ends, the
    /// objects it did not list are gone (their deletion fell into the watch's gap).
    relisted: Option<HashSet<u64>>,
}

impl ChangeFilter {
    /// The reference to reconcile for one watch event: an object shown for the first time,
    /// or with a user-visible change since it was last shown.
    pub(crate) fn on_event<K>(&mut self, event: watcher::Event<K>) -> Option<ObjectRef<K>>
    where
        K: Resource<DynamicType = ()>,
    {
        match event {
            watcher::Event::Init => {
                self.relisted = Some(HashSet::new());
                None
            }
            watcher::Event::InitApply(obj) => {
                if let Some(listed) = self.relisted.as_mut() {
                    listed.insert(key(&obj));
                }
                self.changed(&obj)
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.relisted.take() {
                    self.seen.retain(|k, _| listed.contains(k));
                    self.seen.shrink_to_fit();
                }
                None
            }
            watcher::Event::Apply(obj) => self.changed(&obj),
            watcher::Event::Delete(obj) => {
                self.seen.remove(&key(&obj));
                None
            }
        }
    }

    fn changed<K: Resource<DynamicType = ()>>(&mut self, obj: &K) -> Option<ObjectRef<K>> {
        let hash = user_visible_change(obj);
        if self.seen.insert(key(obj), hash) == Some(hash) {
            return None;
        }
        let meta = obj.meta();
        let name = meta.name.as_deref()?;
        let reference = ObjectRef::new(name);
        Some(match meta.namespace.as_deref() {
            Some(ns) => reference.within(ns),
            None => reference,
        })
    }

    /// Objects remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BgpPeer;
    use watcher::Event;

    fn peer(name: &str, uid: &str, generation: i64) -> BgpPeer {
        let mut p = BgpPeer::new(name, Default::default());
        p.metadata.namespace = Some("ns".into());
        p.metadata.uid = Some(uid.into());
        p.metadata.resource_version = Some("1".into());
        p.metadata.generation = Some(generation);
        p
    }

    #[test]
    fn only_user_visible_changes_trigger_and_the_reference_is_name_and_namespace() {
        let mut f = ChangeFilter::default();
        let first = f.on_event(Event::Apply(peer("a", "u-a", 1)));
        let Some(reference) = first else {
            panic!("a new object triggers");
        };
        assert_eq!(reference, ObjectRef::new("a").within("ns"));
        assert_eq!(reference.extra.uid, None);
        assert_eq!(reference.extra.resource_version, None);
        // Our status write: a new resourceVersion and status, nothing a user changed.
        let mut status_written = peer("a", "u-a", 1);
        status_written.metadata.resource_version = Some("2".into());
        status_written.status = Some(Default::default());
        assert_eq!(f.on_event(Event::Apply(status_written)), None);
        // A spec change (generation), an annotation, the deletion mark: each triggers.
        assert!(f.on_event(Event::Apply(peer("a", "u-a", 2))).is_some());
        let mut annotated = peer("a", "u-a", 2);
        annotated
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("vpc.alicloud.dev/paused".into(), "true".into());
        assert!(f.on_event(Event::Apply(annotated.clone())).is_some());
        assert_eq!(f.on_event(Event::Apply(annotated)), None);
        // Gone, then made again under the same name: a new object.
        assert_eq!(f.on_event(Event::Delete(peer("a", "u-a", 2))), None);
        assert_eq!(f.len(), 0);
        assert!(f.on_event(Event::Apply(peer("a", "u-a2", 1))).is_some());
    }

    #[test]
    fn a_relist_triggers_only_what_changed_and_forgets_what_it_did_not_list() {
        let mut f = ChangeFilter::default();
        for name in ["a", "b", "c"] {
            assert!(f.on_event(Event::Apply(peer(name, name, 1))).is_some());
        }
        // The watch fell behind and relists: `b` changed meanwhile, `c` was deleted.
        assert_eq!(f.on_event(Event::<BgpPeer>::Init), None);
        assert_eq!(f.on_event(Event::InitApply(peer("a", "a", 1))), None);
        assert!(f.on_event(Event::InitApply(peer("b", "b", 2))).is_some());
        assert_eq!(f.len(), 3);
        assert_eq!(f.on_event(Event::<BgpPeer>::InitDone), None);
        assert_eq!(f.len(), 2);
        // `c` made again with its old UID (as a test may) is new to the filter.
        assert!(f.on_event(Event::Apply(peer("c", "c", 1))).is_some());
    }
}
