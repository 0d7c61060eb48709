//! 24-hex-digit identifiers, the shape Atlas uses for every id (a MongoDB ObjectId).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

/// A 12-byte identifier rendered as 24 lowercase hex digits, generated like a MongoDB ObjectId:
/// 4 bytes of seconds since the epoch, 5 random bytes per process, 3 bytes of a counter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

/// Why a string is not an [`ObjectId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 24 lowercase hexadecimal digits")]
pub struct InvalidObjectId;

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl ObjectId {
    /// A new id, unique within this process and very likely across processes.
    pub fn generate() -> Self {
        static PROCESS_UNIQUE: std::sync::OnceLock<[u8; 5]> = std::sync::OnceLock::new();
        let process = PROCESS_UNIQUE.get_or_init(|| rand::rng().random());
        let seconds = time::OffsetDateTime::now_utc().unix_timestamp() as u32;
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(process);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Self(bytes)
    }

    /// The raw bytes.
    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// An id from its raw bytes.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }
}

impl FromStr for ObjectId {
    type Err = InvalidObjectId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.as_bytes();
        if digits.len() != 24 {
            return Err(InvalidObjectId);
        }
        let mut bytes = [0u8; 12];
        for (index, pair) in digits.chunks(2).enumerate() {
            bytes[index] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Ok(Self(bytes))
    }
}

/// Only lowercase digits are accepted: Atlas's pattern is `^([a-f0-9]{24})$`.
fn hex_value(digit: u8) -> Result<u8, InvalidObjectId> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(InvalidObjectId),
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of 24 digits: ids are rendered on every request, in SQL and in JSON.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 24];
        for (index, byte) in self.0.iter().enumerate() {
            text[index * 2] = DIGITS[usize::from(byte >> 4)];
            text[index * 2 + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_shapes() {
        let id = ObjectId::generate();
        assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
        assert!("32b6e34b3d91647abb20e7b8".parse::<ObjectId>().is_ok());
        assert!("32B6E34B3D91647ABB20E7B8".parse::<ObjectId>().is_err());
        assert!("32b6e34b3d91647abb20e7b".parse::<ObjectId>().is_err());
        assert!("32b6e34b3d91647abb20e7bg".parse::<ObjectId>().is_err());
        assert!("é2b6e34b3d91647abb20e7b".parse::<ObjectId>().is_err());
    }

    #[test]
    fn generated_ids_are_distinct_and_ordered_by_creation() {
        let first = ObjectId::generate();
        let second = ObjectId::generate();
        assert_ne!(first, second);
        assert!(first < second);
    }
}
