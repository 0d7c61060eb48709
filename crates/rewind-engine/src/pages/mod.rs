//! SQLite index B-trees (the layout of a `WITHOUT ROWID` table) written directly, bottom-up,
//! from records given in key order: the bulk loader's fast path. SQLite's own insert costs
//! ~0.8 µs a row whatever the row's size; this costs about one copy of the bytes.
//!
//! Format references (<https://www.sqlite.org/fileformat2.html>): §1.6 b-tree pages (an index
//! leaf page is type 0x0a with an 8-byte header, an interior page type 0x02 with a 12-byte
//! header ending in the right-most child), §1.6 overflow rules for index cells, §2.1 the record
//! format. In an index B-tree every entry lives in exactly one page, interior pages included:
//! the entry that does not fit a full page goes up as the divider between it and the next one.

mod record;
mod writer;

pub(crate) use record::Record;
pub(crate) use writer::PageWriter;

use std::io;

use record::{put_varint, varint_len};

/// Page type flags.
const INDEX_LEAF: u8 = 0x0a;
const INDEX_INTERIOR: u8 = 0x02;

/// The big-endian `u32` at byte `at`.
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One page being filled: cell pointers grow up from the header, cells down from the end.
struct Node {
    page: Vec<u8>,
    leaf: bool,
    cells: usize,
    /// Start of the cell content area.
    top: usize,
    /// Right-most child (interior pages).
    right: u32,
}

impl Node {
    fn new(page_size: usize, leaf: bool) -> Self {
        Self {
            page: vec![0; page_size],
            leaf,
            cells: 0,
            top: page_size,
            right: 0,
        }
    }

    fn header_len(&self) -> usize {
        if self.leaf { 8 } else { 12 }
    }

    fn fits(&self, cell_len: usize) -> bool {
        self.top - self.header_len() - 2 * self.cells >= cell_len + 2
    }

    /// Makes room for a cell of `len` bytes after the others; returns it to fill.
    fn reserve(&mut self, len: usize) -> &mut [u8] {
        self.top -= len;
        let pointer = self.header_len() + 2 * self.cells;
        self.page[pointer..pointer + 2].copy_from_slice(&(self.top as u16).to_be_bytes());
        self.cells += 1;
        &mut self.page[self.top..self.top + len]
    }

    /// Removes the last cell and returns its bytes.
    fn pop(&mut self) -> Vec<u8> {
        let end = if self.cells >= 2 {
            let pointer = self.header_len() + 2 * (self.cells - 2);
            usize::from(u16::from_be_bytes([
                self.page[pointer],
                self.page[pointer + 1],
            ]))
        } else {
            self.page.len()
        };
        let cell = self.page[self.top..end].to_vec();
        self.cells -= 1;
        self.top = end;
        cell
    }

    /// Writes the page header, zeroes the free gap and returns the finished page.
    fn seal(&mut self) -> &[u8] {
        let header = self.header_len();
        let cells = self.cells as u16;
        let top = self.top as u16; // a 65,536-byte page's empty content area reads as 0
        let page = &mut self.page;
        page[0] = if self.leaf {
            INDEX_LEAF
        } else {
            INDEX_INTERIOR
        };
        page[1..3].fill(0);
        page[3..5].copy_from_slice(&cells.to_be_bytes());
        page[5..7].copy_from_slice(&top.to_be_bytes());
        page[7] = 0;
        if !self.leaf {
            page[8..12].copy_from_slice(&self.right.to_be_bytes());
        }
        page[header + 2 * self.cells..self.top].fill(0);
        &self.page
    }

    fn clear(&mut self) {
        self.cells = 0;
        self.top = self.page.len();
        self.right = 0;
    }
}

/// One level of the tree: the node being filled and, after it filled up, the full node
/// before it with the entry that divides them, held back until the new node has an entry.
struct Level {
    node: Node,
    held: Option<(Node, Vec<u8>)>,
}

/// Builds one index B-tree whose root page already exists (empty) at `root`.
pub(crate) struct TreeBuilder {
    root: u32,
    page_size: usize,
    max_local: usize,
    min_local: usize,
    /// Leaf level first.
    levels: Vec<Level>,
    spare: Vec<Node>,
}

impl TreeBuilder {
    /// A builder for the tree rooted at page `root` of a file with `page_size`-byte pages
    /// and no reserved bytes.
    pub(crate) fn new(root: u32, page_size: usize) -> Self {
        let usable = page_size;
        Self {
            root,
            page_size,
            max_local: (usable - 12) * 64 / 255 - 23,
            min_local: (usable - 12) * 32 / 255 - 23,
            levels: vec![Level {
                node: Node::new(page_size, true),
                held: None,
            }],
            spare: Vec::new(),
        }
    }

