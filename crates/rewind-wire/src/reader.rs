//! A bounds-checked cursor over message bytes and the guarded BSON decoder.
//!
//! Every read checks the remaining length first, so hostile lengths turn
//! into errors, never into panics or allocations larger than the input.

use bson::raw::RawDocument;
use bson::{Document, RawDocumentBuf};

use rewind_bson::check_document;

use crate::error::WireError;

/// Smallest valid BSON document: a length and a terminating zero.
const MIN_DOCUMENT_LEN: usize = 5;

/// A cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not consumed yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Consumes exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Truncated(what));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, WireError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a NUL-terminated UTF-8 string.
    pub(crate) fn cstring(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Truncated(what))?;
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| WireError::InvalidMessage(format!("{what} is not valid UTF-8")))?;
        self.pos += end + 1;
        Ok(text)
    }

    /// Reads one BSON document of at most `max` bytes.
    pub(crate) fn document(&mut self, max: usize) -> Result<Document, WireError> {
        let raw = validate_document(self.document_bytes(max)?)?;
        Document::try_from(raw).map_err(|e| WireError::InvalidBson(e.to_string()))
    }

    /// Reads one BSON document of at most `max` bytes without decoding it, validated as
    /// thoroughly as [`Reader::document`] would (every element, at every depth), in the
    /// form a decode and encode would give it: a document that would change (repeated
    /// keys, arrays not keyed 0, 1, ...) is normalized that way, so it stores as before.
    pub(crate) fn raw_document(&mut self, max: usize) -> Result<RawDocumentBuf, WireError> {
        let raw = RawDocument::from_bytes(self.document_bytes(max)?)
            .map_err(|e| WireError::InvalidBson(e.to_string()))?;
        if check_document(raw)?.canonical {
            return Ok(raw.to_owned());
        }
        let decoded = Document::try_from(raw).map_err(|e| WireError::InvalidBson(e.to_string()))?;
        RawDocumentBuf::try_from(&decoded).map_err(|e| WireError::Encode(e.to_string()))
    }

    /// The bytes of the next document, of at most `max` bytes.
    fn document_bytes(&mut self, max: usize) -> Result<&'a [u8], WireError> {
        let declared = match self.buf.get(self.pos..self.pos + 4) {
            Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => return Err(WireError::Truncated("document length")),
        };
        let len = usize::try_from(declared)
            .ok()
            .filter(|&len| len >= MIN_DOCUMENT_LEN)
            .ok_or_else(|| {
                WireError::InvalidBson(format!("document length {declared} is invalid"))
            })?;
        if len > max {
            return Err(WireError::DocumentTooLarge {
                size: i64::from(declared),
                max,
            });
        }
        self.take(len, "document")
    }
}

/// Decodes a complete BSON document, refusing nesting deeper than
/// [`rewind_bson::MAX_DEPTH`] before the (recursive) conversion to [`Document`].
pub fn decode_document(bytes: &[u8]) -> Result<Document, WireError> {
    let raw = validate_document(bytes)?;
    Document::try_from(raw).map_err(|e| WireError::InvalidBson(e.to_string()))
}

/// Checks a complete BSON document without decoding it: the walk parses every element at
/// every depth (the same checks the conversion to [`Document`] makes) and refuses nesting
/// deeper than [`rewind_bson::MAX_DEPTH`].
fn validate_document(bytes: &[u8]) -> Result<&RawDocument, WireError> {
    let raw = RawDocument::from_bytes(bytes).map_err(|e| WireError::InvalidBson(e.to_string()))?;
    check_document(raw)?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use rewind_bson::MAX_DEPTH;

    #[test]
    fn reads_scalars_and_strings() {
        let mut bytes = vec![1u8, 2, 0, 0, 0];
        bytes.extend_from_slice(b"abc\0");
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.i32("b").unwrap(), 2);
        assert_eq!(r.cstring("c").unwrap(), "abc");
        assert_eq!(r.remaining(), 0);
        assert!(matches!(r.i32("d"), Err(WireError::Truncated("d"))));
    }

    #[test]
    fn unterminated_cstring_is_truncated() {
        assert!(Reader::new(b"abc").cstring("name").is_err());
    }

    #[test]
    fn document_limits() {
        let bytes = doc! { "a": 1 }.to_vec().unwrap();
        assert_eq!(Reader::new(&bytes).document(1024).unwrap(), doc! { "a": 1 });
        assert!(matches!(
            Reader::new(&bytes).document(4),
            Err(WireError::DocumentTooLarge { .. })
        ));
        let mut lying = bytes.clone();
        lying[0] = 0xff;
        lying[3] = 0x7f;
        assert!(Reader::new(&lying).document(usize::MAX).is_err());
        lying[3] = 0xff;
        assert!(matches!(
            Reader::new(&lying).document(1024),
            Err(WireError::InvalidBson(_))
        ));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion_blowup() {
        // Builds {a:{a:{...}}} 100_000 levels deep by hand: too deep for
        // a recursive decoder, so the depth check must catch it first.
        let depth = 100_000usize;
        let mut bytes = Vec::new();
        for level in 0..depth {
            if level > 0 {
                bytes.extend_from_slice(&[0x03, b'a', 0]);
            }
            let len = 5 + 8 * (depth - 1 - level);
            bytes.extend_from_slice(&i32::try_from(len).unwrap().to_le_bytes());
        }
        bytes.extend(std::iter::repeat_n(0u8, depth));
        let err = decode_document(&bytes).unwrap_err();
        assert!(matches!(err, WireError::DocumentTooDeep(_)), "{err}");

        let mut nested = doc! { "leaf": 1 };
        for _ in 0..(MAX_DEPTH - 1) {
            nested = doc! { "a": nested };
        }
        assert!(decode_document(&nested.to_vec().unwrap()).is_ok());
        let too_deep = doc! { "a": nested };
        assert!(matches!(
            decode_document(&too_deep.to_vec().unwrap()),
            Err(WireError::DocumentTooDeep(_))
        ));
    }
}
