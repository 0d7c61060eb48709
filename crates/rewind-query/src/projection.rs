//! Find/`$project` projections: inclusion, exclusion, computed fields,
//! `$slice` and `$elemMatch`.

use bson::{Bson, Document};

use crate::aggregate::expr::Expr;
use crate::compare::Num;
use crate::error::{QueryError, QueryResult};
use crate::filter::ElemMatch;
use crate::types::type_alias;

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    /// Inclusion mode keeps only the named fields; exclusion mode keeps the rest.
    inclusion: bool,
    /// The spec tree, `_id` included when it was named explicitly.
    fields: Vec<(String, Node)>,
    /// Whether `_id` is output although not named (the default).
    implicit_id: bool,
    /// `{}`: the identity projection.
    identity: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Include,
    Exclude,
    Computed(Expr),
    Slice {
        skip: i64,
        limit: Option<i64>,
    },
    /// `{$elemMatch: spec}`: the first element the spec matches, as a one-element array.
    ElemMatch(Box<ElemMatch>),
    /// `a.$`: the array element the query matched (see [`Filter::positional_index`]).
    Positional,
    Children(Vec<(String, Node)>),
}

impl Projection {
    /// Parses a find-command projection; `{}` returns documents unchanged.
    pub fn parse(spec: &Document) -> QueryResult<Projection> {
        Self::parse_with(spec, true)
    }

    /// Parses an aggregation `$project`, where find's own operators do not exist: `$slice`
    /// and `$elemMatch` are read as expressions, and a positional `.$` is refused.
    pub fn parse_aggregate(spec: &Document) -> QueryResult<Projection> {
        Self::parse_with(spec, false)
    }

    fn parse_with(spec: &Document, find: bool) -> QueryResult<Projection> {
        let mut fields: Vec<(String, Node)> = Vec::new();
        let mut mode = Mode {
            find,
            ..Mode::default()
        };
        for (key, value) in spec {
            if key.is_empty() || key.starts_with('$') {
                return Err(QueryError::location(
                    16410,
                    format!("FieldPath field names may not start with '$'. Got '{key}'"),
                ));
            }
            if let Some(array_path) = key.strip_suffix(".$") {
                if !find {
                    return Err(QueryError::location(
                        31324,
                        "Cannot use positional projection in aggregation projection",
                    ));
                }
                if array_path.split('.').any(|p| p.starts_with('$')) || !is_true(value) {
                    return Err(QueryError::bad_value(format!(
                        "Positional projection '{key}' must be a single trailing '.$' with a \
                         true value"
                    )));
                }
                mode.note(key, &Node::Positional)?;
                insert_path(&mut fields, array_path, Node::Positional)?;
                continue;
            }
            let node = parse_value(key, value, &mut mode)?;
            insert_path(&mut fields, key, node)?;
        }
        let id_named = fields.iter().any(|(k, _)| k == "_id");
        // `{_id: 1}` alone (or a computed `_id`) is an inclusion projection.
        let id_only_inclusion = fields
            .iter()
            .any(|(k, n)| k == "_id" && matches!(n, Node::Include | Node::Computed(_)));
        // With no plain inclusion or exclusion, the server decides in this order: `{_id: 1}`
        // includes, any `$slice` excludes, any `$elemMatch` includes, anything else excludes.
        let implied = id_only_inclusion || (mode.elem_match && !mode.slice);
        Ok(Projection {
            inclusion: mode.inclusion.unwrap_or(implied),
            implicit_id: !id_named && !mode.id_excluded,
            identity: spec.is_empty(),
            fields,
        })
    }

    /// Whether the projection keeps only named fields.
    pub fn is_inclusion(&self) -> bool {
        self.inclusion
    }

    /// Whether the projection uses the positional `.$` form, whose result
    /// depends on which array element the query matched.
    pub fn has_positional(&self) -> bool {
        fn any(spec: &[(String, Node)]) -> bool {
            spec.iter().any(|(_, n)| match n {
                Node::Positional => true,
                Node::Children(c) => any(c),
                _ => false,
            })
        }
        any(&self.fields)
    }

    /// Applies a projection without positional `.$` fields (with one, this
    /// fails as no match position is known; use [`Projection::apply_positional`]).
    /// Other errors come from computed-field expressions.
    pub fn apply(&self, doc: &Document) -> QueryResult<Document> {
        self.apply_positional(doc, None)
    }