    /// Adds the record made of `parts` (a record header and column bodies, concatenated);
    /// records must come in strictly increasing key order.
    pub(crate) fn push(&mut self, pages: &mut PageWriter, parts: &[&[u8]]) -> io::Result<()> {
        let payload: usize = parts.iter().map(|p| p.len()).sum();
        let local = self.local_size(payload);
        let cell_len = varint_len(payload as u64) + local + if local < payload { 4 } else { 0 };
        self.release_held(pages, 0)?;
        if local == payload && self.levels[0].node.fits(cell_len) {
            let cell = self.levels[0].node.reserve(cell_len);
            let n = put_varint(cell, payload as u64);
            copy_parts(&mut cell[n..], parts, 0);
            return Ok(());
        }
        let mut cell = vec![0; cell_len];
        let n = put_varint(&mut cell, payload as u64);
        copy_parts(&mut cell[n..n + local], parts, 0);
        if local < payload {
            let first = self.write_overflow(pages, parts, local)?;
            cell[n + local..].copy_from_slice(&first.to_be_bytes());
        }
        let level = &mut self.levels[0];
        if level.node.fits(cell_len) {
            level.node.reserve(cell_len).copy_from_slice(&cell);
        } else {
            self.hold(0, cell);
        }
        Ok(())
    }

    /// Writes the pages still in memory, the root last, in its own page.
    pub(crate) fn finish(mut self, pages: &mut PageWriter) -> io::Result<()> {
        if self.levels[0].node.cells == 0 && self.levels[0].held.is_none() {
            return Ok(()); // no records: the root stays the empty leaf SQLite made
        }
        let mut last_child = None;
        let mut depth = 0;
        loop {
            if let Some(child) = last_child {
                self.levels[depth].node.right = child;
            }
            if let Some((mut full, divider)) = self.levels[depth].held.take() {
                // The level's last node is empty: it takes the divider as its only entry,
                // and the full node's last entry divides them instead.
                let last = full.pop();
                let node = &mut self.levels[depth].node;
                let up = if full.leaf {
                    node.reserve(divider.len()).copy_from_slice(&divider);
                    last
                } else {
                    let cell = node.reserve(4 + divider.len());
                    cell[..4].copy_from_slice(&full.right.to_be_bytes());
                    cell[4..].copy_from_slice(&divider);
                    full.right = be_u32(&last, 0);
                    last[4..].to_vec()
                };
                let number = pages.append(full.seal())?;
                self.spare.push(full);
                self.add_child(pages, depth + 1, number, up)?;
            }
            let top = depth + 1 == self.levels.len();
            let node = &mut self.levels[depth].node;
            if top {
                return pages.overwrite(self.root, node.seal());
            }
            last_child = Some(pages.append(node.seal())?);
            depth += 1;
        }
    }

    /// How much of a `payload`-byte entry stays in its cell (§1.6, index pages).
    fn local_size(&self, payload: usize) -> usize {
        if payload <= self.max_local {
            return payload;
        }
        let (min, usable) = (self.min_local, self.page_size);
        let k = min + (payload - min) % (usable - 4);
        if k <= self.max_local { k } else { min }
    }

