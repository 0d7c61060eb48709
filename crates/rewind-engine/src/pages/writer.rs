//! Appending pages to a database file, on threads of their own.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::be_u32;

/// Bytes buffered before pages are written to the file.
const FLUSH_BYTES: usize = 1 << 20;

/// Bytes written between two syncs of the file, as a load goes.
const SYNC_BYTES: usize = 16 << 20;

/// Buffers of pages in circulation between the builder and the writing thread.
const BUFFERS: usize = 16;

/// Direct I/O needs buffers, offsets and lengths aligned to the device's blocks: 4 KiB covers
/// the usual ones.
const DIRECT_ALIGN: usize = 4096;

/// SQLite's lock bytes start at 2^30 (`PENDING_BYTE`); the page holding them is never used.
const LOCK_BYTE: u64 = 1 << 30;

/// Offsets in the 100-byte database header.
const HEADER_CHANGE_COUNTER: usize = 24;
const HEADER_PAGE_COUNT: usize = 28;
const HEADER_VERSION_VALID_FOR: usize = 92;

/// Appends pages after the last page of a database file that no connection has open.
///
/// A thread of its own does the writing, so that building the next pages overlaps with it.
/// It writes with direct I/O where the file system allows: the pages go from the buffer to
/// the disk without the kernel copying them into the page cache, which cost as much CPU as
/// building them (more where the VM hands the guest fresh memory slowly), and without
/// leaving a gigabyte of dirty pages for the final fsync. Elsewhere (tmpfs, say) it writes
/// through the page cache and a third thread syncs as the load goes.
pub(crate) struct PageWriter {
    page_size: usize,
    /// Number the next appended page gets (pages count from 1).
    next: u32,
    /// Appended pages not yet handed to the writing thread, the first numbered `buffered_from`.
    buffer: AlignedBuf,
    buffered_from: u32,
    /// Buffers to write, with their file offsets; and written ones, coming back for reuse.
    to_write: SyncSender<(u64, AlignedBuf)>,
    written: Receiver<AlignedBuf>,
    /// Buffers made so far (at most [`BUFFERS`]).
    buffers: usize,
    /// `None` once joined.
    writer: Option<JoinHandle<io::Result<File>>>,
}

impl PageWriter {
    /// Appends to the database at `path`, of `page_count` pages of `page_size` bytes.
    pub(crate) fn new(path: &Path, page_size: usize, page_count: u32) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(path)
            .ok();
        let (to_write, queue) = sync_channel::<(u64, AlignedBuf)>(BUFFERS);
        let (give_back, written) = sync_channel(BUFFERS);
        // Through the page cache, sync as the load goes rather than all at the end: the disk
        // works while pages are still being built, and the last fsync is short. A thread of
        // its own waits for the syncs, so that writing never does.
        let (sync_soon, sync_requests) = sync_channel::<()>(1);
        let sync_file = file.try_clone()?;
        let syncer: JoinHandle<io::Result<()>> = std::thread::Builder::new()
            .name("bulk-load-sync".into())
            .spawn(move || {
                for () in sync_requests {
                    sync_file.sync_data()?;
                }
                Ok(())
            })?;
        let writer = std::thread::Builder::new()
            .name("bulk-load-writer".into())
            .spawn(move || {
                let mut direct = direct;
                let mut unsynced = 0;
                for (offset, buffer) in queue {
                    if !write_direct(&mut direct, buffer.aligned(), offset)? {
                        file.write_all_at(buffer.bytes(), offset)?;
                        unsynced += buffer.bytes().len();
                    }
                    // A sync still running covers these bytes too, mostly: no queue.
                    if unsynced >= SYNC_BYTES && sync_soon.try_send(()).is_ok() {
                        unsynced = 0;
                    }
                    if buffer.capacity() >= FLUSH_BYTES {
                        let _ = give_back.try_send(buffer); // not a root page's copy
                    }
                }
                drop(sync_soon);
                syncer
                    .join()
                    .map_err(|_| io::Error::other("the bulk load's sync thread panicked"))??;
                Ok(file)
            })?;
        Ok(Self {
            page_size,
            next: page_count + 1,
            buffer: AlignedBuf::with_capacity(FLUSH_BYTES + 2 * page_size),
            buffered_from: page_count + 1,
            to_write,
            written,
            buffers: 1,
            writer: Some(writer),
        })
    }

    /// The number the next appended page gets.
    pub(super) fn next_page(&self) -> u32 {
        self.after(self.next - 1)
    }

    /// The number of the page appended after page `number`: the next one, except that the
    /// page holding byte 2^30 (SQLite's lock bytes) is never used.
    pub(super) fn after(&self, number: u32) -> u32 {
        let next = number + 1;
        if next == self.lock_page() {
            next + 1
        } else {
            next
        }
    }

    fn lock_page(&self) -> u32 {
        (LOCK_BYTE / self.page_size as u64) as u32 + 1
    }

    /// Appends one page; returns its number.
    pub(super) fn append(&mut self, page: &[u8]) -> io::Result<u32> {
        debug_assert_eq!(page.len(), self.page_size);
        if self.next == self.lock_page() {
            // Left as zeros: SQLite skips it, and the file has no hole there.
            self.buffer.zeros(self.page_size);
            self.next += 1;
        }
        let number = self.next;
        self.next += 1;
        self.buffer.extend(page);
        if self.buffer.bytes().len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(number)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.bytes().is_empty() {
            return Ok(());
        }
        let offset = u64::from(self.buffered_from - 1) * self.page_size as u64;
        // A few buffers circulate; past that, wait for the thread to give one back.
        let fresh = if self.buffers < BUFFERS {
            self.buffers += 1;
            AlignedBuf::with_capacity(FLUSH_BYTES + 2 * self.page_size)
        } else {
            let Ok(mut written) = self.written.recv() else {
                return Err(self.stopped());
            };
            written.clear();
            written
        };
        let full = std::mem::replace(&mut self.buffer, fresh);
        self.send(offset, full)?;
        self.buffered_from = self.next;
        Ok(())
    }

    fn send(&mut self, offset: u64, buffer: AlignedBuf) -> io::Result<()> {
        match self.to_write.send((offset, buffer)) {
            Ok(()) => Ok(()),
            Err(_) => Err(self.stopped()),
        }
    }

    /// The error the writing thread stopped on (it stops only on one).
    fn stopped(&mut self) -> io::Error {
        match self.join_writer() {
            Err(error) => error,
            Ok(_) => io::Error::other("the bulk load's page writer stopped"),
        }
    }

    /// Closes the queue and waits for the writer thread: the file once every queued page is
    /// written, or why it stopped.
    fn join_writer(&mut self) -> io::Result<File> {
        let (to_write, _) = sync_channel(0);
        drop(std::mem::replace(&mut self.to_write, to_write));
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(file)) => file,
            Some(Err(_)) => Err(io::Error::other("the bulk load's page writer panicked")),
            None => Err(io::Error::other("the bulk load's page writer stopped")),
        }
    }

    /// Overwrites an existing page (a tree's root, which keeps its number).
    pub(super) fn overwrite(&mut self, number: u32, page: &[u8]) -> io::Result<()> {
        let offset = u64::from(number - 1) * self.page_size as u64;
        let mut copy = AlignedBuf::with_capacity(page.len());
        copy.extend(page);
        self.send(offset, copy)
    }

    /// Writes what is buffered and records the new page count in the header, so that SQLite
    /// sees the appended pages as part of the database.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        let next = self.next;
        let file = self.join_writer()?;
        let mut header = [0u8; 100];
        file.read_exact_at(&mut header, 0)?;
        let counter = be_u32(&header, HEADER_CHANGE_COUNTER).wrapping_add(1);
        // The page count in the header counts only while this equals the change counter.
        header[HEADER_CHANGE_COUNTER..][..4].copy_from_slice(&counter.to_be_bytes());
        header[HEADER_VERSION_VALID_FOR..][..4].copy_from_slice(&counter.to_be_bytes());
        header[HEADER_PAGE_COUNT..][..4].copy_from_slice(&(next - 1).to_be_bytes());
        file.write_all_at(&header, 0)
    }
}

