//! Whole messages: the parser's entry point and encoding.

use crate::error::WireError;
use crate::header::{MsgHeader, OP_COMPRESSED, OP_MSG, OP_QUERY, OP_REPLY};
use crate::limits::HEADER_LEN;
use crate::op_msg::OpMsg;
use crate::op_query::{OpQuery, OpReply};

/// The body of a parsed message, by opCode.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `OP_MSG`.
    Msg(OpMsg),
    /// Legacy `OP_QUERY`.
    Query(OpQuery),
    /// Legacy `OP_REPLY` (parsed so that clients and tests can read replies).
    Reply(OpReply),
}

impl Message {
    /// Encodes the message with the given header ids.
    pub fn encode(&self, request_id: i32, response_to: i32) -> Result<Vec<u8>, WireError> {
        match self {
            Message::Msg(msg) => msg.encode(request_id, response_to),
            Message::Query(query) => query.encode(request_id),
            Message::Reply(reply) => reply.encode(request_id, response_to),
        }
    }
}

/// Parses one complete message, header included. The header's length must
/// equal `bytes.len()`. Never panics and never allocates more than a small
/// multiple of the input, whatever the input: this is the fuzz entry point.
pub fn parse_message(bytes: &[u8]) -> Result<(MsgHeader, Message), WireError> {
    let raw_header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(WireError::Truncated("header"))?;
    let header = MsgHeader::parse(raw_header)?;
    if usize::try_from(header.message_length) != Ok(bytes.len()) {
        return Err(WireError::InvalidMessage(format!(
            "header says {} bytes but the message has {}",
            header.message_length,
            bytes.len()
        )));
    }
    let message = match header.op_code {
        OP_MSG => Message::Msg(OpMsg::parse(bytes)?),
        OP_QUERY => Message::Query(OpQuery::parse(bytes)?),
        OP_REPLY => Message::Reply(OpReply::parse(bytes)?),
        OP_COMPRESSED => return Err(WireError::CompressionUnsupported),
        other => return Err(WireError::UnsupportedOpCode(other)),
    };
    Ok((header, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op_msg::{CHECKSUM_PRESENT, DocumentSequence, MORE_TO_COME};
    use bson::{Document, doc};
    use proptest::prelude::*;

    #[test]
    fn every_kind_round_trips() {
        let messages = [
            Message::Msg(OpMsg {
                flags: MORE_TO_COME | CHECKSUM_PRESENT,
                ..OpMsg::new(doc! { "ping": 1, "$db": "admin" })
            }),
            Message::Query(OpQuery {
                flags: 0,
                full_collection_name: "admin.$cmd".into(),
                number_to_skip: 0,
                number_to_return: -1,
                query: doc! { "hello": 1 },
                return_fields_selector: None,
            }),
            Message::Reply(OpReply::command_reply(doc! { "ok": 1.0 })),
        ];
        for message in messages {
            let bytes = message.encode(11, 10).unwrap();
            let (header, parsed) = parse_message(&bytes).unwrap();
            assert_eq!(parsed, message);
            assert_eq!(header.request_id, 11);
            assert_eq!(usize::try_from(header.message_length).unwrap(), bytes.len());
        }
    }

    #[test]
    fn length_mismatch_compressed_and_unknown_opcodes_are_refused() {
        let mut bytes = Message::Msg(OpMsg::new(doc! { "ping": 1 }))
            .encode(1, 0)
            .unwrap();
        assert!(parse_message(&bytes[..bytes.len() - 1]).is_err());
        bytes[12..16].copy_from_slice(&OP_COMPRESSED.to_le_bytes());
        assert!(matches!(
            parse_message(&bytes),
            Err(WireError::CompressionUnsupported)
        ));
        bytes[12..16].copy_from_slice(&2002i32.to_le_bytes());
        assert!(matches!(
            parse_message(&bytes),
            Err(WireError::UnsupportedOpCode(2002))
        ));
        assert!(parse_message(&[]).is_err());
    }

    fn small_doc() -> impl Strategy<Value = Document> {
        prop::collection::vec(("[a-z]{1,6}", any::<i64>()), 0..4).prop_map(|fields| {
            fields
                .into_iter()
                .map(|(k, v)| (k, bson::Bson::Int64(v)))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_message(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_a_valid_header_never_panic(
            op in prop::sample::select(vec![OP_MSG, OP_QUERY, OP_REPLY, OP_COMPRESSED, 0]),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = Vec::new();
            let len = i32::try_from(HEADER_LEN + body.len()).unwrap();
            MsgHeader { message_length: len, request_id: 1, response_to: 0, op_code: op }.write_to(&mut bytes);
            bytes.extend_from_slice(&body);
            let _ = parse_message(&bytes);
        }

        #[test]
        fn mutated_valid_messages_never_panic(
            body in small_doc(),
            docs in prop::collection::vec(small_doc(), 0..4),
            flags in prop::sample::select(vec![0u32, CHECKSUM_PRESENT, MORE_TO_COME]),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let msg = OpMsg { flags, body, sequences: vec![DocumentSequence::from_documents("documents", &docs).unwrap()] };
            let mut bytes = msg.encode(1, 0).unwrap();
            prop_assert_eq!(parse_message(&bytes).unwrap().1, Message::Msg(msg));
            for (index, value) in flips {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
            let _ = parse_message(&bytes);
        }

        #[test]
        fn op_msg_round_trips(body in small_doc(), docs in prop::collection::vec(small_doc(), 0..5), checksum in any::<bool>()) {
            let msg = OpMsg {
                flags: if checksum { CHECKSUM_PRESENT } else { 0 },
                body,
                sequences: vec![DocumentSequence::from_documents("updates", &docs).unwrap()],
            };
            let bytes = msg.encode(3, 0).unwrap();
            prop_assert_eq!(parse_message(&bytes).unwrap().1, Message::Msg(msg));
        }
    }
}
