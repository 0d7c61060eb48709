//! The bytes of a packaged file one download response carries, and the two ways they leave:
//! a body stream any connection can poll, or `sendfile(2)` straight from the page cache on a
//! connection the server answers itself (`crate::server`).

use std::io::{self, Read, Seek};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Completion;

/// How much of the file one body chunk carries: large enough that the per-chunk costs (a
/// blocking-pool hop, an allocation, a write call) vanish beside copying the bytes.
const CHUNK: u64 = 1 << 20;

/// The most Linux moves in one `sendfile` call; larger counts are clamped by the kernel anyway.
const SENDFILE_MAX: u64 = 0x7fff_f000;

/// Part of a packaged file, as a `GET` response's extension.
#[derive(Clone)]
pub(crate) struct FileSlice {
    /// Positioned at `range.start`: the body stream reads it in order, while `sendfile` passes
    /// explicit offsets and never moves the position. A response uses one or the other.
    file: Arc<std::fs::File>,
    range: Range<u64>,
    completes: Option<Completion>,
}

impl FileSlice {
    /// Opens `path` for the bytes `range`; delivering them all records `completes`.
    pub(super) async fn open(
        path: &Path,
        range: Range<u64>,
        completes: Option<Completion>,
    ) -> io::Result<Self> {
        let (path, start) = (path.to_owned(), range.start);
        // One trip to the blocking pool: it is on the path to the response's first byte.
        let file = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(path)?;
            file.seek(io::SeekFrom::Start(start))?;
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Self {
            file: Arc::new(file),
            range,
            completes,
        })
    }

    /// How many bytes the slice holds.
    pub(crate) fn len(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// The slice as a body. Reads run on the blocking pool straight into each chunk's
    /// allocation (no zeroing, no second buffer); the download is recorded complete as the
    /// last chunk is handed to the connection, because the server stops polling a body once
    /// its `Content-Length` is reached.
    pub(super) fn stream(self) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
        futures_util::stream::try_unfold(self, |mut slice| async move {
            if slice.range.is_empty() {
                return Ok(None);
            }
            let want = slice.len().min(CHUNK);
            let file = slice.file.clone();
            let chunk = tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(want as usize);
                (&*file).take(want).read_to_end(&mut chunk)?;
                Ok::<_, io::Error>(chunk)
            })
            .await
            .map_err(io::Error::other)??;
            slice.advance(chunk.len() as u64)?;
            if slice.range.is_empty() {
                slice.delivered().await;
            }
            Ok(Some((Bytes::from(chunk), slice)))
        })
    }

    /// Sends the slice on `socket` with `sendfile(2)`: the kernel moves the bytes from the page
    /// cache to the socket without a copy through this process. A download the slice completes
    /// is recorded before its last byte goes, as the body stream records it before its last
    /// chunk: a peer holding the whole file cannot start another download the record misses.
    /// The bytes already queued on the socket keep the peer busy meanwhile.
    pub(crate) async fn send(mut self, socket: &TcpStream) -> io::Result<()> {
        let Some(last) = self.range.end.checked_sub(1) else {
            return Ok(());
        };
        self.send_until(socket, last).await?;
        self.delivered().await;
        self.send_until(socket, self.range.end).await
    }

    /// Sends the slice's bytes before `end`.
    async fn send_until(&mut self, socket: &TcpStream, end: u64) -> io::Result<()> {
        while self.range.start < end {
            let count = (end - self.range.start).min(SENDFILE_MAX) as usize;
            let mut offset = self.range.start;
            // `try_io` clears the readiness tokio cached when the socket buffer is full, so the
            // next `writable` waits for the peer to read.
            socket.writable().await?;
            let sent = socket.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(socket, &*self.file, Some(&mut offset), count)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(sent) => self.advance(sent as u64)?,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Moves past `sent` bytes; none means the file ended before the range did.
    fn advance(&mut self, sent: u64) -> io::Result<()> {
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the packaged download is shorter than recorded",
            ));
        }
        self.range.start += sent;
        Ok(())
    }

    async fn delivered(&self) {
        if let Some(completes) = &self.completes {
            completes.record().await;
        }
    }
}
