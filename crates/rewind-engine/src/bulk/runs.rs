//! Secondary index entries of a bulk load, sorted: buffered in memory, spilled to sorted
//! run files past a bound, and merged back in key order at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of entries (their keys plus [`ENTRY_OVERHEAD`] each) buffered before a sorted run
/// is spilled.
const BUFFERED_MAX: usize = 128 << 20;

/// What an entry costs in memory beyond its bytes: the tuple and the allocation's header.
const ENTRY_OVERHEAD: usize = 48;

/// Runs merged at once: more are merged into fewer runs first (each open run holds a file
/// and a buffer).
const FAN_IN: usize = 64;

/// Read and write buffer of a run file.
const RUN_BUFFER: usize = 1 << 20;

/// One index entry: index id, then key and document key concatenated, and where the key
/// ends. Keys are prefix-free, so the concatenation sorts as `(key, doc_key)` does, which is
/// the order SQLite keeps `idx_entries` in.
pub(super) type Entry = (i64, Vec<u8>, usize);

/// All index entries of a load.
pub(super) struct IndexRuns {
    dir: PathBuf,
    /// Bytes buffered before a run is spilled.
    bound: usize,
    buffered: Vec<Entry>,
    buffered_bytes: usize,
    runs: Vec<PathBuf>,
    /// Run files made so far (names are never reused).
    made: usize,
}

impl IndexRuns {
    /// Spills, when it must, into files named `index-run-*.tmp` in `dir`.
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            bound: BUFFERED_MAX,
            buffered: Vec::new(),
            buffered_bytes: 0,
            runs: Vec::new(),
            made: 0,
        }
    }

    /// Adds one entry.
    pub(super) fn push(&mut self, entry: Entry) -> io::Result<()> {
        self.buffered_bytes += entry.1.len() + ENTRY_OVERHEAD;
        self.buffered.push(entry);
        if self.buffered_bytes >= self.bound {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffered.sort_unstable();
        let (path, mut out) = self.new_run()?;
        for entry in self.buffered.drain(..) {
            write_entry(&mut out, &entry)?;
        }
        out.flush()?;
        self.buffered_bytes = 0;
        self.runs.push(path);
        Ok(())
    }

    fn new_run(&mut self) -> io::Result<(PathBuf, BufWriter<File>)> {
        let path = self.dir.join(format!("index-run-{}.tmp", self.made));
        self.made += 1;
        let out = BufWriter::with_capacity(RUN_BUFFER, File::create(&path)?);
        Ok((path, out))
    }

    /// Calls `f` with every entry in order, then removes the run files.
    pub(super) fn drain_sorted(
        mut self,
        mut f: impl FnMut(&Entry) -> crate::Result<bool>,
    ) -> crate::Result<()> {
        if self.runs.is_empty() {
            self.buffered.sort_unstable();
            for entry in &self.buffered {
                if !f(entry)? {
                    break;
                }
            }
            return Ok(());
        }
        let result = self.merge(&mut f);
        let removed = self.runs.iter().try_for_each(std::fs::remove_file);
        result?;
        Ok(removed?)
    }

    /// Merges the runs (the buffered entries spilled as one more) in order, at most
    /// [`FAN_IN`] at a time.
    fn merge(&mut self, f: &mut impl FnMut(&Entry) -> crate::Result<bool>) -> crate::Result<()> {
        if !self.buffered.is_empty() {
            self.spill()?;
        }
        while self.runs.len() > FAN_IN {
            let group: Vec<PathBuf> = self.runs.drain(..FAN_IN).collect();
            let (path, mut out) = self.new_run()?;
            self.runs.push(path);
            merge_runs(&group, &mut |entry| {
                write_entry(&mut out, entry)?;
                Ok(true)
            })?;
            out.flush()?;
            group.iter().try_for_each(std::fs::remove_file)?;
        }
        merge_runs(&self.runs, f)
    }
}

/// Calls `f` with the entries of the sorted `runs` in order, until it returns `false`.
fn merge_runs(
    runs: &[PathBuf],
    f: &mut impl FnMut(&Entry) -> crate::Result<bool>,
) -> crate::Result<()> {
    let mut readers = runs
        .iter()
        .map(|p| Ok(BufReader::with_capacity(RUN_BUFFER, File::open(p)?)))
        .collect::<io::Result<Vec<_>>>()?;
    let mut heap = BinaryHeap::new();
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some(entry) = read_entry(reader)? {
            heap.push(Reverse((entry, i)));
        }
    }
    while let Some(Reverse((entry, i))) = heap.pop() {
        if !f(&entry)? {
            break;
        }
        if let Some(next) = read_entry(&mut readers[i])? {
            heap.push(Reverse((next, i)));
        }
    }
    Ok(())
}

fn write_entry(out: &mut impl Write, (index_id, bytes, split): &Entry) -> io::Result<()> {
    out.write_all(&index_id.to_le_bytes())?;
    out.write_all(&(*split as u32).to_le_bytes())?;
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(bytes)
}

fn read_entry(reader: &mut impl Read) -> io::Result<Option<Entry>> {
    let mut head = [0u8; 16];
    match reader.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let index_id = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    let split = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) as usize;
    let len = u32::from_le_bytes(head[12..].try_into().expect("4 bytes")) as usize;
    let mut bytes = vec![0; len];
    reader.read_exact(&mut bytes)?;
    Ok(Some((index_id, bytes, split)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(runs: IndexRuns) -> Vec<Entry> {
        let mut got = Vec::new();
        runs.drain_sorted(|e| {
            got.push(e.clone());
            Ok(true)
        })
        .unwrap();
        got
    }

    #[test]
    fn spilled_runs_merge_back_in_order_and_are_removed() {
        let dir = std::env::temp_dir().join(format!("rewind-runs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut runs = IndexRuns::new(&dir);
        runs.bound = 3 * (2 + ENTRY_OVERHEAD);
        let mut expected = Vec::new();
        for i in 0..20u8 {
            let entry = (i64::from(i % 3), vec![i.wrapping_mul(37) % 11, i], 1);
            expected.push(entry.clone());
            runs.push(entry).unwrap();
        }
        assert_eq!(runs.runs.len(), 6);
        expected.sort();
        assert_eq!(drained(runs), expected);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // Stopping early stops the merge.
        let mut runs = IndexRuns::new(&dir);
        runs.bound = 2 * (1 + ENTRY_OVERHEAD);
        for i in 0..9 {
            runs.push((0, vec![i], 0)).unwrap();
        }
        let mut seen = 0;
        runs.drain_sorted(|_| {
            seen += 1;
            Ok(seen < 4)
        })
        .unwrap();
        assert_eq!(seen, 4);
        // More runs than are merged at once: merged in passes, every file removed.
        let mut runs = IndexRuns::new(&dir);
        runs.bound = 1;
        let mut expected = Vec::new();
        for i in 0..(3 * FAN_IN as u32 + 5) {
            let entry = (1, i.wrapping_mul(2_654_435_761).to_be_bytes().to_vec(), 2);
            expected.push(entry.clone());
            runs.push(entry).unwrap();
        }
        expected.sort();
        assert_eq!(drained(runs), expected);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