    /// Applies the projection; `positional` is the query's
    /// [`Filter::positional_index`] for `doc`, used by `.$` fields.
    pub fn apply_positional(
        &self,
        doc: &Document,
        positional: Option<usize>,
    ) -> QueryResult<Document> {
        if self.identity {
            return Ok(doc.clone());
        }
        if !self.inclusion {
            return exclude(doc, &self.fields);
        }
        let mut out = Document::new();
        if self.implicit_id
            && let Some(id) = doc.get("_id")
        {
            out.insert("_id", id.clone());
        }
        include(doc, &self.fields, positional, &mut out)?;
        add_computed(doc, &self.fields, &mut out)?;
        Ok(out)
    }
}

/// Tracks whether the leaves seen so far make an inclusion or an exclusion
/// projection, rejecting a mix with the server's errors.
#[derive(Debug, Default)]
struct Mode {
    /// A find projection: its own `$slice`, `$elemMatch` and positional operators apply.
    find: bool,
    inclusion: Option<bool>,
    id_excluded: bool,
    slice: bool,
    elem_match: bool,
    positional: bool,
}

impl Mode {
    fn note(&mut self, path: &str, node: &Node) -> QueryResult<()> {
        let is_id = path == "_id";
        match node {
            Node::Slice { .. } => self.slice = true,
            Node::ElemMatch(_) if self.positional => {
                return Err(QueryError::location(
                    31255,
                    "Cannot specify positional operator and $elemMatch.",
                ));
            }
            Node::ElemMatch(_) => self.elem_match = true,
            Node::Positional if self.elem_match => {
                return Err(QueryError::location(
                    31256,
                    "Cannot specify positional operator and $elemMatch.",
                ));
            }
            Node::Positional => self.positional = true,
            _ => {}
        }
        match node {
            Node::Include | Node::Computed(_) | Node::Positional if !is_id => {
                if self.inclusion == Some(false) {
                    return Err(QueryError::location(
                        31254,
                        format!("Cannot do inclusion on field {path} in exclusion projection"),
                    ));
                }
                self.inclusion = Some(true);
            }
            Node::Exclude if !is_id => {
                if self.inclusion == Some(true) {
                    return Err(QueryError::location(
                        31253,
                        format!("Cannot do exclusion on field {path} in inclusion projection"),
                    ));
                }
                self.inclusion = Some(false);
            }
            Node::Exclude => self.id_excluded = true,
            _ => {}
        }
        Ok(())
    }
}

/// Parses the spec value at dotted `path`, recording leaves in `mode`.
fn is_true(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        other => Num::of(other).is_some_and(|n| n.as_f64() != 0.0),
    }
}

fn parse_value(path: &str, value: &Bson, mode: &mut Mode) -> QueryResult<Node> {
    let node = parse_leaf_or_children(path, value, mode)?;
    mode.note(path, &node)?;
    Ok(node)
}

fn parse_leaf_or_children(key: &str, value: &Bson, mode: &mut Mode) -> QueryResult<Node> {
    match value {
        Bson::Boolean(b) => Ok(if *b { Node::Include } else { Node::Exclude }),
        Bson::Document(d) => match d.keys().next().map(String::as_str) {
            Some("$slice") if d.len() == 1 && mode.find => {
                parse_slice(d.get("$slice").unwrap_or(&Bson::Null))
            }
            Some("$elemMatch") if d.len() == 1 && mode.find => match d.get("$elemMatch") {
                Some(Bson::Document(spec)) if !key.contains('.') => {
                    Ok(Node::ElemMatch(Box::new(ElemMatch::parse(spec)?)))
                }
                Some(Bson::Document(_)) => Err(QueryError::location(
                    31275,
                    "Cannot use $elemMatch projection on a nested field.",
                )),
                other => Err(QueryError::location(
                    31274,
                    format!(
                        "elemMatch: Invalid argument, object required, but got {}",
                        other.map_or("missing", type_alias)
                    ),
                )),
            },
            Some("$meta") => Err(QueryError::not_implemented(
                "$meta projection is not supported by this server",
            )),
            Some(k) if k.starts_with('$') => Ok(Node::Computed(Expr::parse(value)?)),
            // `{a: {b: 1}}` is the nested spelling of `{"a.b": 1}`.
            _ => {
                let mut children = Vec::new();
                for (k, v) in d {
                    let child = parse_value(&format!("{key}.{k}"), v, mode)?;
                    insert_path(&mut children, k, child)?;
                }
                Ok(Node::Children(children))
            }
        },
        other => match Num::of(other) {
            Some(n) => Ok(if n.as_f64() == 0.0 {
                Node::Exclude
            } else {
                Node::Include
            }),
            None => Ok(Node::Computed(Expr::parse(other)?)),
        },
    }
}

