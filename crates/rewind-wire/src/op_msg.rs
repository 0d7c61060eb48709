//! `OP_MSG` (opCode 2013): flag bits, body and document-sequence sections,
//! optional CRC-32C checksum.

use bson::{Bson, Document, RawDocumentBuf};

use crate::error::WireError;
use crate::header::{OP_MSG, frame};
use crate::limits::{HEADER_LEN, MAX_COMMAND_DOCUMENT_SIZE, MAX_WRITE_BATCH_SIZE};
use crate::reader::Reader;

/// Flag bit 0: the message ends with a CRC-32C checksum.
pub const CHECKSUM_PRESENT: u32 = 1;
/// Flag bit 1: the sender will not wait for (requests) or will send more
/// (replies) messages; a request carrying it gets no reply.
pub const MORE_TO_COME: u32 = 1 << 1;
/// Flag bit 16: the client accepts exhaust replies (never used by this server).
pub const EXHAUST_ALLOWED: u32 = 1 << 16;

/// Bits 0-15 must be understood by the receiver; these are the ones we know.
const KNOWN_REQUIRED_FLAGS: u32 = CHECKSUM_PRESENT | MORE_TO_COME;
const REQUIRED_FLAGS_MASK: u32 = 0xffff;
const CHECKSUM_LEN: usize = 4;
const KIND_BODY: u8 = 0;
const KIND_SEQUENCE: u8 = 1;

/// A kind-1 section: a named sequence of documents (e.g. `documents` of an insert).
///
/// The documents stay raw BSON, so a handler can store them without a decode and re-encode
/// per document. Parsed ones are validated and canonical: byte for byte what decoding them
/// into a [`Document`] and encoding that would give.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSequence {
    /// The field name the sequence stands for in the command body.
    pub identifier: String,
    /// The documents, in order.
    pub documents: Vec<RawDocumentBuf>,
}

