//! Aggregation pipelines: `Pipeline::parse(&[Document])` then `run`.

mod coerce;
mod compose;
mod convert;
mod dates;
pub mod expr;
mod group;
mod lookup;
mod ops;
mod stages;
mod strings;
mod unsupported;
mod unwind;
mod vars;

use bson::Document;

use crate::error::{QueryError, QueryResult};
use crate::filter::Filter;

pub use convert::Target;
pub use dates::DatePart;
pub use stages::Stage;
pub use strings::StringOp;
pub use vars::Scoped;

/// A parsed aggregation pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    stages: Vec<Stage>,
}

impl Pipeline {
    /// Parses pipeline stages, failing on unknown stages (code 40324) or
    /// malformed stage arguments with the server's codes.
    pub fn parse(stages: &[Document]) -> QueryResult<Pipeline> {
        Ok(Pipeline {
            stages: stages
                .iter()
                .map(Stage::parse)
                .collect::<QueryResult<_>>()?,
        })
    }

    /// The parsed stages, so a caller can push a leading `$match`/`$sort`
    /// down to storage.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Runs the pipeline over `docs`, returning the result documents (a `$lookup` fails:
    /// there is no database to read).
    pub fn run<I: IntoIterator<Item = Document>>(&self, docs: I) -> QueryResult<Vec<Document>> {
        self.run_with(docs, &NoForeign)
    }

    /// Runs the pipeline over `docs`, reading other collections through `foreign`.
    pub fn run_with<I: IntoIterator<Item = Document>>(
        &self,
        docs: I,
        foreign: &dyn Foreign,
    ) -> QueryResult<Vec<Document>> {
        let mut current: Vec<Document> = docs.into_iter().collect();
        for stage in &self.stages {
            current = stage.run_with(current, foreign)?;
        }
        Ok(current)
    }
}

/// Reads the other collections of the pipeline's database (`$lookup`'s `from`).
pub trait Foreign {
    /// The documents of collection `coll` that match `filter`.
    fn matching(&self, coll: &str, filter: &Filter) -> QueryResult<Vec<Document>>;
}

/// No database to read: a `$lookup` outside of one fails.
struct NoForeign;

impl Foreign for NoForeign {
    fn matching(&self, _: &str, _: &Filter) -> QueryResult<Vec<Document>> {
        Err(QueryError::not_implemented(
            "$lookup needs a database to read from",
        ))
    }
}
