//! The crate's single error type.

use crate::limits::{HEADER_LEN, MAX_MESSAGE_SIZE};

/// Everything that can go wrong while framing, parsing or encoding a message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The header's `messageLength` is below the header size or above the
    /// message size limit; the stream cannot be framed.
    #[error("message length {0} is outside [{HEADER_LEN}, {MAX_MESSAGE_SIZE}]")]
    MessageLength(i64),
    /// The message ended before a field it announced.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// The opCode is not one this server understands.
    #[error("unsupported opCode {0}")]
    UnsupportedOpCode(i32),
    /// An OP_COMPRESSED message arrived although no compressor was negotiated.
    #[error("OP_COMPRESSED is not supported: no compressor was negotiated")]
    CompressionUnsupported,
    /// OP_MSG flag bits 0-15 are required to be understood; some were not.
    #[error("OP_MSG contains unknown required flag bits {0:#06x}")]
    UnknownRequiredFlags(u32),
    /// The CRC-32C checksum at the end of an OP_MSG does not match its content.
    #[error(
        "OP_MSG checksum mismatch: message says {expected:#010x}, content gives {actual:#010x}"
    )]
    ChecksumMismatch {
        /// Checksum carried by the message.
        expected: u32,
        /// Checksum computed over the message.
        actual: u32,
    },
    /// The message is structurally invalid (sections, names, trailing bytes...).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A document is not valid BSON.
    #[error("invalid BSON: {0}")]
    InvalidBson(String),
    /// A document's declared size exceeds the limit.
    #[error("BSON document of {size} bytes exceeds the limit of {max} bytes")]
    DocumentTooLarge {
        /// Declared size.
        size: i64,
        /// Limit in force.
        max: usize,
    },
    /// A document nests deeper than [`rewind_bson::MAX_DEPTH`].
    #[error("BSON document nests deeper than {0} levels")]
    DocumentTooDeep(usize),
    /// A reply could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl WireError {
    /// The `mongod` error code and code name that best describe this error
    /// in an error reply.
    pub fn code(&self) -> (i32, &'static str) {
        match self {
            WireError::InvalidBson(_) => (22, "InvalidBSON"),
            WireError::DocumentTooLarge { .. } => (10334, "BSONObjectTooLarge"),
            WireError::DocumentTooDeep(_) => (15, "Overflow"),
            WireError::UnknownRequiredFlags(_) => (223, "IllegalOpMsgFlag"),
            _ => (17, "ProtocolError"),
        }
    }
}

impl From<rewind_bson::BsonError> for WireError {
    fn from(error: rewind_bson::BsonError) -> Self {
        match error {
            rewind_bson::BsonError::Malformed(what) => WireError::InvalidBson(what),
            rewind_bson::BsonError::TooDeep => WireError::DocumentTooDeep(rewind_bson::MAX_DEPTH),
        }
    }
}
