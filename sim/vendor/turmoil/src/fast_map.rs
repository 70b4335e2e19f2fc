//! The maps of hosts, links and sockets that every step looks up, hashed with FxHash: their
//! keys are addresses and sequence numbers, not attacker-chosen, and SipHash cost more than
//! the lookups themselves. Iteration stays in insertion order (`IndexMap`), as before.

pub(crate) type FastMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;
