//! A map from replica type to a value, for the few entries a TFJob has.
//!
//! A `BTreeMap` allocates a node for eleven entries however many it holds: for the two or three
//! `replicaStatuses` of a job that is ~1.3 KB, which the operator pays for every cached job.
//! [`litemap`] keeps the entries in a vector sorted by key (it serializes, compares and iterates
//! exactly like the `BTreeMap` it replaces); this wrapper adds what the operator needs on top:
//! the `BTreeMap`'s JSON schema for the CRD, lookups by `&str`, and a vector trimmed to its
//! length after decoding, so a cached job holds no spare slots.

use std::borrow::Cow;
use std::ops::Index;

use litemap::LiteMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmallMap<V>(LiteMap<String, V>);

impl<V> Default for SmallMap<V> {
    fn default() -> Self {
        SmallMap(LiteMap::new())
    }
}

impl<V> SmallMap<V> {
    /// The same map with its vector's spare capacity released.
    fn trimmed(map: LiteMap<String, V>) -> Self {
        let mut entries = map.into_tuple_vec();
        entries.shrink_to_fit();
        // Still sorted and unique: they came out of a LiteMap.
        SmallMap(LiteMap::from_sorted_store_unchecked(entries))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.0.get_mut(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Inserts or replaces; returns the replaced value.
    pub fn insert(&mut self, key: impl Into<String>, value: V) -> Option<V> {
        self.0.insert(key.into(), value)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.0.remove(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

impl<V> Index<&str> for SmallMap<V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        self.get(key)
            .unwrap_or_else(|| panic!("no entry for key {key:?}"))
    }
}

/// Later entries replace earlier ones with the same key, as when collecting a `BTreeMap`.
impl<K: Into<String>, V> FromIterator<(K, V)> for SmallMap<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = LiteMap::new();
        for (key, value) in iter {
            map.insert(key.into(), value);
        }
        SmallMap::trimmed(map)
    }
}

impl<K: Into<String>, V, const N: usize> From<[(K, V); N]> for SmallMap<V> {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<V> IntoIterator for SmallMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_tuple_vec().into_iter()
    }
}

impl<V: Serialize> Serialize for SmallMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SmallMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        LiteMap::deserialize(deserializer).map(SmallMap::trimmed)
    }
}

/// The schema of the `BTreeMap<String, V>` it stands for.
impl<V: JsonSchema> JsonSchema for SmallMap<V> {
    fn schema_name() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, V>>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, V>>::schema_id()
    }

    fn inline_schema() -> bool {
        <std::collections::BTreeMap<String, V>>::inline_schema()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeMap<String, V>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_the_btree_map_it_replaces() {
        let json = serde_json::json!({"Worker": 3, "PS": 1, "Chief": 2});
        let small: SmallMap<i32> = serde_json::from_value(json.clone()).unwrap();
        let btree: BTreeMap<String, i32> = serde_json::from_value(json).unwrap();
        assert_eq!(
            serde_json::to_string(&small).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        assert_eq!(
            small.keys().collect::<Vec<_>>(),
            btree.keys().collect::<Vec<_>>()
        );
        assert_eq!(small["PS"], 1);
        assert_eq!(small.get("Evaluator"), None);
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(SmallMap<i32>)).unwrap(),
            serde_json::to_value(schemars::schema_for!(BTreeMap<String, i32>)).unwrap()
        );
    }

    #[test]
    fn inserting_keeps_keys_sorted_and_unique() {
        let mut map: SmallMap<i32> = [("b", 1), ("a", 2), ("b", 3)].into();
        assert_eq!(map.iter().collect::<Vec<_>>().len(), 2);
        assert_eq!(map["b"], 3);
        assert_eq!(map.insert("c", 4), None);
        assert_eq!(map.insert("a", 5), Some(2));
        assert_eq!(map.remove("b"), Some(3));
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), 5), ("c".to_string(), 4)]
        );
    }

    /// The memory a cached job pays: one vector of exactly its entries, as before litemap.
    #[test]
    fn a_decoded_map_holds_no_spare_slots() {
        assert_eq!(
            std::mem::size_of::<SmallMap<crate::api::ReplicaStatus>>(),
            std::mem::size_of::<Vec<(String, crate::api::ReplicaStatus)>>()
        );
        let json = serde_json::json!({"Worker": {"active": 3}, "PS": {"active": 1}});
        let map: SmallMap<crate::api::ReplicaStatus> = serde_json::from_value(json).unwrap();
        let entries = map.0.into_tuple_vec();
        assert_eq!(entries.capacity(), 2, "trimmed to its length");
        let collected: SmallMap<i32> = [("a", 1), ("b", 2), ("c", 3)].into();
        assert_eq!(collected.0.into_tuple_vec().capacity(), 3);
    }
}
