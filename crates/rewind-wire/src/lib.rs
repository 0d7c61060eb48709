//! The MongoDB wire protocol for rewind clusters.
//!
//! * [`message`], [`op_msg`], [`op_query`], [`header`]: framing and parsing
//!   of `OP_MSG`, legacy `OP_QUERY`/`OP_REPLY`; [`parse_message`] never
//!   panics on any input.
//! * [`server`]: the per-cluster TCP server (connection limit, graceful
//!   shutdown, an *unavailable* switch for restores).
//! * [`command`]: the parsed [`CommandRequest`], the [`CommandHandler`] trait
//!   through which data commands are plugged in, and [`error_reply`].
//! * The handshake and admin commands (`hello`, `buildInfo`, `serverStatus`,
//!   ...) are answered here, as a MongoDB 8.0 replica-set primary would.

mod admin;
pub mod command;
mod connection;
mod dispatch;
pub mod error;
mod handshake;
pub mod header;
pub mod limits;
pub mod message;
pub mod op_msg;
pub mod op_query;
mod reader;
pub mod server;
mod state;

pub use command::{
    CommandHandler, CommandRequest, ConnectionContext, Reply, command_not_found, error_reply,
};
pub use error::WireError;
pub use message::{Message, parse_message};
pub use reader::decode_document;
pub use server::{ServerConfig, ServerHandle, start};
pub use state::LastWrite;
