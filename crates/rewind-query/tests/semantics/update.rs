use bson::{Bson, Document, bson, doc};
use rewind_query::filter::Filter;
use rewind_query::update::{Update, UpdateContext};

use crate::code;

pub(crate) fn ctx() -> UpdateContext {
    UpdateContext {
        is_upsert_insert: false,
        now: bson::DateTime::from_millis(1_700_000_000_000),
        positional_index: None,
    }
}

fn apply(update: Document, mut doc: Document) -> Result<Document, rewind_query::QueryError> {
    let u = Update::parse_document(&update)?;
    u.apply(&mut doc, &ctx())?;
    Ok(doc)
}

fn ok(update: Document, doc: Document) -> Document {
    apply(update, doc).expect("update applies")
}

#[test]
fn set_and_unset() {
    assert_eq!(
        ok(doc! {"$set": {"a": 2}}, doc! {"_id": 1, "a": 1}),
        doc! {"_id": 1, "a": 2}
    );
    assert_eq!(
        ok(doc! {"$set": {"x.y.z": 1}}, doc! {"_id": 1}),
        doc! {"_id": 1, "x": {"y": {"z": 1}}}
    );
    assert_eq!(
        ok(doc! {"$set": {"a.1": 9}}, doc! {"a": [1, 2, 3]}),
        doc! {"a": [1, 9, 3]}
    );
    assert_eq!(
        ok(doc! {"$set": {"a.4": 9}}, doc! {"a": [1]}),
        doc! {"a": [1, null, null, null, 9]}
    );
    assert_eq!(
        ok(doc! {"$set": {"a.0.b": 1}}, doc! {"a": [{}]}),
        doc! {"a": [{"b": 1}]}
    );
    // New fields are added in lexicographic order (server >= 5.0).
    assert_eq!(
        ok(doc! {"$set": {"b": 1, "a": 1}}, doc! {"_id": 0}),
        doc! {"_id": 0, "a": 1, "b": 1}
    );
    assert_eq!(
        ok(doc! {"$unset": {"a": ""}}, doc! {"a": 1, "b": 2}),
        doc! {"b": 2}
    );
    assert_eq!(
        ok(doc! {"$unset": {"a.1": 1}}, doc! {"a": [1, 2, 3]}),
        doc! {"a": [1, null, 3]}
    );
    assert_eq!(
        ok(doc! {"$unset": {"x.y": 1}}, doc! {"a": 1}),
        doc! {"a": 1}
    );
    assert_eq!(code(apply(doc! {"$set": {"a.b": 1}}, doc! {"a": 5})), 28);
    assert_eq!(code(apply(doc! {"$set": {"a.b": 1}}, doc! {"a": [1]})), 28);
}

#[test]
fn inc_and_mul() {
    assert_eq!(ok(doc! {"$inc": {"a": 2}}, doc! {"a": 1}), doc! {"a": 3});
    assert_eq!(
        ok(doc! {"$inc": {"a": 1.5}}, doc! {"a": 1}),
        doc! {"a": 2.5}
    );
    assert_eq!(ok(doc! {"$inc": {"a": -1}}, doc! {}), doc! {"a": -1});
    assert_eq!(
        ok(doc! {"$inc": {"a": 1}}, doc! {"a": i32::MAX}),
        doc! {"a": i64::from(i32::MAX) + 1}
    );
    assert_eq!(
        ok(doc! {"$inc": {"a": 1}}, doc! {"a": 1_i64}),
        doc! {"a": 2_i64}
    );
    assert_eq!(
        code(apply(doc! {"$inc": {"a": 1}}, doc! {"a": i64::MAX})),
        2
    );
    let err = apply(doc! {"$inc": {"a": 1}}, doc! {"_id": 1, "a": "x"}).expect_err("type");
    assert_eq!((err.code, err.code_name), (14, "TypeMismatch"));
    assert!(
        err.message
            .starts_with("Cannot apply $inc to a value of non-numeric type.")
    );
    let err = apply(doc! {"$inc": {"a": "x"}}, doc! {"a": 1}).expect_err("type");
    assert_eq!(err.code, 14);
    assert_eq!(
        err.message,
        "Cannot increment with non-numeric argument: {a: \"x\"}"
    );
    assert_eq!(ok(doc! {"$mul": {"a": 3}}, doc! {"a": 2}), doc! {"a": 6});
    assert_eq!(ok(doc! {"$mul": {"a": 2_i64}}, doc! {}), doc! {"a": 0_i64});
    assert_eq!(ok(doc! {"$mul": {"a": 2.0}}, doc! {}), doc! {"a": 0.0});
    assert_eq!(code(apply(doc! {"$mul": {"a": 2}}, doc! {"a": true})), 14);
}

