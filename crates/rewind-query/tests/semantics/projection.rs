use bson::{Document, doc};
use rewind_query::filter::Filter;
use rewind_query::projection::Projection;

use crate::code;

fn project(spec: Document, doc: Document) -> Document {
    Projection::parse(&spec)
        .expect("valid")
        .apply(&doc)
        .expect("applies")
}

fn sample() -> Document {
    doc! {"_id": 1, "a": 1, "b": {"c": 2, "d": 3}, "arr": [{"x": 1, "y": 2}, {"x": 3, "y": 4}, 5]}
}

#[test]
fn inclusion_and_exclusion() {
    assert_eq!(project(doc! {}, sample()), sample());
    assert_eq!(project(doc! {"a": 1}, sample()), doc! {"_id": 1, "a": 1});
    assert_eq!(project(doc! {"a": true, "_id": 0}, sample()), doc! {"a": 1});
    assert_eq!(project(doc! {"_id": 1}, sample()), doc! {"_id": 1});
    assert_eq!(
        project(doc! {"b.c": 1}, sample()),
        doc! {"_id": 1, "b": {"c": 2}}
    );
    assert_eq!(
        project(doc! {"b": {"d": 1}}, sample()),
        doc! {"_id": 1, "b": {"d": 3}}
    );
    assert_eq!(
        project(doc! {"arr.x": 1, "_id": 0}, sample()),
        doc! {"arr": [{"x": 1}, {"x": 3}]}
    );
    // Included fields keep the document's order, not the projection's.
    let out = project(doc! {"b": 1, "a": 1}, sample());
    assert_eq!(out.keys().collect::<Vec<_>>(), ["_id", "a", "b"]);
    assert_eq!(project(doc! {"missing": 1}, sample()), doc! {"_id": 1});
    assert_eq!(
        project(doc! {"b": 0, "arr": 0}, sample()),
        doc! {"_id": 1, "a": 1}
    );
    assert_eq!(
        project(doc! {"b.c": 0, "arr.y": 0, "_id": 0}, sample()),
        doc! {"a": 1, "b": {"d": 3}, "arr": [{"x": 1}, {"x": 3}, 5]}
    );
    assert_eq!(
        project(doc! {"_id": 0}, doc! {"_id": 1, "a": 2}),
        doc! {"a": 2}
    );
}

#[test]
fn slice_and_elem_match() {
    let d = doc! {"_id": 1, "a": [1, 2, 3, 4, 5], "k": 0};
    assert_eq!(
        project(doc! {"a": {"$slice": 2}}, d.clone()),
        doc! {"_id": 1, "a": [1, 2], "k": 0}
    );
    assert_eq!(
        project(doc! {"a": {"$slice": -2}}, d.clone()),
        doc! {"_id": 1, "a": [4, 5], "k": 0}
    );
    assert_eq!(
        project(doc! {"a": {"$slice": [1, 2]}}, d.clone()),
        doc! {"_id": 1, "a": [2, 3], "k": 0}
    );
    assert_eq!(
        project(doc! {"a": {"$slice": [-2, 5]}}, d.clone()),
        doc! {"_id": 1, "a": [4, 5], "k": 0}
    );
    assert_eq!(
        project(doc! {"a": {"$slice": 1}, "k": 1}, d.clone()),
        doc! {"_id": 1, "a": [1], "k": 0}
    );
    assert_eq!(code(Projection::parse(&doc! {"a": {"$slice": [1, 0]}})), 2);
    assert_eq!(code(Projection::parse(&doc! {"a": {"$slice": "x"}})), 2);
    let d = doc! {"_id": 1, "s": [{"n": "a", "g": 1}, {"n": "b", "g": 2}, {"n": "c", "g": 2}]};
    assert_eq!(
        project(doc! {"s": {"$elemMatch": {"g": 2}}}, d.clone()),
        doc! {"_id": 1, "s": [{"n": "b", "g": 2}]}
    );
    assert_eq!(
        project(doc! {"s": {"$elemMatch": {"g": 9}}, "_id": 0}, d),
        doc! {}
    );
}

#[test]
fn computed_fields() {
    assert_eq!(
        project(
            doc! {"a": 1, "total": {"$add": ["$a", "$b.c"]}, "lit": {"$literal": 1}},
            sample()
        ),
        doc! {"_id": 1, "a": 1, "total": 3, "lit": 1}
    );
    assert_eq!(
        project(doc! {"v": "$b.d", "_id": 0}, sample()),
        doc! {"v": 3}
    );
    assert_eq!(project(doc! {"v": "$nope", "_id": 0}, sample()), doc! {});
}

#[test]
fn errors() {
    let err = Projection::parse(&doc! {"a": 1, "b": 0}).expect_err("mixed");
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            31253,
            "Cannot do exclusion on field b in inclusion projection"
        )
    );
    let err = Projection::parse(&doc! {"a": 0, "b": 1}).expect_err("mixed");
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            31254,
            "Cannot do inclusion on field b in exclusion projection"
        )
    );
    assert_eq!(code(Projection::parse(&doc! {"a": 1, "a.b": 1})), 31249);
    assert_eq!(code(Projection::parse(&doc! {"a.b": 1, "a": 1})), 31250);
    assert_eq!(
        code(Projection::parse(&doc! {"a": {"$meta": "textScore"}})),
        238
    );
    assert_eq!(code(Projection::parse(&doc! {"a": {"$foo": 1}})), 168);
    assert_eq!(code(Projection::parse(&doc! {"$a": 1})), 16410);
}

#[test]
fn positional_projection() {
    let d = doc! {"_id": 1, "semester": 1, "grades": [70, 87, 90]};
    let filter = Filter::parse(&doc! {"semester": 1, "grades": {"$gte": 85}}).expect("valid");
    let p = Projection::parse(&doc! {"grades.$": 1}).expect("valid");
    assert!(p.has_positional());
    let out = p
        .apply_positional(&d, filter.positional_index(&d))
        .expect("applies");
    assert_eq!(out, doc! {"_id": 1, "grades": [87]});
    assert_eq!(code(p.apply(&d)), 51246);
    assert!(
        !Projection::parse(&doc! {"a": 1})
            .expect("valid")
            .has_positional()
    );
    assert_eq!(code(Projection::parse(&doc! {"a": 0, "b.$": 1})), 31254);
    assert_eq!(code(Projection::parse(&doc! {"a.$": 0})), 2);
    assert_eq!(code(Projection::parse(&doc! {"a.$.b.$": 1})), 2);
}
