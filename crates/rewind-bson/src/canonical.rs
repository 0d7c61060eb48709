//! What makes a BSON document canonical, shared by the wire reader (documents received) and
//! the commands' byte walker (documents stored): a document decodes into a `bson::Document`
//! and encodes back to the same bytes only if no (sub)document repeats a key (a `Document`
//! keeps one value per key) and every array is keyed `"0"`, `"1"`, ... in order (arrays are
//! re-keyed on encoding).

use std::collections::HashSet;
use std::hash::Hash;

/// Levels with more keys than this are checked for repeats with a hash set.
const LINEAR_KEY_CHECK: usize = 16;

/// The keys of every open level of a depth-first walk, for spotting a repeated key.
pub struct SeenKeys<K> {
    keys: Vec<K>,
}

/// One open level (a document being walked) of [`SeenKeys`].
pub struct Level<K> {
    start: usize,
    /// One bit per key fingerprint seen on this level: a key whose bit is clear is new
    /// without comparing it to the others (the usual case, as keys rarely repeat).
    fingerprints: u64,
    /// A wide level's keys, moved out of the shared list: no quadratic comparison.
    wide: Option<HashSet<K>>,
}

/// The fingerprint bit of a key: from its length and its first and last bytes.
fn fingerprint(key: &[u8]) -> u64 {
    let (first, last) = (key.first().copied(), key.last().copied());
    let mix =
        key.len() * 7 + usize::from(first.unwrap_or(0)) * 13 + usize::from(last.unwrap_or(0)) * 31;
    1 << (mix % 64)
}

impl<K: Copy + Eq + Hash + AsRef<[u8]>> SeenKeys<K> {
    /// No level open.
    pub fn new() -> Self {
        // Room for a typical document's keys at once: growing a step at a time costs more
        // than the rest of the check.
        Self {
            keys: Vec::with_capacity(LINEAR_KEY_CHECK * 2),
        }
    }

    /// Opens a level for the document about to be walked.
    pub fn enter(&self) -> Level<K> {
        Level {
            start: self.keys.len(),
            fingerprints: 0,
            wide: None,
        }
    }

    /// Whether `level` already holds `key`; records it otherwise.
    pub fn repeated(&mut self, level: &mut Level<K>, key: K) -> bool {
        if let Some(set) = &mut level.wide {
            return !set.insert(key);
        }
        let bit = fingerprint(key.as_ref());
        if level.fingerprints & bit != 0 && self.keys[level.start..].contains(&key) {
            return true;
        }
        level.fingerprints |= bit;
        self.keys.push(key);
        if self.keys.len() - level.start > LINEAR_KEY_CHECK {
            level.wide = Some(self.keys.drain(level.start..).collect());
        }
        false
    }

    /// Closes a level once its document was walked.
    pub fn leave(&mut self, level: Level<K>) {
        self.keys.truncate(level.start);
    }
}

impl<K: Copy + Eq + Hash + AsRef<[u8]>> Default for SeenKeys<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `key` is the decimal form of `index` (no sign, no leading zero): the key an
/// array element gets when encoded.
pub fn is_array_index(key: &[u8], mut index: usize) -> bool {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (index % 10) as u8;
        index /= 10;
        if index == 0 {
            break;
        }
    }
    key == &digits[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_keys_are_plain_decimals() {
        assert!(is_array_index(b"0", 0));
        assert!(is_array_index(b"17", 17));
        assert!(!is_array_index(b"01", 1));
        assert!(!is_array_index(b"+1", 1));
        assert!(!is_array_index(b"", 0));
        assert!(!is_array_index(b"2", 1));
    }

    #[test]
    fn repeats_are_found_per_level_narrow_and_wide() {
        let mut seen = SeenKeys::new();
        let mut outer = seen.enter();
        assert!(!seen.repeated(&mut outer, "a"));
        let mut inner = seen.enter();
        assert!(
            !seen.repeated(&mut inner, "a"),
            "another level may reuse a key"
        );
        assert!(seen.repeated(&mut inner, "a"));
        seen.leave(inner);
        assert!(seen.repeated(&mut outer, "a"));
        let names: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut wide = seen.enter();
        for name in &names {
            assert!(!seen.repeated(&mut wide, name.as_str()));
        }
        assert!(seen.repeated(&mut wide, "k3"));
        assert!(seen.repeated(&mut wide, "k39"));
        seen.leave(wide);
        assert!(
            seen.repeated(&mut outer, "a"),
            "the outer level survives a wide one"
        );
    }
}
