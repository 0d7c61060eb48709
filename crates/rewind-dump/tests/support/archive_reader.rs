//! A reader of mongodump archives written from mongo-tools' spec
//! (`common/archive/spec.md`) and parser rules, sharing no code with the
//! crate: it is the oracle the writer is checked against.

use std::collections::BTreeMap;

const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
const TERMINATOR: u32 = 0xffff_ffff;
const MAX_BSON: usize = 16 * 1024 * 1024;

/// Go's `crc64.MakeTable(crc64.ECMA)` and `crc64.Update`, bit by bit: the
/// reflected ECMA-182 polynomial, with the running value inverted on entry
/// and on exit.
pub fn go_crc64_ecma(data: &[u8]) -> u64 {
    const POLY: u64 = 0xC96C_5795_D787_0F42;
    let mut crc = !0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Everything an archive holds.
#[derive(Debug)]
pub struct Archive {
    pub header: bson::Document,
    /// The prelude's collection metadata documents, in order.
    pub prelude: Vec<bson::Document>,
    /// `(db, collection)` → raw documents, in order of appearance.
    pub data: BTreeMap<(String, String), Vec<Vec<u8>>>,
    /// Namespaces in the order their first block appears.
    pub order: Vec<(String, String)>,
    /// How many data segments each namespace had.
    pub segments: BTreeMap<(String, String), usize>,
}

enum Item<'a> {
    Doc(&'a [u8]),
    Terminator,
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Reads a 4-byte length: the terminator, or a document of 5..16 MiB
    /// ending in NUL. `None` at a clean end of input.
    fn next(&mut self) -> Result<Option<Item<'a>>, String> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let prefix: [u8; 4] = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or("truncated length")?
            .try_into()
            .map_err(|_| "short length")?;
        let len = u32::from_le_bytes(prefix);
        if len == TERMINATOR {
            self.pos += 4;
            return Ok(Some(Item::Terminator));
        }
        let len = len as usize;
        if !(5..=MAX_BSON).contains(&len) {
            return Err(format!("bad document length {len}"));
        }
        let doc = self
            .bytes
            .get(self.pos..self.pos + len)
            .ok_or("truncated document")?;
        if doc.last() != Some(&0) {
            return Err("document does not end in NUL".into());
        }
        self.pos += len;
        Ok(Some(Item::Doc(doc)))
    }

    fn expect_doc(&mut self) -> Result<&'a [u8], String> {
        match self.next()? {
            Some(Item::Doc(d)) => Ok(d),
            Some(Item::Terminator) => Err("terminator where a document was expected".into()),
            None => Err("end of input where a document was expected".into()),
        }
    }
}

fn parse(doc: &[u8]) -> Result<bson::Document, String> {
    bson::Document::from_reader(doc).map_err(|e| e.to_string())
}

/// Parses a whole (uncompressed) archive, checking every CRC.
pub fn read_archive(bytes: &[u8]) -> Result<Archive, String> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err("bad magic number".into());
    }
    let mut p = Parser { bytes, pos: 4 };
    let header = parse(p.expect_doc()?)?;
    let mut prelude = Vec::new();
    loop {
        match p.next()? {
            Some(Item::Doc(d)) => prelude.push(parse(d)?),
            Some(Item::Terminator) => break,
            None => return Err("prelude not terminated".into()),
        }
    }

    let mut archive = Archive {
        header,
        prelude,
        data: BTreeMap::new(),
        order: Vec::new(),
        segments: BTreeMap::new(),
    };
    let mut finished = BTreeMap::new();
    while let Some(item) = p.next()? {
        let Item::Doc(raw_header) = item else {
            return Err("block without a namespace header".into());
        };
        let h = parse(raw_header)?;
        let keys: Vec<&str> = h.keys().map(String::as_str).collect();
        if keys != ["db", "collection", "EOF", "CRC"] {
            return Err(format!("namespace header fields {keys:?}"));
        }
        let ns = (
            h.get_str("db").map_err(|e| e.to_string())?.to_owned(),
            h.get_str("collection")
                .map_err(|e| e.to_string())?
                .to_owned(),
        );
        let eof = h.get_bool("EOF").map_err(|e| e.to_string())?;
        let crc = h.get_i64("CRC").map_err(|e| e.to_string())?;
        if finished.contains_key(&ns) {
            return Err(format!("block for {ns:?} after its EOF"));
        }
        if !archive.order.contains(&ns) {
            archive.order.push(ns.clone());
        }
        let docs = archive.data.entry(ns.clone()).or_default();
        if eof {
            match p.next()? {
                Some(Item::Terminator) => {}
                _ => return Err("EOF header not followed by a terminator".into()),
            }
            let body: Vec<u8> = docs.concat();
            let want = go_crc64_ecma(&body);
            if crc as u64 != want {
                return Err(format!(
                    "CRC of {ns:?} is {:#x}, data gives {want:#x}",
                    crc as u64
                ));
            }
            finished.insert(ns, ());
            continue;
        }
        if crc != 0 {
            return Err("data segment header with a CRC".into());
        }
        *archive.segments.entry(ns).or_default() += 1;
        loop {
            match p.next()? {
                Some(Item::Doc(d)) => docs.push(d.to_vec()),
                Some(Item::Terminator) => break,
                None => return Err("data segment not terminated".into()),
            }
        }
    }
    if finished.len() != archive.data.len() {
        return Err("a namespace has no EOF block".into());
    }
    Ok(archive)
}