impl DocumentSequence {
    /// A sequence of documents encoded from `documents`.
    pub fn from_documents(
        identifier: impl Into<String>,
        documents: &[Document],
    ) -> Result<Self, WireError> {
        let documents = documents
            .iter()
            .map(|d| RawDocumentBuf::try_from(d).map_err(|e| WireError::Encode(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(DocumentSequence {
            identifier: identifier.into(),
            documents,
        })
    }
}

/// A parsed `OP_MSG`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMsg {
    /// Raw flag bits; [`CHECKSUM_PRESENT`] also decides whether
    /// [`OpMsg::encode`] appends a checksum.
    pub flags: u32,
    /// The kind-0 section.
    pub body: Document,
    /// The kind-1 sections, in message order.
    pub sequences: Vec<DocumentSequence>,
}

impl OpMsg {
    /// A message with only a body and no flags.
    pub fn new(body: Document) -> Self {
        OpMsg {
            flags: 0,
            body,
            sequences: Vec::new(),
        }
    }

    /// Whether the sender expects no reply (requests) or more replies follow.
    pub fn more_to_come(&self) -> bool {
        self.flags & MORE_TO_COME != 0
    }

    /// Whether a checksum is (to be) present.
    pub fn checksum_present(&self) -> bool {
        self.flags & CHECKSUM_PRESENT != 0
    }

    /// Parses a whole message (header included, as the checksum covers it)
    /// whose header says `OP_MSG`.
    pub(crate) fn parse(message: &[u8]) -> Result<Self, WireError> {
        let mut reader = Reader::new(
            message
                .get(HEADER_LEN..)
                .ok_or(WireError::Truncated("header"))?,
        );
        let flags = reader.u32("flagBits")?;
        let unknown = flags & REQUIRED_FLAGS_MASK & !KNOWN_REQUIRED_FLAGS;
        if unknown != 0 {
            return Err(WireError::UnknownRequiredFlags(unknown));
        }
        let sections = if flags & CHECKSUM_PRESENT != 0 {
            let split = message
                .len()
                .checked_sub(CHECKSUM_LEN)
                .filter(|&s| s >= HEADER_LEN + 4);
            let split = split.ok_or(WireError::Truncated("checksum"))?;
            let (covered, tail) = message.split_at(split);
            let expected = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
            let actual = crc32c::crc32c(covered);
            if expected != actual {
                return Err(WireError::ChecksumMismatch { expected, actual });
            }
            Reader::new(&covered[HEADER_LEN + 4..])
        } else {
            reader
        };
        let (body, sequences) = parse_sections(sections)?;
        Ok(OpMsg {
            flags,
            body,
            sequences,
        })
    }

    /// Encodes the message with the given header ids, appending a CRC-32C
    /// checksum when [`CHECKSUM_PRESENT`] is set.
    pub fn encode(&self, request_id: i32, response_to: i32) -> Result<Vec<u8>, WireError> {
        let body = self
            .body
            .to_vec()
            .map_err(|e| WireError::Encode(e.to_string()))?;
        encode_sections(self.flags, &body, &self.sequences, request_id, response_to)
    }

    /// The command document: the body with every document sequence merged
    /// in as an array field named after its identifier.
    pub fn into_command_body(self) -> Result<Document, WireError> {
        check_sequence_names(&self.body, &self.sequences)?;
        merge_sequences(self.body, &self.sequences)
    }
}

/// Refuses a document sequence whose identifier is also a body field or another
/// sequence's identifier: merged, one would silently replace the other.
pub fn check_sequence_names(
    body: &Document,
    sequences: &[DocumentSequence],
) -> Result<(), WireError> {
    for (i, sequence) in sequences.iter().enumerate() {
        let earlier = sequences[..i]
            .iter()
            .any(|s| s.identifier == sequence.identifier);
        if earlier || body.contains_key(&sequence.identifier) {
            return Err(WireError::InvalidMessage(format!(
                "duplicate field '{}' in body and document sequence",
                sequence.identifier
            )));
        }
    }
    Ok(())
}

/// `body` with every sequence appended as an array field named by its identifier (the
/// names must have passed [`check_sequence_names`]).
pub fn merge_sequences(
    mut body: Document,
    sequences: &[DocumentSequence],
) -> Result<Document, WireError> {
    for sequence in sequences {
        let documents = sequence
            .documents
            .iter()
            .map(|raw| {
                Document::try_from(raw.as_ref())
                    .map(Bson::Document)
                    .map_err(|e| WireError::InvalidBson(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        body.insert(sequence.identifier.clone(), Bson::Array(documents));
    }
    Ok(body)
}

/// Encodes an `OP_MSG` from an already encoded body section and the document sequences,
/// appending a CRC-32C checksum when `flags` has [`CHECKSUM_PRESENT`].
pub fn encode_sections(
    flags: u32,
    body_section: &[u8],
    sequences: &[DocumentSequence],
    request_id: i32,
    response_to: i32,
) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::with_capacity(body_section.len() + 8);
    body.extend_from_slice(&flags.to_le_bytes());
    body.push(KIND_BODY);
    body.extend_from_slice(body_section);
    for sequence in sequences {
        body.push(KIND_SEQUENCE);
        let start = body.len();
        body.extend_from_slice(&[0; 4]);
        body.extend_from_slice(sequence.identifier.as_bytes());
        body.push(0);
        for document in &sequence.documents {
            body.extend_from_slice(document.as_bytes());
        }
        let size = i32::try_from(body.len() - start)
            .map_err(|_| WireError::Encode("document sequence too large".into()))?;
        body[start..start + 4].copy_from_slice(&size.to_le_bytes());
    }
    if flags & CHECKSUM_PRESENT != 0 {
        // The checksum covers the header too, so frame first with room for it.
        body.extend_from_slice(&[0; CHECKSUM_LEN]);
        let mut message = frame(request_id, response_to, OP_MSG, &body)?;
        let split = message.len() - CHECKSUM_LEN;
        let crc = crc32c::crc32c(&message[..split]);
        message[split..].copy_from_slice(&crc.to_le_bytes());
        Ok(message)
    } else {
        frame(request_id, response_to, OP_MSG, &body)
    }
}

fn parse_sections(mut reader: Reader<'_>) -> Result<(Document, Vec<DocumentSequence>), WireError> {
    let mut body = None;
    let mut sequences = Vec::new();
    // Each sequence document is at least 5 bytes, so without a cap a 48 MB
    // message could expand into millions of `Document`s; drivers never send
    // more than maxWriteBatchSize documents in one message.
    let mut sequence_documents = 0usize;
    let max_documents = usize::try_from(MAX_WRITE_BATCH_SIZE).unwrap_or(usize::MAX);
    while reader.remaining() > 0 {
        match reader.u8("section kind")? {
            KIND_BODY => {
                if body.is_some() {
                    return Err(WireError::InvalidMessage(
                        "OP_MSG has more than one body section".into(),
                    ));
                }
                body = Some(reader.document(MAX_COMMAND_DOCUMENT_SIZE)?);
            }
            KIND_SEQUENCE => {
                let declared = reader.i32("document sequence size")?;
                let size = usize::try_from(declared)
                    .ok()
                    .and_then(|s| s.checked_sub(4))
                    .ok_or_else(|| {
                        WireError::InvalidMessage(format!(
                            "document sequence size {declared} is invalid"
                        ))
                    })?;
                let mut section = Reader::new(reader.take(size, "document sequence")?);
                let identifier = section.cstring("document sequence identifier")?.to_owned();
                let mut documents = Vec::new();
                while section.remaining() > 0 {
                    sequence_documents += 1;
                    if sequence_documents > max_documents {
                        return Err(WireError::InvalidMessage(format!(
                            "more than {max_documents} documents in document sequences"
                        )));
                    }
                    documents.push(section.raw_document(MAX_COMMAND_DOCUMENT_SIZE)?);
                }
                sequences.push(DocumentSequence {
                    identifier,
                    documents,
                });
            }
            kind => {
                return Err(WireError::InvalidMessage(format!(
                    "unknown OP_MSG section kind {kind}"
                )));
            }
        }
    }
    let body =
        body.ok_or_else(|| WireError::InvalidMessage("OP_MSG has no body section".into()))?;
    Ok((body, sequences))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn insert() -> OpMsg {
        OpMsg {
            flags: 0,
            body: doc! { "insert": "c", "$db": "test" },
            sequences: vec![
                DocumentSequence::from_documents(
                    "documents",
                    &[doc! { "_id": 1 }, doc! { "_id": 2, "x": "y" }],
                )
                .unwrap(),
            ],
        }
    }

    #[test]
    fn round_trip_with_sequences() {
        let msg = insert();
        let bytes = msg.encode(5, 0).unwrap();
        assert_eq!(OpMsg::parse(&bytes).unwrap(), msg);
    }

    #[test]
    fn sequences_merge_into_body() {
        let body = insert().into_command_body().unwrap();
        assert_eq!(
            body,
            doc! { "insert": "c", "$db": "test", "documents": [{ "_id": 1 }, { "_id": 2, "x": "y" }] }
        );
        let mut dup = insert();
        dup.body.insert("documents", 1);
        assert!(dup.into_command_body().is_err());
    }

    #[test]
    fn sequence_documents_come_out_canonical() {
        let canonical = bson::rawdoc! { "_id": 1, "a": [1, { "b": [2] }], "c": { "d": 1 } };
        // {_id: 1, a: 1, a: 2}: a repeated key, kept once (the last value) by a decode.
        let mut repeated = RawDocumentBuf::new();
        repeated.append(bson::raw::cstr!("_id"), 1);
        repeated.append(bson::raw::cstr!("a"), 1);
        repeated.append(bson::raw::cstr!("a"), 2);
        // {_id: 1, a: [7]} with the element keyed "5": re-keyed "0" by an encode.
        let mut odd = bson::rawdoc! { "_id": 1, "a": [7] }.into_bytes();
        let at = odd.len() - 8;
        odd[at] = b'5';
        let odd = RawDocumentBuf::from_bytes(odd).unwrap();
        // A wide level (past the linear check) with a repeat at its end.
        let mut wide = RawDocumentBuf::new();
        for i in 0..40 {
            let key = format!("k{i}");
            wide.append(<&bson::raw::CStr>::try_from(key.as_str()).unwrap(), i);
        }
        wide.append(bson::raw::cstr!("k3"), 0);
        let documents = vec![
            canonical.clone(),
            repeated.clone(),
            odd.clone(),
            wide.clone(),
        ];
        let msg = OpMsg {
            flags: 0,
            body: doc! { "insert": "c", "$db": "test" },
            sequences: vec![DocumentSequence {
                identifier: "documents".into(),
                documents,
            }],
        };
        let parsed = OpMsg::parse(&msg.encode(1, 0).unwrap()).unwrap();
        let got = &parsed.sequences[0].documents;
        assert_eq!(got[0], canonical, "canonical documents pass byte for byte");
        for (raw, normalized) in [&repeated, &odd, &wide].into_iter().zip(&got[1..]) {
            let decoded = Document::try_from(raw.as_ref()).unwrap();
            assert_eq!(normalized, &RawDocumentBuf::try_from(&decoded).unwrap());
            assert_ne!(normalized, raw);
        }
    }

    #[test]
    fn checksum_is_written_and_verified() {
        let mut msg = insert();
        msg.flags |= CHECKSUM_PRESENT;
        let mut bytes = msg.encode(1, 0).unwrap();
        assert_eq!(OpMsg::parse(&bytes).unwrap(), msg);
        let crc_at = bytes.len() - 4;
        assert_eq!(
            u32::from_le_bytes(bytes[crc_at..].try_into().unwrap()),
            crc32c::crc32c(&bytes[..crc_at])
        );
        // Any flipped bit in the covered bytes, header included, is caught.
        bytes[8] ^= 1;
        assert!(matches!(
            OpMsg::parse(&bytes),
            Err(WireError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn unknown_required_flags_are_refused_and_optional_ignored() {
        let mut msg = OpMsg::new(doc! { "ping": 1 });
        msg.flags = 1 << 5;
        assert!(matches!(
            OpMsg::parse(&msg.encode(1, 0).unwrap()),
            Err(WireError::UnknownRequiredFlags(0x20))
        ));
        msg.flags = EXHAUST_ALLOWED | (1 << 20);
        assert_eq!(OpMsg::parse(&msg.encode(1, 0).unwrap()).unwrap(), msg);
    }

    #[test]
    fn structural_errors() {
        let good = OpMsg::new(doc! { "ping": 1 }).encode(1, 0).unwrap();
        // No body section at all.
        let mut no_body = good[..20].to_vec();
        no_body[0] = 20;
        assert!(OpMsg::parse(&no_body).is_err());
        // Two body sections.
        let mut twice = good.clone();
        twice.extend_from_slice(&good[20..]);
        assert!(OpMsg::parse(&twice).is_err());
        // Unknown section kind.
        let mut kind = good.clone();
        kind[20] = 7;
        assert!(OpMsg::parse(&kind).is_err());
        // Sequence whose size runs past the end.
        let mut seq = good.clone();
        seq.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0x7f, b'a', 0]);
        assert!(matches!(OpMsg::parse(&seq), Err(WireError::Truncated(_))));
        // Sequence whose size is too small to hold itself.
        let mut small = good;
        small.extend_from_slice(&[1, 2, 0, 0, 0]);
        assert!(OpMsg::parse(&small).is_err());
    }
}