fn parse_slice(arg: &Bson) -> QueryResult<Node> {
    let int = |b: &Bson| -> Option<i64> {
        match Num::of(b)? {
            Num::Int(i) => Some(i),
            // Saturating truncation of a double count is what the server does.
            #[allow(clippy::cast_possible_truncation)]
            Num::Float(f) => Some(f as i64),
            Num::NaN => None,
        }
    };
    match arg {
        Bson::Array(items) if items.len() == 2 => {
            let (Some(skip), Some(limit)) = (int(&items[0]), int(&items[1])) else {
                return Err(QueryError::bad_value("$slice array args must be numbers"));
            };
            if limit <= 0 {
                return Err(QueryError::bad_value("$slice limit must be positive"));
            }
            Ok(Node::Slice {
                skip,
                limit: Some(limit),
            })
        }
        Bson::Array(_) => Err(QueryError::bad_value("$slice array wrong size")),
        other => match int(other) {
            Some(n) => Ok(Node::Slice {
                skip: n,
                limit: None,
            }),
            None => Err(QueryError::bad_value(
                "$slice only supports numbers and [skip, limit] arrays",
            )),
        },
    }
}

/// Adds `node` at dotted `key`, merging with siblings and rejecting overlaps.
fn insert_path(fields: &mut Vec<(String, Node)>, key: &str, node: Node) -> QueryResult<()> {
    let (head, rest) = match key.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (key, None),
    };
    let existing = fields.iter_mut().find(|(k, _)| k == head);
    match (existing, rest) {
        (None, None) => fields.push((head.to_owned(), node)),
        (None, Some(r)) => {
            let mut children = Vec::new();
            insert_path(&mut children, r, node)?;
            fields.push((head.to_owned(), Node::Children(children)));
        }
        (Some((_, Node::Children(children))), Some(r)) => insert_path(children, r, node)?,
        (Some((_, Node::Children(children))), None) => match node {
            Node::Children(more) => {
                for (k, v) in more {
                    insert_path(children, &k, v)?;
                }
            }
            _ => {
                return Err(QueryError::location(
                    31250,
                    format!("Path collision at {key}"),
                ));
            }
        },
        (Some(_), Some(r)) => {
            return Err(QueryError::location(
                31249,
                format!("Path collision at {key} remaining portion {r}"),
            ));
        }
        (Some(_), None) => {
            return Err(QueryError::location(
                31250,
                format!("Path collision at {key}"),
            ));
        }
    }
    Ok(())
}

fn include(
    doc: &Document,
    spec: &[(String, Node)],
    positional: Option<usize>,
    out: &mut Document,
) -> QueryResult<()> {
    for (key, value) in doc {
        let Some((_, node)) = spec.iter().find(|(k, _)| k == key) else {
            continue;
        };
        match node {
            Node::Include => {
                out.insert(key.clone(), value.clone());
            }
            Node::Children(children) => match value {
                Bson::Document(sub) => {
                    let mut inner = Document::new();
                    include(sub, children, positional, &mut inner)?;
                    out.insert(key.clone(), inner);
                }
                Bson::Array(items) => {
                    out.insert(key.clone(), include_array(items, children, positional)?);
                }
                _ => {}
            },
            Node::Positional => {
                let element = match value {
                    Bson::Array(items) => positional.and_then(|i| items.get(i)),
                    _ => None,
                };
                let Some(element) = element else {
                    return Err(QueryError::location(
                        51246,
                        "positional operator '.$' couldn't find a matching element in the array",
                    ));
                };
                out.insert(key.clone(), Bson::Array(vec![element.clone()]));
            }
            Node::Slice { skip, limit } => {
                out.insert(key.clone(), slice(value, *skip, *limit));
            }
            // Added after the included fields, as computed ones are.
            Node::Exclude | Node::Computed(_) | Node::ElemMatch(_) => {}
        }
    }
    Ok(())
}

/// Inclusion inside arrays keeps only (projected) embedded documents and arrays.
fn include_array(
    items: &[Bson],
    spec: &[(String, Node)],
    positional: Option<usize>,
) -> QueryResult<Bson> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Bson::Document(sub) => {
                let mut inner = Document::new();
                include(sub, spec, positional, &mut inner)?;
                out.push(Bson::Document(inner));
            }
            Bson::Array(nested) => out.push(include_array(nested, spec, positional)?),
            _ => {}
        }
    }
    Ok(Bson::Array(out))
}