#[test]
fn min_max_current_date() {
    assert_eq!(ok(doc! {"$min": {"a": 1}}, doc! {"a": 5}), doc! {"a": 1});
    assert_eq!(ok(doc! {"$min": {"a": 9}}, doc! {"a": 5}), doc! {"a": 5});
    assert_eq!(ok(doc! {"$max": {"a": 9}}, doc! {"a": 5}), doc! {"a": 9});
    assert_eq!(ok(doc! {"$max": {"a": 9}}, doc! {}), doc! {"a": 9});
    // Across types the BSON order decides: strings are above numbers.
    assert_eq!(
        ok(doc! {"$max": {"a": 1}}, doc! {"a": "s"}),
        doc! {"a": "s"}
    );
    let now = ctx().now;
    assert_eq!(
        ok(doc! {"$currentDate": {"d": true}}, doc! {}),
        doc! {"d": now}
    );
    assert_eq!(
        ok(doc! {"$currentDate": {"d": {"$type": "date"}}}, doc! {}),
        doc! {"d": now}
    );
    let ts = ok(
        doc! {"$currentDate": {"t": {"$type": "timestamp"}}},
        doc! {},
    );
    assert!(matches!(ts.get("t"), Some(Bson::Timestamp(t)) if t.time == 1_700_000_000));
    assert_eq!(
        code(apply(doc! {"$currentDate": {"d": {"$type": "x"}}}, doc! {})),
        2
    );
    assert_eq!(code(apply(doc! {"$currentDate": {"d": 1}}, doc! {})), 2);
}

#[test]
fn rename() {
    assert_eq!(
        ok(
            doc! {"$rename": {"nmae": "name"}},
            doc! {"_id": 1, "nmae": "x", "b": 1}
        ),
        doc! {"_id": 1, "b": 1, "name": "x"}
    );
    assert_eq!(
        ok(doc! {"$rename": {"a.b": "c"}}, doc! {"a": {"b": 1, "d": 2}}),
        doc! {"a": {"d": 2}, "c": 1}
    );
    assert_eq!(
        ok(doc! {"$rename": {"missing": "x"}}, doc! {"a": 1}),
        doc! {"a": 1}
    );
    assert_eq!(code(apply(doc! {"$rename": {"a": 1}}, doc! {"a": 1})), 2);
    assert_eq!(code(apply(doc! {"$rename": {"a": "a"}}, doc! {"a": 1})), 2);
    assert_eq!(
        code(apply(doc! {"$rename": {"a.0": "b"}}, doc! {"a": [1]})),
        2
    );
}

