//! [`Text`]: the string type of the API fields that repeat across objects (regions, groups,
//! accounts, the cloud's status words, condition types, reasons and messages).
//!
//! The controllers cache every object they watch (kube-runtime's reflector store), and at
//! N = 10,000 peers that cache was the largest part of the heap: a Ready `BgpPeer` held
//! about 40 separately allocated strings, most of them equal to the same field of thousands
//! of other objects ("cn-shanghai", "Available", "Ready", "The cloud peer matches the
//! spec"). A `Text` read from JSON is looked up in one process-wide table and shares its
//! allocation with every equal `Text` read before. It is one pointer inline (8 bytes, and
//! `Option<Text>` too) instead of a `String`'s 24: the extra indirection is paid once per
//! distinct value, the saving once per field of every cached object. On the wire and in the
//! CRD schema it is a plain string.
//!
//! Values that are unique to an object (peer IDs, ClientTokens) stay `String`: sharing
//! them saves nothing and costs a table entry.

use std::borrow::{Borrow, Cow};
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string whose deserialized copies share one allocation per distinct value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<Box<str>>);

impl Text {
    /// The value, shared with every equal `Text` interned before (see the module
    /// documentation). Deserialization uses this; values built in code need not.
    pub fn interned(s: &str) -> Self {
        Self(intern(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `a` and `b` share one allocation (interned from equal values).
    pub fn ptr_eq(a: &Text, b: &Text) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for Text {
    fn default() -> Self {
        static EMPTY: LazyLock<Arc<Box<str>>> = LazyLock::new(|| Arc::new(Box::from("")));
        Self(EMPTY.clone())
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Arc::new(Box::from(s)))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Arc::new(s.into_boxed_str()))
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Self(Arc::new(Box::from(s.as_str())))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.as_str().to_owned()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::interned(v))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

/// The process-wide table of interned values. An entry that only the table still holds is
/// dropped when the table has doubled since it was last swept, so values of deleted
/// objects do not stay forever and the sweeps cost O(1) per insert, amortised.
struct Interner {
    values: HashSet<Entry>,
    /// Entries after the last sweep (at least [`MIN_SWEEP`]).
    swept_at: usize,
}

/// A table entry, looked up by the `str` it holds.
#[derive(PartialEq, Eq, Hash)]
struct Entry(Arc<Box<str>>);

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The table is not swept below this many entries.
const MIN_SWEEP: usize = 1024;

static INTERNER: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        values: HashSet::new(),
        swept_at: MIN_SWEEP,
    })
});

fn intern(s: &str) -> Arc<Box<str>> {
    // A panic while the lock was held cannot leave the set inconsistent (every operation
    // on it is a single std call), so a poisoned lock is used as is.
    let mut table = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(Entry(value)) = table.values.get(s) {
        return value.clone();
    }
    if table.values.len() >= 2 * table.swept_at {
        table.values.retain(|Entry(v)| Arc::strong_count(v) > 1);
        table.swept_at = table.values.len().max(MIN_SWEEP);
    }
    let value: Arc<Box<str>> = Arc::new(Box::from(s));
    table.values.insert(Entry(value.clone()));
    value
}

/// Entries in the table (for tests).
#[cfg(test)]
fn interned_count() -> usize {
    INTERNER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_read_from_json_share_one_allocation() {
        let a: Vec<Text> =
            serde_json::from_str(r#"["cn-shanghai-t1", "cn-shanghai-t1"]"#).expect("strings");
        let b: Text = serde_json::from_str(r#""cn-shanghai-t1""#).expect("a string");
        assert!(Arc::ptr_eq(&a[0].0, &a[1].0));
        assert!(Arc::ptr_eq(&a[0].0, &b.0));
        // Built in code, a value is its own.
        let c = Text::from("cn-shanghai-t1");
        assert!(!Arc::ptr_eq(&a[0].0, &c.0));
        assert_eq!(a[0], c);
    }

    #[test]
    fn it_is_one_pointer_inline_and_so_is_an_absent_one() {
        assert_eq!(size_of::<Text>(), size_of::<usize>());
        assert_eq!(size_of::<Option<Text>>(), size_of::<usize>());
    }

    #[test]
    fn it_is_a_plain_string_on_the_wire_and_in_the_schema() {
        let t: Text = serde_json::from_str(r#""Available""#).expect("a string");
        assert_eq!(
            serde_json::to_string(&t).expect("serializable"),
            r#""Available""#
        );
        assert!(serde_json::from_str::<Text>("3").is_err());
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(Text)).expect("a schema")["type"],
            "string"
        );
        assert_eq!(t, "Available");
        assert_eq!("Available", t);
        assert_eq!(t.as_str(), "Available");
    }

    #[test]
    fn values_nobody_holds_are_swept_from_the_table() {
        // Other tests intern concurrently: the table only has to stay bounded by what is
        // held, not reach an exact size.
        let held: Vec<Text> = (0..10)
            .map(|i| Text::interned(&format!("held-{i}")))
            .collect();
        for i in 0..(8 * MIN_SWEEP) {
            drop(Text::interned(&format!("dropped-{i}")));
        }
        assert!(interned_count() < 4 * MIN_SWEEP, "{}", interned_count());
        for (i, t) in held.iter().enumerate() {
            assert!(Arc::ptr_eq(&t.0, &Text::interned(&format!("held-{i}")).0));
        }
    }
}
