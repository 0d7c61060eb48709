//! One client connection: framing messages off the socket, answering them,
//! and leaving promptly on shutdown.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::command::ConnectionContext;
use crate::dispatch::{Outcome, respond};
use crate::error::WireError;
use crate::header::MsgHeader;
use crate::limits::HEADER_LEN;
use crate::state::Shared;

/// Initial buffer for a message body: the buffer then grows with the bytes
/// that actually arrive, so a header claiming 48 MB costs nothing up front.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// Serves `stream` until the client leaves, sends something unframeable,
/// or the server shuts down. `_permit` holds the connection's slot.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    context: ConnectionContext,
    _permit: OwnedSemaphorePermit,
) {
    // Replies are small and latency-bound; Nagle would delay them.
    let _ = stream.set_nodelay(true);
    let mut shutdown = shared.shutdown.subscribe();
    let frame_timeout = shared.config.frame_timeout;
    tracing::debug!(connection = context.id, peer = %context.peer, "connection opened");
    loop {
        // Every await is raced against shutdown, so a slow client, a long
        // awaitable hello or a handler never holds the server open.
        let step = async {
            let Some((header, bytes)) = read_frame(&mut stream, frame_timeout).await? else {
                return Ok(false);
            };
            match respond(&shared, &context, &header, &bytes).await {
                Outcome::Reply(reply) => stream
                    .write_all(&reply)
                    .await
                    .map(|()| true)
                    .map_err(WireError::from),
                Outcome::NoReply => Ok(true),
                Outcome::Close => Ok(false),
            }
        };
        let keep_going = tokio::select! {
            result = step => result,
            () = crate::state::shutdown_signalled(&mut shutdown) => Ok(false),
        };
        match keep_going {
            Ok(true) => continue,
            Ok(false) => break,
            Err(error) => {
                tracing::debug!(connection = context.id, %error, "closing connection");
                break;
            }
        }
    }
    tracing::debug!(connection = context.id, "connection closed");
}

/// Reads one message. `Ok(None)` is a clean end of stream between messages.
/// Once a message has started, the rest must arrive within `frame_timeout`.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    frame_timeout: Duration,
) -> Result<Option<(MsgHeader, Vec<u8>)>, WireError> {
    let mut raw_header = [0u8; HEADER_LEN];
    // An idle connection may wait for its next message as long as it likes.
    let first = stream.read(&mut raw_header).await?;
    if first == 0 {
        return Ok(None);
    }
    let rest = async {
        stream.read_exact(&mut raw_header[first..]).await?;
        let header = MsgHeader::parse(&raw_header)?;
        let body_len = header.body_len()?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + body_len.min(INITIAL_BODY_CAPACITY));
        bytes.extend_from_slice(&raw_header);
        let wanted = u64::try_from(body_len).unwrap_or(u64::MAX);
        let got = (&mut *stream).take(wanted).read_to_end(&mut bytes).await?;
        if got != body_len {
            return Err(WireError::Truncated("message body"));
        }
        Ok((header, bytes))
    };
    match tokio::time::timeout(frame_timeout, rest).await {
        Ok(frame) => frame.map(Some),
        Err(_) => Err(WireError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "message not completed in time",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op_msg::OpMsg;
    use bson::doc;

    #[tokio::test]
    async fn frames_split_and_truncated_messages() {
        let message = OpMsg::new(doc! { "ping": 1 }).encode(1, 0).unwrap();
        let (mut client, mut server) = tokio::io::duplex(8);
        let sent = message.clone();
        let writer = tokio::spawn(async move {
            for chunk in sent.chunks(3) {
                client.write_all(chunk).await.unwrap();
            }
            client.write_all(&sent[..20]).await.unwrap();
        });
        let (header, bytes) = read_frame(&mut server, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes, message);
        assert_eq!(header.request_id, 1);
        assert!(matches!(
            read_frame(&mut server, Duration::from_secs(5)).await,
            Err(WireError::Truncated(_))
        ));
        writer.await.unwrap();
        assert!(
            read_frame(&mut server, Duration::from_secs(5))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn stalled_message_times_out_and_huge_claim_allocates_little() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let mut header = Vec::new();
        MsgHeader {
            message_length: 48_000_000,
            request_id: 1,
            response_to: 0,
            op_code: 2013,
        }
        .write_to(&mut header);
        client.write_all(&header).await.unwrap();
        let result = read_frame(&mut server, Duration::from_millis(50)).await;
        assert!(matches!(result, Err(WireError::Io(e)) if e.kind() == io::ErrorKind::TimedOut));
        drop(client);
    }
}