    /// Writes the payload after its first `skip` bytes to a chain of overflow pages;
    /// returns the first page's number.
    fn write_overflow(
        &mut self,
        pages: &mut PageWriter,
        parts: &[&[u8]],
        skip: usize,
    ) -> io::Result<u32> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let per_page = self.page_size - 4;
        let count = (total - skip).div_ceil(per_page);
        let first = pages.next_page();
        let mut number = first;
        let mut page = vec![0u8; self.page_size];
        for i in 0..count {
            let next = if i + 1 == count {
                0
            } else {
                pages.after(number)
            };
            page[..4].copy_from_slice(&next.to_be_bytes());
            let from = skip + i * per_page;
            let len = per_page.min(total - from);
            copy_parts(&mut page[4..4 + len], parts, from);
            page[4 + len..].fill(0);
            let appended = pages.append(&page)?;
            debug_assert_eq!(appended, number);
            number = next;
        }
        Ok(first)
    }

    /// The level's node is full: keep it back with `divider`, start an empty node.
    fn hold(&mut self, depth: usize, divider: Vec<u8>) {
        let leaf = depth == 0;
        let mut fresh = self
            .spare
            .pop()
            .unwrap_or_else(|| Node::new(self.page_size, leaf));
        fresh.clear();
        fresh.leaf = leaf;
        let full = std::mem::replace(&mut self.levels[depth].node, fresh);
        self.levels[depth].held = Some((full, divider));
    }

    /// The level's new node is about to get its first entry: write the full node held
    /// back and pass its divider up.
    fn release_held(&mut self, pages: &mut PageWriter, depth: usize) -> io::Result<()> {
        if let Some((mut full, divider)) = self.levels[depth].held.take() {
            let number = pages.append(full.seal())?;
            self.spare.push(full);
            self.add_child(pages, depth + 1, number, divider)?;
        }
        Ok(())
    }

    /// Adds `child` and the entry after it (a cell without child pointer) to level `depth`.
    fn add_child(
        &mut self,
        pages: &mut PageWriter,
        depth: usize,
        child: u32,
        divider: Vec<u8>,
    ) -> io::Result<()> {
        if depth == self.levels.len() {
            self.levels.push(Level {
                node: Node::new(self.page_size, false),
                held: None,
            });
        }
        self.release_held(pages, depth)?;
        let node = &mut self.levels[depth].node;
        if node.fits(4 + divider.len()) {
            let cell = node.reserve(4 + divider.len());
            cell[..4].copy_from_slice(&child.to_be_bytes());
            cell[4..].copy_from_slice(&divider);
        } else {
            node.right = child;
            self.hold(depth, divider);
        }
        Ok(())
    }
}