#[test]
fn push_with_modifiers() {
    assert_eq!(
        ok(doc! {"$push": {"a": 3}}, doc! {"a": [1]}),
        doc! {"a": [1, 3]}
    );
    assert_eq!(ok(doc! {"$push": {"a": [3]}}, doc! {}), doc! {"a": [[3]]});
    assert_eq!(
        ok(doc! {"$push": {"a": {"$each": [2, 3]}}}, doc! {"a": [1]}),
        doc! {"a": [1, 2, 3]}
    );
    assert_eq!(
        ok(
            doc! {"$push": {"a": {"$each": [20, 30], "$position": 1}}},
            doc! {"a": [1, 2]}
        ),
        doc! {"a": [1, 20, 30, 2]}
    );
    assert_eq!(
        ok(
            doc! {"$push": {"a": {"$each": [9], "$position": -1}}},
            doc! {"a": [1, 2]}
        ),
        doc! {"a": [1, 9, 2]}
    );
    // The documented quiz example: sort by score descending, keep 3.
    let d = doc! {"_id": 5, "quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 3, "score": 5}, {"wk": 4, "score": 6}]};
    let out = ok(
        doc! {"$push": {"quizzes": {"$each": [{"wk": 5, "score": 8}, {"wk": 6, "score": 7}, {"wk": 7, "score": 6}], "$sort": {"score": -1}, "$slice": 3}}},
        d,
    );
    assert_eq!(
        out,
        doc! {"_id": 5, "quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 5, "score": 8}]}
    );
    assert_eq!(
        ok(
            doc! {"$push": {"a": {"$each": [3, 1], "$sort": 1, "$slice": -2}}},
            doc! {"a": [2]}
        ),
        doc! {"a": [2, 3]}
    );
    assert_eq!(code(apply(doc! {"$push": {"a": 1}}, doc! {"a": 1})), 2);
    assert_eq!(code(apply(doc! {"$push": {"a": {"$each": 1}}}, doc! {})), 2);
    assert_eq!(
        code(apply(
            doc! {"$push": {"a": {"$each": [1], "$slice": "x"}}},
            doc! {}
        )),
        2
    );
    assert_eq!(
        code(apply(
            doc! {"$push": {"a": {"$each": [1], "$sort": 2}}},
            doc! {}
        )),
        2
    );
    assert_eq!(
        code(apply(
            doc! {"$push": {"a": {"$each": [1], "$foo": 2}}},
            doc! {}
        )),
        2
    );
}

#[test]
fn add_to_set_pull_pop() {
    assert_eq!(
        ok(doc! {"$addToSet": {"a": 2}}, doc! {"a": [1, 2]}),
        doc! {"a": [1, 2]}
    );
    assert_eq!(
        ok(doc! {"$addToSet": {"a": 2.0}}, doc! {"a": [2]}),
        doc! {"a": [2]}
    );
    assert_eq!(
        ok(
            doc! {"$addToSet": {"a": {"$each": [3, 1, 3]}}},
            doc! {"a": [1]}
        ),
        doc! {"a": [1, 3]}
    );
    assert_eq!(
        ok(doc! {"$addToSet": {"a": [1]}}, doc! {}),
        doc! {"a": [[1]]}
    );
    assert_eq!(code(apply(doc! {"$addToSet": {"a": 1}}, doc! {"a": 1})), 2);
    assert_eq!(
        ok(doc! {"$pull": {"a": 2}}, doc! {"a": [1, 2, 2.0, 3]}),
        doc! {"a": [1, 3]}
    );
    assert_eq!(
        ok(doc! {"$pull": {"v": {"$gte": 6}}}, doc! {"v": [3, 6, 9, 1]}),
        doc! {"v": [3, 1]}
    );

    // A query starting with a logical operator matches document elements whole.
    assert_eq!(
        ok(
            doc! {"$pull": {"a": {"$or": [{"c": 1}, {"c": 5}]}}},
            doc! {"a": [{"b": 1, "c": 1}, {"b": 1, "c": 2}, 7]}
        ),
        doc! {"a": [{"b": 1, "c": 2}, 7]}
    );
    assert_eq!(
        ok(
            doc! {"$pull": {"a": {"$and": [{"b": 1}, {"c": {"$gt": 1}}]}}},
            doc! {"a": [{"b": 1, "c": 1}, {"b": 1, "c": 2}]}
        ),
        doc! {"a": [{"b": 1, "c": 1}]}
    );
    assert_eq!(
        ok(
            doc! {"$pull": {"v": {"$in": ["a", "c"]}}},
            doc! {"v": ["a", "b", "c"]}
        ),
        doc! {"v": ["b"]}
    );
    assert_eq!(
        ok(
            doc! {"$pull": {"r": {"score": 8, "item": "B"}}},
            doc! {"r": [{"item": "A", "score": 5}, {"item": "B", "score": 8, "x": 1}]}
        ),
        doc! {"r": [{"item": "A", "score": 5}]}
    );
    assert_eq!(ok(doc! {"$pull": {"a": 1}}, doc! {}), doc! {});
    assert_eq!(code(apply(doc! {"$pull": {"a": 1}}, doc! {"a": 1})), 2);
    assert_eq!(
        ok(
            doc! {"$pullAll": {"a": [0, 5]}},
            doc! {"a": [0, 2, 5, 5, 1]}
        ),
        doc! {"a": [2, 1]}
    );
    assert_eq!(
        ok(doc! {"$pop": {"a": 1}}, doc! {"a": [1, 2, 3]}),
        doc! {"a": [1, 2]}
    );
    assert_eq!(
        ok(doc! {"$pop": {"a": -1}}, doc! {"a": [1, 2, 3]}),
        doc! {"a": [2, 3]}
    );
    assert_eq!(code(apply(doc! {"$pop": {"a": 2}}, doc! {"a": [1]})), 9);
}

#[test]
fn parse_errors() {
    let err = Update::parse_document(&doc! {"$set": 5}).expect_err("not a doc");
    assert_eq!((err.code, err.code_name), (9, "FailedToParse"));
    let err = Update::parse_document(&doc! {"$foo": {"a": 1}}).expect_err("unknown");
    assert_eq!(err.code, 9);
    assert!(err.message.starts_with("Unknown modifier: $foo"));
    assert_eq!(
        code(Update::parse_document(&doc! {"$set": {"a": 1}, "b": 1})),
        9
    );
    let err =
        Update::parse_document(&doc! {"$set": {"a.b": 1}, "$inc": {"a": 1}}).expect_err("conflict");
    assert_eq!(
        (err.code, err.code_name),
        (40, "ConflictingUpdateOperators")
    );
    assert_eq!(
        code(Update::parse_document(
            &doc! {"$set": {"a": 1}, "$unset": {"a": 1}}
        )),
        40
    );
    assert_eq!(
        code(Update::parse_document(
            &doc! {"$set": {"a": 1}, "$rename": {"b": "a"}}
        )),
        40
    );
    assert!(Update::parse_document(&doc! {"$set": {"ab": 1}, "$inc": {"a": 1}}).is_ok());
    assert_eq!(
        code(Update::parse_document(&doc! {"a": 1, "$set": {"b": 1}})),
        52
    );
    assert_eq!(
        code(Update::parse_document(&doc! {"$set": {"a..b": 1}})),
        56
    );
    assert_eq!(code(Update::parse(&bson!([{"$set": {"a": 1}}]))), 238);
    assert_eq!(code(Update::parse(&Bson::Int32(1))), 9);
    // Since 5.0 an empty operand is accepted and does nothing.
    assert_eq!(ok(doc! {"$set": {}}, doc! {"a": 1}), doc! {"a": 1});
}

#[test]
fn immutable_id() {
    let err = apply(doc! {"$set": {"_id": 2}}, doc! {"_id": 1}).expect_err("immutable");
    assert_eq!((err.code, err.code_name), (66, "ImmutableField"));
    assert_eq!(
        ok(doc! {"$set": {"_id": 1, "a": 1}}, doc! {"_id": 1}),
        doc! {"_id": 1, "a": 1}
    );
    assert_eq!(
        code(apply(doc! {"$unset": {"_id": 1}}, doc! {"_id": 1})),
        66
    );
    assert_eq!(
        code(apply(doc! {"$set": {"_id.x": 1}}, doc! {"_id": {"x": 0}})),
        66
    );
    assert_eq!(code(apply(doc! {"_id": 2, "a": 1}, doc! {"_id": 1})), 66);
}

#[test]
fn replacement() {
    let out = ok(doc! {"b": 1, "a": 2}, doc! {"_id": 7, "x": 1});
    assert_eq!(out, doc! {"_id": 7, "b": 1, "a": 2});
    assert_eq!(out.keys().collect::<Vec<_>>(), ["_id", "b", "a"]);
    let out = ok(doc! {"b": 1, "_id": 7}, doc! {"_id": 7});
    assert_eq!(out.keys().collect::<Vec<_>>(), ["_id", "b"]);
    assert_eq!(ok(doc! {}, doc! {"_id": 1, "a": 1}), doc! {"_id": 1});
}

#[test]
fn modified_flag() {
    let u = Update::parse_document(&doc! {"$set": {"a": 1}}).expect("valid");
    let mut d = doc! {"a": 1};
    assert!(!u.apply(&mut d, &ctx()).expect("applies"));
    let mut d = doc! {"a": 2};
    assert!(u.apply(&mut d, &ctx()).expect("applies"));
}

#[test]
fn upsert_flow() {
    let filter = Filter::parse(&doc! {"_id": 3, "a.b": 1, "n": {"$gt": 1}}).expect("valid");
    let mut seed = filter.upsert_seed().expect("seed");
    let u = Update::parse_document(&doc! {"$set": {"c": 1}, "$setOnInsert": {"created": true}})
        .expect("valid");
    let upsert = UpdateContext {
        is_upsert_insert: true,
        ..ctx()
    };
    u.apply(&mut seed, &upsert).expect("applies");
    assert_eq!(
        seed,
        doc! {"_id": 3, "a": {"b": 1}, "c": 1, "created": true}
    );
    // Not an insert: $setOnInsert is ignored.
    let mut existing = doc! {"_id": 3};
    u.apply(&mut existing, &ctx()).expect("applies");
    assert_eq!(existing, doc! {"_id": 3, "c": 1});
    // An upsert may set _id, and it ends up first.
    let u = Update::parse_document(&doc! {"$set": {"a": 1, "_id": 9}}).expect("valid");
    let mut seed = doc! {"z": 1};
    u.apply(&mut seed, &upsert).expect("applies");
    assert_eq!(seed.keys().next().map(String::as_str), Some("_id"));
}

#[test]
fn upsert_with_replacement_keeps_query_id() {
    let filter = Filter::parse(&doc! {"_id": 4, "a": 1}).expect("valid");
    let mut seed = filter.upsert_seed().expect("seed");
    let u = Update::parse_document(&doc! {"b": 2}).expect("valid");
    let upsert = UpdateContext {
        is_upsert_insert: true,
        ..ctx()
    };
    u.apply(&mut seed, &upsert).expect("applies");
    assert_eq!(seed, doc! {"_id": 4, "b": 2});
    assert!(u.is_replacement());
}

#[test]
fn array_element_paths() {
    assert_eq!(
        ok(doc! {"$inc": {"a.1": 5}}, doc! {"a": [1, 2]}),
        doc! {"a": [1, 7]}
    );
    assert_eq!(
        ok(doc! {"$push": {"a.0.t": 1}}, doc! {"a": [{}]}),
        doc! {"a": [{"t": [1]}]}
    );
    assert_eq!(code(apply(doc! {"$inc": {"a.b": 1}}, doc! {"a": "s"})), 28);
    assert_eq!(
        code(apply(doc! {"$set": {"a.9999999": 1}}, doc! {"a": []})),
        2
    );
}
