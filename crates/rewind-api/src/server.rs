//! The HTTP server: what `axum::serve` does (HTTP/1 and, when built in, HTTP/2 through hyper,
//! upgrades, keep-alive, graceful shutdown), except that download requests leading a
//! connection are answered here, so their file goes out with `sendfile(2)` instead of being
//! copied through a body stream.
//!
//! Each connection's request heads are read here while they are download `GET`s or `HEAD`s
//! without a body. Such a request still goes through the whole router (request id, tracing,
//! metrics, the download handler's rules); only the writing of its response differs. At the
//! first other request, hyper takes the connection over, the bytes already read replayed to it.

mod download;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::{Buf, BytesMut};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A request head longer than this is left to hyper, which has its own limit and refusal.
const MAX_HEAD: usize = 16 * 1024;

/// Serves `router` on `listener` until `signal` completes, then stops accepting, lets
/// requests in flight finish (closing idle connections) and returns once every connection
/// has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_sender, stop) = watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        stop_sender.send_replace(true);
    });
    let stop = Stop(stop);
    // Every connection task holds a receiver: the sender sees them all closed once the last
    // task ends.
    let (open_sender, open) = watch::channel(());
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = stop.clone().requested() => break,
        };
        let router = router.clone();
        let stop = stop.clone();
        let open = open.clone();
        tokio::spawn(async move {
            connection(socket, router, stop).await;
            drop(open);
        });
    }
    drop(open);
    drop(listener);
    open_sender.closed().await;
}

/// Whether shutdown was requested.
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    async fn requested(mut self) {
        // An error means the sender is gone, which it is only after sending `true`.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// As `axum::serve` (after hyper 0.14): a failed connection is the peer's business; anything
/// else (such as running out of file descriptors) is logged and waited out for a second.
async fn accept_failed(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection: download requests here for as long as they come, then hyper.
async fn connection(mut socket: TcpStream, router: Router, stop: Stop) {
    let mut buffered = BytesMut::new();
    loop {
        let head = tokio::select! {
            head = next_head(&mut socket, &mut buffered) => head,
            // As hyper does with a connection waiting for a request: close it.
            () = stop.clone().requested() => return,
        };
        let (request, length) = match head {
            Next::Closed => return,
            Next::Other => break,
            Next::Download(request, length) => (request, length),
        };
        buffered.advance(length);
        let keep_alive = download::respond(&mut socket, &router, *request).await;
        if !keep_alive || stop.is_requested() {
            return;
        }
    }
    let io = TokioIo::new(Replay { buffered, socket });
    let builder = auto::Builder::new(TokioExecutor::new());
    let served = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(router));
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = stop.requested() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::trace!(%error, "a connection ended in error");
    }
}

/// What a connection's next request asks for.
enum Next {
    /// The peer closed the connection, or the socket failed.
    Closed,
    /// A download request this module answers, and the length of its head.
    Download(Box<axum::extract::Request>, usize),
    /// Anything else, including malformed or overlong heads: hyper's to answer or refuse.
    Other,
}

/// Reads until `buffered` starts with a whole request head, or shows it is not a download.
async fn next_head(socket: &mut TcpStream, buffered: &mut BytesMut) -> Next {
    loop {
        if !buffered.is_empty() {
            match download::parse(buffered) {
                download::Parsed::Download(request, length) => {
                    return Next::Download(request, length);
                }
                download::Parsed::Other => return Next::Other,
                download::Parsed::Partial if buffered.len() >= MAX_HEAD => return Next::Other,
                download::Parsed::Partial => {}
            }
        }
        buffered.reserve(4096);
        match socket.read_buf(buffered).await {
            Ok(0) | Err(_) => return Next::Closed,
            Ok(_) => {}
        }
    }
}

/// A connection whose first bytes were already read: they are read again before the socket's.
struct Replay {
    buffered: BytesMut,
    socket: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered.is_empty() {
            return Pin::new(&mut this.socket).poll_read(context, buffer);
        }
        let length = this.buffered.len().min(buffer.remaining());
        buffer.put_slice(&this.buffered[..length]);
        this.buffered.advance(length);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(context)
    }
}