/// Copies the concatenation of `parts`, from byte `skip` on, into all of `out`.
fn copy_parts(out: &mut [u8], parts: &[&[u8]], mut skip: usize) {
    let mut at = 0;
    for part in parts {
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        let take = (part.len() - skip).min(out.len() - at);
        out[at..at + take].copy_from_slice(&part[skip..skip + take]);
        at += take;
        skip = 0;
        if at == out.len() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        for v in [
            0u64,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            0x1f_ffff,
            0x20_0000,
            1 << 40,
            u64::MAX,
        ] {
            let mut buf = [0u8; 9];
            let len = put_varint(&mut buf, v);
            assert_eq!(len, varint_len(v));
            // SQLite's decoder: 7 bits a byte while the high bit is set, 8 in the ninth.
            let mut out = 0u64;
            for (i, b) in buf[..len].iter().enumerate() {
                if i == 8 {
                    out = (out << 8) | u64::from(*b);
                } else {
                    out = (out << 7) | u64::from(b & 0x7f);
                }
            }
            assert_eq!(out, v, "{v:#x}");
        }
    }

    /// Builds `records` (sorted, unique keys) with the page writer into a fresh SQLite
    /// table of 512-byte pages, then has SQLite check the file and read everything back.
    fn round_trip(tag: &str, records: &[(i64, Vec<u8>, Vec<u8>)]) {
        let path = std::env::temp_dir().join(format!(
            "rewind-pages-{tag}-{}-{}.sqlite",
            std::process::id(),
            records.len()
        ));
        let _ = std::fs::remove_file(&path);
        let (root, count) = {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "page_size", 512).unwrap();
            conn.execute_batch(
                "CREATE TABLE t(a INTEGER NOT NULL, b BLOB NOT NULL, c BLOB NOT NULL,
                 PRIMARY KEY(a, b)) WITHOUT ROWID;
                 CREATE TABLE other(x);",
            )
            .unwrap();
            let root: u32 = conn
                .query_row(
                    "SELECT rootpage FROM sqlite_schema WHERE name='t'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let count: u32 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap();
            (root, count)
        };
        let mut pages = PageWriter::new(&path, 512, count).unwrap();
        let mut tree = TreeBuilder::new(root, 512);
        for (a, b, c) in records {
            let record = Record::new(*a, &[b.len(), c.len()]);
            tree.push(&mut pages, &[record.header(), record.int(), b, c])
                .unwrap();
        }
        tree.finish(&mut pages).unwrap();
        pages.finish().unwrap();

        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{tag}: {} records", records.len());
        // SQLite still writes to the file: its own pages go after the appended ones.
        conn.execute("INSERT INTO other VALUES(zeroblob(5000))", [])
            .unwrap();
        let mut stmt = conn.prepare("SELECT a, b, c FROM t ORDER BY a, b").unwrap();
        let read: Vec<(i64, Vec<u8>, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(read == records, "{tag}: records differ");
        // Lookups go through the interior pages.
        for (a, b, c) in records.iter().step_by(97) {
            let got: Vec<u8> = conn
                .query_row(
                    "SELECT c FROM t WHERE a=?1 AND b=?2",
                    rusqlite::params![a, b],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(got == *c);
        }
        // And the tree takes ordinary writes afterwards.
        conn.execute("DELETE FROM t WHERE a % 3 = 0", []).unwrap();
        conn.execute("INSERT INTO t VALUES(-1, x'00', zeroblob(3000))", [])
            .unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{tag} after writes");
        drop(stmt);
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn sqlite_reads_the_trees_it_did_not_write() {
        round_trip("empty", &[]);
        round_trip("one", &[(1, b"k".to_vec(), b"v".to_vec())]);
        // Small records of varied sizes and integer widths: several levels of 512-byte pages.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for count in [2usize, 3, 7, 40, 500, 5000] {
            let records: Vec<_> = (0..count as i64)
                .map(|i| {
                    let a = [0, 1, -5, 300, 70_000, 1 << 40][(i as usize * 6) / count.max(1)];
                    let b = (i as u32).to_be_bytes().to_vec();
                    let c = vec![i as u8; next(60) as usize];
                    (a, b, c)
                })
                .collect::<Vec<_>>();
            let mut records = records;
            records.sort();
            round_trip("small", &records);
        }
        // Payloads around and far past the local limit: overflow chains, fat interior cells.
        for count in [1usize, 6, 300] {
            let records: Vec<_> = (0..count)
                .map(|i| {
                    let len = [90, 101, 102, 103, 140, 489, 490, 491, 2000, 40_000][i % 10]
                        + next(3) as usize;
                    let b = vec![b'k'; 1 + (i % 7) * 30]
                        .into_iter()
                        .chain((i as u32).to_be_bytes())
                        .collect::<Vec<u8>>();
                    (7, b, (0..len).map(|j| (j * 31 + i) as u8).collect())
                })
                .collect();
            let mut records = records;
            records.sort();
            round_trip("overflow", &records);
        }
    }

    /// A tree appended from page `start` on (the pages before it a sparse hole, for speed):
    /// what SQLite counts in it, and its integrity check.
    fn build_from(start: u32, value_len: usize) -> (i64, String) {
        let path = std::env::temp_dir().join(format!(
            "rewind-pages-lock-{}-{start}-{value_len}.sqlite",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let root: u32 = {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "page_size", 16384).unwrap();
            conn.pragma_update(None, "journal_mode", "OFF").unwrap();
            conn.execute_batch(
                "CREATE TABLE t(a INTEGER NOT NULL, b BLOB NOT NULL, c BLOB NOT NULL,
                 PRIMARY KEY(a, b)) WITHOUT ROWID;",
            )
            .unwrap();
            conn.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name='t'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(u64::from(start) * 16384)
            .unwrap();
        let mut pages = PageWriter::new(&path, 16384, start).unwrap();
        let mut tree = TreeBuilder::new(root, 16384);
        for i in 0..300i64 {
            let (b, c) = (i.to_be_bytes().to_vec(), vec![7u8; value_len]);
            let record = Record::new(1, &[b.len(), c.len()]);
            tree.push(&mut pages, &[record.header(), record.int(), &b, &c])
                .unwrap();
        }
        tree.finish(&mut pages).unwrap();
        pages.finish().unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let count = conn
            .query_row(
                "SELECT count(*) FROM t WHERE length(c) = ?1",
                [value_len],
                |r| r.get(0),
            )
            .unwrap();
        // The hole's pages are zeros, not a B-tree's: check only what the tree reaches.
        let check = conn
            .query_row("PRAGMA integrity_check(t)", [], |r| r.get(0))
            .unwrap_or_else(|e: rusqlite::Error| e.to_string());
        drop(conn);
        let _ = std::fs::remove_file(&path);
        (count, check)
    }

    #[test]
    fn the_page_holding_sqlites_lock_bytes_is_skipped() {
        let lock = (1u32 << 30) / 16384 + 1;
        // Leaves and interior pages, then overflow chains, laid across the lock page.
        for (start, value_len) in [(lock - 10, 1000), (lock - 10, 40_000), (lock - 1, 40_000)] {
            let (count, check) = build_from(start, value_len);
            assert_eq!(count, 300, "from page {start}, {value_len}-byte values");
            assert_eq!(check, "ok", "from page {start}, {value_len}-byte values");
        }
    }

    #[test]
    fn parts_copy_from_any_offset() {
        let parts: [&[u8]; 3] = [b"ab", b"", b"cdef"];
        let mut out = [0u8; 3];
        copy_parts(&mut out, &parts, 1);
        assert_eq!(&out, b"bcd");
    }
}
