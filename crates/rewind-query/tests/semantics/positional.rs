//! The positional `$` and all-positional `$[]` update operators.

use bson::{Document, doc};
use rewind_query::filter::Filter;
use rewind_query::update::{Update, UpdateContext};

use crate::code;
use crate::update::ctx;

/// Applies `update` to `doc` with the positional index `filter` reports.
fn apply_matched(
    filter: Document,
    update: Document,
    mut doc: Document,
) -> Result<Document, rewind_query::QueryError> {
    let filter = Filter::parse(&filter).expect("valid filter");
    assert!(filter.matches(&doc), "filter must match");
    let u = Update::parse_document(&update)?;
    let ctx = UpdateContext {
        positional_index: filter.positional_index(&doc),
        ..ctx()
    };
    u.apply(&mut doc, &ctx)?;
    Ok(doc)
}

#[test]
fn positional_operators() {
    // Documented examples: update the first matching array element.
    let out = apply_matched(
        doc! {"grades": 80},
        doc! {"$set": {"grades.$": 82}},
        doc! {"grades": [85, 80, 80]},
    );
    assert_eq!(out.expect("applies"), doc! {"grades": [85, 82, 80]});
    let out = apply_matched(
        doc! {"grades.grade": 85},
        doc! {"$set": {"grades.$.std": 6}},
        doc! {"grades": [{"grade": 80, "std": 8}, {"grade": 85, "std": 5}]},
    );
    assert_eq!(
        out.expect("applies"),
        doc! {"grades": [{"grade": 80, "std": 8}, {"grade": 85, "std": 6}]}
    );
    let out = apply_matched(
        doc! {"grades": {"$elemMatch": {"grade": {"$lte": 90}, "mean": {"$gt": 80}}}},
        doc! {"$inc": {"grades.$.std": 1}},
        doc! {"grades": [{"grade": 80, "mean": 75, "std": 8}, {"grade": 85, "mean": 90, "std": 5}]},
    );
    assert_eq!(
        out.expect("applies"),
        doc! {"grades": [{"grade": 80, "mean": 75, "std": 8}, {"grade": 85, "mean": 90, "std": 6}]}
    );
    let out = apply_matched(
        doc! {"a": {"$gt": 1}},
        doc! {"$inc": {"a.$[]": 10}},
        doc! {"a": [1, 2]},
    );
    assert_eq!(out.expect("applies"), doc! {"a": [11, 12]});
    let out = apply_matched(
        doc! {},
        doc! {"$set": {"a.$[].b": 0}},
        doc! {"a": [{"b": 1}, {"c": 1}]},
    );
    assert_eq!(
        out.expect("applies"),
        doc! {"a": [{"b": 0}, {"c": 1, "b": 0}]}
    );
    assert_eq!(
        code(apply_matched(
            doc! {},
            doc! {"$set": {"a.$": 1}},
            doc! {"a": [1]}
        )),
        2
    );
    assert_eq!(
        code(apply_matched(
            doc! {},
            doc! {"$set": {"x.$[]": 1}},
            doc! {"x": 5}
        )),
        2
    );
    assert_eq!(
        code(Update::parse_document(&doc! {"$set": {"a.$[i]": 1}})),
        238
    );
    assert_eq!(code(Update::parse_document(&doc! {"$set": {"$": 1}})), 2);
    assert_eq!(
        code(Update::parse_document(&doc! {"$set": {"a.$.b.$": 1}})),
        2
    );
    assert_eq!(
        code(Update::parse_document(&doc! {"$rename": {"a.$": "b"}})),
        2
    );
}

/// Once resolved, a positional path may address what another path of the same update does:
/// the server refuses that (code 40) instead of applying both.
#[test]
fn resolved_positional_paths_do_not_conflict_silently() {
    let conflict = |filter: Document, update: Document, doc: Document| {
        code(apply_matched(filter, update, doc))
    };
    assert_eq!(
        conflict(
            doc! {"a": 1},
            doc! {"$set": {"a.$": 9, "a.0": 8}},
            doc! {"a": [1, 2, 3]}
        ),
        40
    );
    assert_eq!(
        conflict(
            doc! {},
            doc! {"$set": {"a.$[]": 5, "a.0": 6}},
            doc! {"a": [1, 2]}
        ),
        40
    );
    assert_eq!(
        conflict(
            doc! {"a.x": 1},
            doc! {"$set": {"a.$.x": 9}, "$inc": {"a.0.x": 1}},
            doc! {"a": [{"x": 1}]}
        ),
        40
    );
    assert_eq!(
        conflict(
            doc! {},
            doc! {"$set": {"a.$[]": 1, "a.0.x": 2}},
            doc! {"a": [{"x": 1}]}
        ),
        40
    );
    // Different elements are no conflict.
    let out = apply_matched(
        doc! {"a": 1},
        doc! {"$set": {"a.$": 9, "a.2": 8}},
        doc! {"a": [1, 2, 3]},
    );
    assert_eq!(out.expect("applies"), doc! {"a": [9, 2, 8]});
}
