//! A small least-recently-used cache of clips, bounded both in entries and in bytes, for what is
//! dear to make (decoded media, rendered speech).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use super::clip::Clip;

/// Clips by key; the least recently used go first once either bound is passed. A clip larger
/// than the byte bound is returned to its caller but never kept.
#[derive(Debug)]
pub struct ClipCache<K> {
    /// At most this many clips.
    max_entries: usize,
    /// At most this many bytes of samples (2 per sample).
    max_bytes: usize,
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    entries: HashMap<K, (Clip, u64)>,
    bytes: usize,
    tick: u64,
}

impl<K: Eq + Hash + Clone> ClipCache<K> {
    /// An empty cache holding at most `max_entries` clips and `max_bytes` bytes of samples.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            state: Mutex::new(State {
                entries: HashMap::new(),
                bytes: 0,
                tick: 0,
            }),
        }
    }

    /// The clip kept under `key`, marked as just used.
    pub fn get(&self, key: &K) -> Option<Clip> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tick += 1;
        let tick = state.tick;
        state.entries.get_mut(key).map(|(clip, used)| {
            *used = tick;
            clip.clone()
        })
    }

    /// Keeps `clip` under `key`, evicting the least recently used until both bounds hold.
    pub fn insert(&self, key: K, clip: Clip) {
        let size = clip.len() * 2;
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tick += 1;
        let tick = state.tick;
        if let Some((old, _)) = state.entries.insert(key, (clip, tick)) {
            state.bytes -= old.len() * 2;
        }
        state.bytes += size;
        while state.entries.len() > self.max_entries || state.bytes > self.max_bytes {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some((gone, _)) = state.entries.remove(&oldest) {
                state.bytes -= gone.len() * 2;
            }
        }
    }

    /// Drops every clip whose key `stale` matches (a re-uploaded or deleted media file).
    pub fn remove_where(&self, stale: impl Fn(&K) -> bool) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let keys: Vec<K> = state
            .entries
            .keys()
            .filter(|key| stale(key))
            .cloned()
            .collect();
        for key in keys {
            if let Some((gone, _)) = state.entries.remove(&key) {
                state.bytes -= gone.len() * 2;
            }
        }
    }

    /// How many clips and bytes are kept.
    pub fn usage(&self) -> (usize, usize) {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (state.entries.len(), state.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(samples: usize) -> Clip {
        Clip::new(vec![0; samples])
    }

    #[test]
    fn both_bounds_evict_the_least_recently_used() {
        let cache = ClipCache::new(2, 1000);
        cache.insert("a", clip(100));
        cache.insert("b", clip(100));
        assert!(cache.get(&"a").is_some());
        cache.insert("c", clip(100));
        assert!(cache.get(&"b").is_none(), "b was the least recently used");
        assert_eq!(cache.usage(), (2, 400));
        cache.insert("d", clip(450));
        assert_eq!(cache.usage(), (1, 900), "the bytes bound evicts too");
        cache.insert("huge", clip(600));
        assert!(
            cache.get(&"huge").is_none(),
            "larger than the bound: not kept"
        );
        cache.remove_where(|key| *key == "d");
        assert_eq!(cache.usage(), (0, 0));
    }
}
