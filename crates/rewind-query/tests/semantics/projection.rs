use bson::{Bson, Document, doc};
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

/// The find projection operator `$elemMatch`, as MongoDB's own tests of it describe it.
#[test]
fn elem_match_operator() {
    let d = doc! {
        "_id": 1,
        "x": [{"a": 1, "b": 2}, {"a": 2, "c": 3}, {"a": 1, "d": 5}],
        "y": [1, 2, 4, 3, 5],
        "z": "kept only when named"
    };
    // Alone it includes: the other fields go, `_id` stays.
    assert_eq!(
        project(
            doc! {"x": {"$elemMatch": {"d": {"$exists": true}}}},
            d.clone()
        ),
        doc! {"_id": 1, "x": [{"a": 1, "d": 5}]}
    );
    // The value form on scalars, and only the first element that matches.
    assert_eq!(
        project(
            doc! {"y": {"$elemMatch": {"$gt": 2, "$lt": 5}}, "_id": 0},
            d.clone()
        ),
        doc! {"y": [4]}
    );
    assert_eq!(
        project(
            doc! {"y": {"$elemMatch": {"$in": [9, 3, 5]}}, "_id": 0},
            d.clone()
        ),
        doc! {"y": [3]}
    );
    assert_eq!(
        project(doc! {"x": {"$elemMatch": {"a": 1}}, "_id": 0}, d.clone()),
        doc! {"x": [{"a": 1, "b": 2}]}
    );
    // Placed after the plain inclusions, whatever the order of the fields.
    let out = project(doc! {"x": {"$elemMatch": {"a": 2}}, "z": 1}, d.clone());
    assert_eq!(out.keys().collect::<Vec<_>>(), ["_id", "z", "x"]);
    assert_eq!(
        out.get_array("x").expect("x"),
        &vec![Bson::Document(doc! {"a": 2, "c": 3})]
    );
    // With an exclusion the rest stays, and the field keeps its place.
    let out = project(doc! {"x": {"$elemMatch": {"a": 2}}, "y": 0}, d.clone());
    assert_eq!(out.keys().collect::<Vec<_>>(), ["_id", "x", "z"]);
    // `$slice` outranks it: together they exclude nothing else.
    let out = project(
        doc! {"x": {"$elemMatch": {"a": 2}}, "y": {"$slice": 1}},
        d.clone(),
    );
    assert_eq!(out.keys().collect::<Vec<_>>(), ["_id", "x", "y", "z"]);
    assert_eq!(out.get_array("y").expect("y"), &vec![Bson::Int32(1)]);
    // No matching element, or no array: the field is left out.
    assert_eq!(
        project(doc! {"y": {"$elemMatch": {"$lt": 0}}}, d.clone()),
        doc! {"_id": 1}
    );
    assert_eq!(
        project(doc! {"z": {"$elemMatch": {"$gt": 2}}, "_id": 1}, d.clone()),
        doc! {"_id": 1}
    );
    // `{}` picks the first embedded array or document; nested arrays are matched by index.
    let nested = doc! {"_id": 2, "n": ["s", 123, [4, 5, 6], {"a": 1}]};
    assert_eq!(
        project(doc! {"n": {"$elemMatch": {}}, "_id": 0}, nested.clone()),
        doc! {"n": [[4, 5, 6]]}
    );
    assert_eq!(
        project(
            doc! {"n": {"$elemMatch": {"$elemMatch": {"$gt": 5}}}, "_id": 0},
            nested
        ),
        doc! {"n": [[4, 5, 6]]}
    );
    // The server's refusals.
    assert_eq!(
        code(Projection::parse(&doc! {"x": {"$elemMatch": 1}})),
        31274
    );
    assert_eq!(
        code(Projection::parse(&doc! {"x.a": {"$elemMatch": {"b": 1}}})),
        31275
    );
    assert_eq!(
        code(Projection::parse(
            &doc! {"x.$": 1, "y": {"$elemMatch": {"b": 1}}}
        )),
        31255
    );
    assert_eq!(
        code(Projection::parse(
            &doc! {"y": {"$elemMatch": {"b": 1}}, "x.$": 1}
        )),
        31256
    );
    assert_eq!(
        code(Projection::parse(&doc! {"x": {"$elemMatch": {"$foo": 1}}})),
        2
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
    // Under an array, computed fields go into each element (scalars are left out by the
    // inclusion, as for included subfields).
    assert_eq!(
        project(doc! {"arr.z": "$a", "_id": 0}, sample()),
        doc! {"arr": [{"z": 1}, {"z": 1}]}
    );
    assert_eq!(
        project(
            doc! {"arr.x": 1, "arr.z": {"$literal": 0}, "_id": 0},
            sample()
        ),
        doc! {"arr": [{"x": 1, "z": 0}, {"x": 3, "z": 0}]}
    );
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
