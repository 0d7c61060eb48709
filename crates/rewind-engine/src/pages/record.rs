//! SQLite's variable-length integers and record format (fileformat2 §1.2, §2.1).

/// Bytes of SQLite's variable-length integer for `v`.
pub(crate) fn varint_len(v: u64) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => {
            let bits = 64 - v.leading_zeros() as usize;
            if bits > 56 { 9 } else { bits.div_ceil(7) }
        }
    }
}

/// Writes SQLite's big-endian variable-length integer; returns its length.
pub(crate) fn put_varint(out: &mut [u8], v: u64) -> usize {
    // Lengths and serial types of documents: one or two bytes nearly always.
    if v < 0x80 {
        out[0] = v as u8;
        return 1;
    }
    if v < 0x4000 {
        out[0] = (v >> 7) as u8 | 0x80;
        out[1] = v as u8 & 0x7f;
        return 2;
    }
    let len = varint_len(v);
    if len == 9 {
        out[8] = v as u8;
        let mut rest = v >> 8;
        for i in (0..8).rev() {
            out[i] = (rest as u8 & 0x7f) | 0x80;
            rest >>= 7;
        }
        return 9;
    }
    for (i, byte) in out[..len].iter_mut().enumerate() {
        let bits = ((v >> (7 * (len - 1 - i))) & 0x7f) as u8;
        *byte = if i + 1 < len { bits | 0x80 } else { bits };
    }
    len
}

/// A record of one integer column followed by blob columns, as SQLite stores it.
pub(crate) struct Record {
    header: [u8; 32],
    header_len: usize,
    int: [u8; 8],
    int_len: usize,
}

impl Record {
    /// The header and integer body for `(int, blobs…)` where `blob_lens` are the blobs' sizes.
    pub(crate) fn new(int: i64, blob_lens: &[usize]) -> Self {
        let (serial, int_len) = match int {
            -0x80..=0x7f => (1, 1),
            -0x8000..=0x7fff => (2, 2),
            -0x80_0000..=0x7f_ffff => (3, 3),
            -0x8000_0000..=0x7fff_ffff => (4, 4),
            -0x8000_0000_0000..=0x7fff_ffff_ffff => (5, 6),
            _ => (6, 8),
        };
        let mut header = [0u8; 32];
        // Header length varint (one byte: a handful of columns), then the serial types.
        let mut at = 1;
        at += put_varint(&mut header[at..], serial);
        for len in blob_lens {
            at += put_varint(&mut header[at..], *len as u64 * 2 + 12);
        }
        header[0] = at as u8;
        let mut out = [0u8; 8];
        out[..int_len].copy_from_slice(&int.to_be_bytes()[8 - int_len..]);
        Self {
            header,
            header_len: at,
            int: out,
            int_len,
        }
    }

    /// The record header.
    pub(crate) fn header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }

    /// The integer column's body.
    pub(crate) fn int(&self) -> &[u8] {
        &self.int[..self.int_len]
    }
}
