//! Aggregation pipelines: `Pipeline::parse(&[Document])` then `run`.

mod coerce;
pub mod expr;
mod group;
mod ops;
mod stages;
mod unsupported;
mod unwind;

use bson::Document;

use crate::error::QueryResult;

pub use stages::Stage;

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

    /// Runs the pipeline over `docs`, returning the result documents.
    pub fn run<I: IntoIterator<Item = Document>>(&self, docs: I) -> QueryResult<Vec<Document>> {
        let mut current: Vec<Document> = docs.into_iter().collect();
        for stage in &self.stages {
            current = stage.run(current)?;
        }
        Ok(current)
    }
}
