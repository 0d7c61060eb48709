//! Legacy `OP_QUERY` (2004), still sent by drivers for the first handshake,
//! and its answer `OP_REPLY` (1).

use bson::Document;

use crate::error::WireError;
use crate::header::{OP_QUERY, OP_REPLY, frame};
use crate::limits::{HEADER_LEN, MAX_COMMAND_DOCUMENT_SIZE, MAX_WRITE_BATCH_SIZE};
use crate::reader::Reader;

/// `OP_REPLY` response flag set by `mongod` on every reply (bit 3).
pub const AWAIT_CAPABLE: i32 = 1 << 3;

/// A parsed `OP_QUERY`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpQuery {
    /// Raw query flags (tailable, slaveOk, ...).
    pub flags: i32,
    /// `"<db>.<collection>"`; commands use collection `$cmd`.
    pub full_collection_name: String,
    /// Documents to skip.
    pub number_to_skip: i32,
    /// Batch size requested (-1 for commands).
    pub number_to_return: i32,
    /// The query, or the command document for `$cmd`.
    pub query: Document,
    /// Optional projection.
    pub return_fields_selector: Option<Document>,
}

impl OpQuery {
    pub(crate) fn parse(message: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(
            message
                .get(HEADER_LEN..)
                .ok_or(WireError::Truncated("header"))?,
        );
        let flags = r.i32("flags")?;
        let full_collection_name = r.cstring("fullCollectionName")?.to_owned();
        let number_to_skip = r.i32("numberToSkip")?;
        let number_to_return = r.i32("numberToReturn")?;
        let query = r.document(MAX_COMMAND_DOCUMENT_SIZE)?;
        let return_fields_selector = if r.remaining() > 0 {
            Some(r.document(MAX_COMMAND_DOCUMENT_SIZE)?)
        } else {
            None
        };
        if r.remaining() > 0 {
            return Err(WireError::InvalidMessage(
                "trailing bytes after OP_QUERY".into(),
            ));
        }
        Ok(OpQuery {
            flags,
            full_collection_name,
            number_to_skip,
            number_to_return,
            query,
            return_fields_selector,
        })
    }

    /// Encodes the query (a driver's legacy handshake, in tests).
    pub fn encode(&self, request_id: i32) -> Result<Vec<u8>, WireError> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.flags.to_le_bytes());
        body.extend_from_slice(self.full_collection_name.as_bytes());
        body.push(0);
        body.extend_from_slice(&self.number_to_skip.to_le_bytes());
        body.extend_from_slice(&self.number_to_return.to_le_bytes());
        for doc in std::iter::once(&self.query).chain(&self.return_fields_selector) {
            body.extend_from_slice(&doc.to_vec().map_err(|e| WireError::Encode(e.to_string()))?);
        }
        frame(request_id, 0, OP_QUERY, &body)
    }
}

/// An `OP_REPLY`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpReply {
    /// Response flags; [`AWAIT_CAPABLE`] on every reply of this server.
    pub response_flags: i32,
    /// Cursor id (always 0 for command replies).
    pub cursor_id: i64,
    /// Position of the first document in the cursor.
    pub starting_from: i32,
    /// The returned documents.
    pub documents: Vec<Document>,
}

impl OpReply {
    /// A command reply: one document, no cursor.
    pub fn command_reply(document: Document) -> Self {
        OpReply {
            response_flags: AWAIT_CAPABLE,
            cursor_id: 0,
            starting_from: 0,
            documents: vec![document],
        }
    }

    pub(crate) fn parse(message: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(
            message
                .get(HEADER_LEN..)
                .ok_or(WireError::Truncated("header"))?,
        );
        let response_flags = r.i32("responseFlags")?;
        let cursor_id = r.i64("cursorID")?;
        let starting_from = r.i32("startingFrom")?;
        let number_returned = r.i32("numberReturned")?;
        let count = usize::try_from(number_returned)
            .ok()
            .filter(|&n| n <= usize::try_from(MAX_WRITE_BATCH_SIZE).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                WireError::InvalidMessage(format!("numberReturned {number_returned} is invalid"))
            })?;
        let mut documents = Vec::new();
        while r.remaining() > 0 && documents.len() < count {
            documents.push(r.document(MAX_COMMAND_DOCUMENT_SIZE)?);
        }
        if documents.len() != count || r.remaining() > 0 {
            return Err(WireError::InvalidMessage(
                "OP_REPLY numberReturned disagrees with its documents".into(),
            ));
        }
        Ok(OpReply {
            response_flags,
            cursor_id,
            starting_from,
            documents,
        })
    }

    /// Encodes the reply answering request `response_to`.
    pub fn encode(&self, request_id: i32, response_to: i32) -> Result<Vec<u8>, WireError> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.response_flags.to_le_bytes());
        body.extend_from_slice(&self.cursor_id.to_le_bytes());
        body.extend_from_slice(&self.starting_from.to_le_bytes());
        let count = i32::try_from(self.documents.len())
            .map_err(|_| WireError::Encode("too many documents".into()))?;
        body.extend_from_slice(&count.to_le_bytes());
        for doc in &self.documents {
            body.extend_from_slice(&doc.to_vec().map_err(|e| WireError::Encode(e.to_string()))?);
        }
        frame(request_id, response_to, OP_REPLY, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn query_round_trip() {
        let q = OpQuery {
            flags: 4,
            full_collection_name: "admin.$cmd".into(),
            number_to_skip: 0,
            number_to_return: -1,
            query: doc! { "isMaster": 1, "helloOk": true },
            return_fields_selector: Some(doc! { "x": 1 }),
        };
        assert_eq!(OpQuery::parse(&q.encode(3).unwrap()).unwrap(), q);
        let without = OpQuery {
            return_fields_selector: None,
            ..q
        };
        assert_eq!(
            OpQuery::parse(&without.encode(3).unwrap()).unwrap(),
            without
        );
    }

    #[test]
    fn reply_round_trip_and_count_check() {
        let reply = OpReply::command_reply(doc! { "ok": 1.0 });
        let mut bytes = reply.encode(9, 3).unwrap();
        assert_eq!(OpReply::parse(&bytes).unwrap(), reply);
        bytes[16 + 16] = 2; // numberReturned = 2 with one document
        assert!(OpReply::parse(&bytes).is_err());
    }
}
