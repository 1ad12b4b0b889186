//! Document revisions in the CouchDB/Kazoo `_rev` style: `N-hash`, where `N` counts the writes of
//! the document and `hash` fingerprints its content, so that a client can send back what it read
//! and have a write refused when someone else changed the document meanwhile.

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The revision that follows `previous` (or the first one) for a document serialised as `content`.
pub fn next_revision(previous: Option<&str>, content: &[u8]) -> String {
    let generation = previous
        .and_then(generation)
        .map_or(1, |number| number.saturating_add(1));
    let mut hash = FNV_OFFSET;
    for byte in generation.to_be_bytes().iter().chain(content) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    format!("{generation}-{hash:016x}")
}

/// The write count `N` of a revision `N-hash`, if it has that shape.
pub fn generation(revision: &str) -> Option<u64> {
    let (number, _) = revision.split_once('-')?;
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_count_writes_and_fingerprint_content() {
        let first = next_revision(None, b"{}");
        assert!(first.starts_with("1-"));
        let second = next_revision(Some(&first), b"{}");
        assert!(second.starts_with("2-"));
        assert_ne!(next_revision(None, b"{\"a\":1}"), first);
        assert_eq!(generation(&second), Some(2));
        assert_eq!(generation("garbage"), None);
    }
}
