//! A command's `hint`: parsed with the command, checked against the collection's indexes
//! when the command reads it.

use bson::{Bson, Document};
use rewind_engine::CollectionInfo;
use rewind_query::compare::compare_documents;

use crate::error::{CommandError, Result};

/// The index a command's `hint` names.
#[derive(Debug, Clone)]
pub enum Hint {
    /// By name (`"a_1"`).
    Name(String),
    /// By key pattern (`{a: 1}`).
    Key(Document),
}

impl Hint {
    /// Parses `hint` of `body`: `None` when absent, `{}`, or `{$natural: ±1}` (a collection
    /// scan, which any query may take).
    pub fn parse(body: &Document) -> Result<Option<Hint>> {
        match body.get("hint") {
            None => Ok(None),
            Some(Bson::String(name)) => Ok(Some(Hint::Name(name.clone()))),
            Some(Bson::Document(key)) if key.is_empty() || key.contains_key("$natural") => Ok(None),
            Some(Bson::Document(key)) => Ok(Some(Hint::Key(key.clone()))),
            Some(_) => Err(CommandError::bad_value(
                "hint must be either a string or nested object",
            )),
        }
    }

    /// Refuses a hint that names no index of the collection, as mongod does; a missing
    /// collection has nothing to refuse. An index that exists changes no result here, as
    /// every access path finds the same documents (mongod's can differ for a sparse index,
    /// whose scan leaves out documents without its fields).
    pub fn check(&self, info: Option<&CollectionInfo>) -> Result<()> {
        let Some(info) = info else {
            return Ok(());
        };
        let found = info.indexes.iter().any(|index| match self {
            Hint::Name(name) => index.name == *name,
            Hint::Key(key) => compare_documents(&index.key, key).is_eq(),
        });
        if found {
            Ok(())
        } else {
            Err(CommandError::bad_value(
                "error processing query: planner returned error :: caused by :: hint provided \
                 does not correspond to an existing index",
            ))
        }
    }
}