/// Writes `bytes` at `offset` with direct I/O if there is a direct handle and everything is
/// aligned; `Ok(false)` when the caller must write through the page cache instead. A file
/// system that refuses direct writes (`EINVAL`) is not asked again.
fn write_direct(direct: &mut Option<File>, bytes: Option<&[u8]>, offset: u64) -> io::Result<bool> {
    let (Some(file), Some(bytes)) = (direct.as_ref(), bytes) else {
        return Ok(false);
    };
    if !offset.is_multiple_of(DIRECT_ALIGN as u64) || !bytes.len().is_multiple_of(DIRECT_ALIGN) {
        return Ok(false);
    }
    match file.write_all_at(bytes, offset) {
        Ok(()) => Ok(true),
        // A file system without direct I/O says so one way or another.
        Err(e)
            if [rustix::io::Errno::INVAL, rustix::io::Errno::OPNOTSUPP]
                .iter()
                .any(|errno| e.raw_os_error() == Some(errno.raw_os_error())) =>
        {
            *direct = None;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// A byte buffer whose contents start at a [`DIRECT_ALIGN`] boundary, found inside a plain
/// allocation of a little more (no unsafe code); it never grows past its capacity, so the
/// boundary holds.
struct AlignedBuf {
    bytes: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    fn with_capacity(capacity: usize) -> Self {
        let mut bytes: Vec<u8> = Vec::with_capacity(capacity + DIRECT_ALIGN);
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        bytes.resize(start, 0);
        Self { bytes, start }
    }

    fn capacity(&self) -> usize {
        self.bytes.capacity() - DIRECT_ALIGN
    }

    fn extend(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }

    fn zeros(&mut self, len: usize) {
        self.bytes.resize(self.bytes.len() + len, 0);
    }

    fn clear(&mut self) {
        self.bytes.truncate(self.start);
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The contents, if they still start at the boundary.
    fn aligned(&self) -> Option<&[u8]> {
        (self.bytes.as_ptr().wrapping_add(self.start) as usize)
            .is_multiple_of(DIRECT_ALIGN)
            .then(|| self.bytes())
    }
}

impl Drop for PageWriter {
    /// A load abandoned before `finish` waits for the pages already queued, so that no thread
    /// writes to the file after the loader is gone.
    fn drop(&mut self) {
        let _ = self.join_writer();
    }
}
