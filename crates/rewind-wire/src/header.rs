//! The standard message header shared by every opCode.

use crate::error::WireError;
use crate::limits::{HEADER_LEN, MAX_MESSAGE_SIZE};

/// `OP_REPLY`: legacy reply, sent only in answer to an `OP_QUERY`.
pub const OP_REPLY: i32 = 1;
/// `OP_QUERY`: legacy query, still used by drivers for the first handshake.
pub const OP_QUERY: i32 = 2004;
/// `OP_COMPRESSED`: a compressed message (refused: no compressor is offered).
pub const OP_COMPRESSED: i32 = 2012;
/// `OP_MSG`: the extensible message format of all modern commands.
pub const OP_MSG: i32 = 2013;

/// The 16-byte header in front of every message (all fields little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgHeader {
    /// Total message size, header included.
    pub message_length: i32,
    /// Identifier chosen by the sender.
    pub request_id: i32,
    /// `request_id` of the message this one answers (0 in requests).
    pub response_to: i32,
    /// Kind of message that follows the header.
    pub op_code: i32,
}

impl MsgHeader {
    /// Decodes a header and checks that its length can be framed: at least
    /// the header itself and at most [`MAX_MESSAGE_SIZE`]. A failure here
    /// means the stream is out of sync and must be closed.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, WireError> {
        let field =
            |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let header = MsgHeader {
            message_length: field(0),
            request_id: field(4),
            response_to: field(8),
            op_code: field(12),
        };
        header.body_len()?;
        Ok(header)
    }

    /// Length of what follows the header, once the declared length is checked.
    pub fn body_len(&self) -> Result<usize, WireError> {
        match usize::try_from(self.message_length) {
            Ok(len) if (HEADER_LEN..=MAX_MESSAGE_SIZE).contains(&len) => Ok(len - HEADER_LEN),
            _ => Err(WireError::MessageLength(i64::from(self.message_length))),
        }
    }

    /// Appends the encoded header to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for field in [
            self.message_length,
            self.request_id,
            self.response_to,
            self.op_code,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
    }
}

/// Wraps an encoded message body in a header, refusing messages larger than
/// [`MAX_MESSAGE_SIZE`].
pub(crate) fn frame(
    request_id: i32,
    response_to: i32,
    op_code: i32,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    let total = HEADER_LEN + body.len();
    if total > MAX_MESSAGE_SIZE {
        return Err(WireError::Encode(format!(
            "message of {total} bytes exceeds maxMessageSizeBytes {MAX_MESSAGE_SIZE}"
        )));
    }
    let header = MsgHeader {
        // Bounded by MAX_MESSAGE_SIZE just above, so it fits an i32.
        message_length: i32::try_from(total).unwrap_or(i32::MAX),
        request_id,
        response_to,
        op_code,
    };
    let mut out = Vec::with_capacity(total);
    header.write_to(&mut out);
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(len: i32) -> [u8; HEADER_LEN] {
        let mut out = Vec::new();
        MsgHeader {
            message_length: len,
            request_id: 7,
            response_to: 0,
            op_code: OP_MSG,
        }
        .write_to(&mut out);
        out.try_into().expect("16 bytes")
    }

    #[test]
    fn header_round_trips() {
        let header = MsgHeader::parse(&raw(100)).expect("valid");
        assert_eq!(header.message_length, 100);
        assert_eq!(header.request_id, 7);
        assert_eq!(header.op_code, OP_MSG);
        assert_eq!(header.body_len().expect("valid"), 84);
    }

    #[test]
    fn lengths_out_of_range_are_refused() {
        for len in [-1, 0, 15, 48_000_001, i32::MAX] {
            assert!(
                matches!(
                    MsgHeader::parse(&raw(len)),
                    Err(WireError::MessageLength(_))
                ),
                "{len}"
            );
        }
        assert!(MsgHeader::parse(&raw(16)).is_ok());
        assert!(MsgHeader::parse(&raw(48_000_000)).is_ok());
    }
}
