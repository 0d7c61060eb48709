//! Stages made of other stages: `$facet` (several pipelines over the same input, one
//! document out), `$sortByCount` (`$group` + `$sort`) and `$unionWith` (another collection's
//! documents, through an optional pipeline, after this one's).

use bson::{Bson, Document, doc};

use super::group::Group;
use super::{Foreign, Pipeline};
use crate::error::{QueryError, QueryResult};
use crate::filter::Filter;
use crate::sort::SortSpec;
use crate::types::type_alias;

/// Stages a `$facet` pipeline may not hold (mongod's list).
const NOT_IN_FACET: &[&str] = &[
    "$collStats",
    "$facet",
    "$geoNear",
    "$indexStats",
    "$out",
    "$merge",
    "$planCacheStats",
    "$changeStream",
    "$unionWith",
];

/// A parsed `$facet`: named pipelines.
#[derive(Debug, Clone)]
pub(super) struct Facet {
    facets: Vec<(String, Pipeline)>,
}

impl Facet {
    pub(super) fn parse(spec: &Bson) -> QueryResult<Self> {
        let Bson::Document(spec) = spec else {
            return Err(QueryError::location(
                15947,
                format!(
                    "a facet's fields must be specified in an object, found: {}",
                    type_alias(spec)
                ),
            ));
        };
        if spec.is_empty() {
            return Err(QueryError::location(
                40169,
                "the $facet specification must be a non-empty object",
            ));
        }
        let mut facets = Vec::with_capacity(spec.len());
        for (name, stages) in spec {
            if name.is_empty() {
                return Err(QueryError::location(
                    15998,
                    "FieldPath field names may not be empty strings.",
                ));
            }
            if name.starts_with('$') {
                return Err(QueryError::location(
                    16410,
                    format!("FieldPath field names may not start with '$'. ({name})"),
                ));
            }
            if name.contains('.') {
                return Err(QueryError::location(
                    16412,
                    format!("FieldPath field names may not contain '.'. ({name})"),
                ));
            }
            let Bson::Array(stages) = stages else {
                return Err(QueryError::location(
                    40170,
                    format!(
                        "arguments to $facet must be arrays, {name} is type {}",
                        type_alias(stages)
                    ),
                ));
            };
            let mut docs = Vec::with_capacity(stages.len());
            for stage in stages {
                let Bson::Document(stage) = stage else {
                    return Err(QueryError::location(
                        40171,
                        format!(
                            "elements of arrays in $facet spec must be non-empty objects, {name} field contains an element of type {}",
                            type_alias(stage)
                        ),
                    ));
                };
                if let Some(inner) = stage
                    .keys()
                    .next()
                    .filter(|k| NOT_IN_FACET.contains(&k.as_str()))
                {
                    return Err(QueryError::location(
                        40600,
                        format!("{inner} is not allowed to be used within a $facet stage"),
                    ));
                }
                docs.push(stage.clone());
            }
            facets.push((name.clone(), Pipeline::parse(&docs)?));
        }
        Ok(Self { facets })
    }

    /// One document: each facet's results over the same input.
    pub(super) fn run(
        &self,
        docs: Vec<Document>,
        foreign: &dyn Foreign,
    ) -> QueryResult<Vec<Document>> {
        let mut out = Document::new();
        for (name, pipeline) in &self.facets {
            let results = pipeline.run_with(docs.clone(), foreign)?;
            out.insert(
                name.clone(),
                results.into_iter().map(Bson::Document).collect::<Vec<_>>(),
            );
        }
        Ok(vec![out])
    }
}

/// `$sortByCount: <expr>` as mongod rewrites it: `$group` by the expression with a `count`,
/// then `$sort` by it, descending.
pub(super) fn parse_sort_by_count(spec: &Bson) -> QueryResult<(Group, SortSpec)> {
    match spec {
        Bson::String(s) if s.starts_with('$') => {}
        Bson::String(_) => {
            return Err(QueryError::location(
                40148,
                "the sortBy field must be defined as a $-prefixed path or an expression",
            ));
        }
        Bson::Document(d)
            if d.len() == 1 && d.keys().next().is_some_and(|k| k.starts_with('$')) => {}
        Bson::Document(_) => {
            return Err(QueryError::location(
                40147,
                "the sortBy object must be an expression with a single $-prefixed operator",
            ));
        }
        _ => {
            return Err(QueryError::location(
                40149,
                "the sortBy field must be defined as a $-prefixed path or an expression",
            ));
        }
    }
    let group = Group::parse(&Bson::Document(
        doc! {"_id": spec.clone(), "count": {"$sum": 1}},
    ))?;
    Ok((group, SortSpec::parse(&doc! {"count": -1})?))
}

/// A parsed `$unionWith`.
#[derive(Debug, Clone)]
pub(super) struct UnionWith {
    coll: String,
    pipeline: Pipeline,
}

impl UnionWith {
    /// `"<coll>"` or `{coll, pipeline}`.
    pub(super) fn parse(spec: &Bson) -> QueryResult<Self> {
        let (coll, stages) = match spec {
            Bson::String(coll) => (coll.clone(), Vec::new()),
            Bson::Document(d) => {
                if let Some(other) = d
                    .keys()
                    .find(|k| !matches!(k.as_str(), "coll" | "pipeline"))
                {
                    return Err(QueryError::location(
                        40415,
                        format!("BSON field '$unionWith.{other}' is an unknown field."),
                    ));
                }
                let coll = match d.get("coll") {
                    Some(Bson::String(c)) => c.clone(),
                    Some(Bson::Document(_)) => {
                        return Err(QueryError::not_implemented(
                            "$unionWith from another database is not supported by rewind",
                        ));
                    }
                    _ => {
                        return Err(QueryError::location(
                            40414,
                            "BSON field '$unionWith.coll' is missing but a required field",
                        ));
                    }
                };
                let stages = match d.get("pipeline") {
                    None => Vec::new(),
                    Some(Bson::Array(items)) => items
                        .iter()
                        .map(|s| match s {
                            Bson::Document(stage) => Ok(stage.clone()),
                            other => Err(QueryError::type_mismatch(format!(
                                "Each element of the 'pipeline' array must be an object, found {}",
                                type_alias(other)
                            ))),
                        })
                        .collect::<QueryResult<_>>()?,
                    Some(other) => {
                        return Err(QueryError::type_mismatch(format!(
                            "BSON field '$unionWith.pipeline' is the wrong type '{}', expected type 'array'",
                            type_alias(other)
                        )));
                    }
                };
                (coll, stages)
            }
            other => {
                return Err(QueryError::failed_to_parse(format!(
                    "the $unionWith stage specification must be an object or string, but found {}",
                    type_alias(other)
                )));
            }
        };
        Ok(Self {
            coll,
            pipeline: Pipeline::parse(&stages)?,
        })
    }

    /// This pipeline's documents, then the other collection's through its pipeline.
    pub(super) fn run(
        &self,
        mut docs: Vec<Document>,
        foreign: &dyn Foreign,
    ) -> QueryResult<Vec<Document>> {
        let all = Filter::parse(&Document::new())?;
        let other = foreign.matching(&self.coll, &all)?;
        docs.extend(self.pipeline.run_with(other, foreign)?);
        Ok(docs)
    }
}