fn exclude(doc: &Document, spec: &[(String, Node)]) -> QueryResult<Document> {
    let mut out = Document::new();
    for (key, value) in doc {
        let Some((_, node)) = spec.iter().find(|(k, _)| k == key) else {
            out.insert(key.clone(), value.clone());
            continue;
        };
        match node {
            Node::Exclude => {}
            Node::Children(children) => {
                out.insert(key.clone(), exclude_value(value, children)?);
            }
            Node::Slice { skip, limit } => {
                out.insert(key.clone(), slice(value, *skip, *limit));
            }
            // In place: the field is still there when the server sets it.
            Node::ElemMatch(spec) => {
                if let Some(v) = elem_match(value, spec)? {
                    out.insert(key.clone(), v);
                }
            }
            Node::Include | Node::Computed(_) | Node::Positional => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

fn exclude_value(value: &Bson, spec: &[(String, Node)]) -> QueryResult<Bson> {
    Ok(match value {
        Bson::Document(sub) => Bson::Document(exclude(sub, spec)?),
        Bson::Array(items) => Bson::Array(
            items
                .iter()
                .map(|i| exclude_value(i, spec))
                .collect::<QueryResult<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Computed and `$elemMatch` fields are evaluated against the whole document and
/// appended after the included fields, as the server does.
fn add_computed(root: &Document, spec: &[(String, Node)], out: &mut Document) -> QueryResult<()> {
    for (key, node) in spec {
        match node {
            Node::Computed(expr) => {
                if let Some(v) = expr.evaluate_opt(root)? {
                    out.insert(key.clone(), v);
                }
            }
            // Only at the top level (parsing refuses nested ones), so `key` names a field of
            // `root`.
            Node::ElemMatch(elem_spec) => {
                if let Some(Some(v)) = root
                    .get(key)
                    .map(|v| elem_match(v, elem_spec))
                    .transpose()?
                {
                    out.insert(key.clone(), v);
                }
            }
            Node::Children(children) if has_computed(children) => match out.get_mut(key) {
                Some(existing) => add_computed_within(root, children, existing)?,
                None => {
                    let mut sub = Document::new();
                    add_computed(root, children, &mut sub)?;
                    out.insert(key.clone(), sub);
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Computed fields under a projected value: a document gets them, an array in each of its
/// elements, and any other value is replaced by a document of them (as the server does).
fn add_computed_within(
    root: &Document,
    spec: &[(String, Node)],
    target: &mut Bson,
) -> QueryResult<()> {
    match target {
        Bson::Document(sub) => add_computed(root, spec, sub),
        Bson::Array(items) => items
            .iter_mut()
            .try_for_each(|item| add_computed_within(root, spec, item)),
        other => {
            let mut sub = Document::new();
            add_computed(root, spec, &mut sub)?;
            *other = Bson::Document(sub);
            Ok(())
        }
    }
}

fn has_computed(spec: &[(String, Node)]) -> bool {
    spec.iter().any(|(_, n)| match n {
        Node::Computed(_) => true,
        Node::Children(c) => has_computed(c),
        _ => false,
    })
}

/// `$slice`: `n` keeps the first n (last n when negative); `[skip, limit]`
/// skips from the start (from the end when negative). Non-arrays pass through.
pub(crate) fn slice(value: &Bson, skip: i64, limit: Option<i64>) -> Bson {
    let Bson::Array(items) = value else {
        return value.clone();
    };
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let (start, count) = match limit {
        None if skip >= 0 => (0, skip),
        None => ((len + skip).max(0), len),
        Some(limit) => {
            let start = if skip >= 0 {
                skip.min(len)
            } else {
                (len + skip).max(0)
            };
            (start, limit)
        }
    };
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    Bson::Array(items.iter().skip(start).take(count).cloned().collect())
}

/// `$elemMatch` of a field's value: its first matching element as a one-element array, or
/// nothing (the field is left out) when the value is no array or no element matches.
fn elem_match(value: &Bson, spec: &ElemMatch) -> QueryResult<Option<Bson>> {
    let Bson::Array(items) = value else {
        return Ok(None);
    };
    Ok(spec
        .first_match(items)?
        .map(|i| Bson::Array(vec![items[i].clone()])))
}
