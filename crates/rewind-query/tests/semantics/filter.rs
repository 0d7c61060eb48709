use bson::{Bson, doc};
use rewind_query::filter::Filter;

use crate::{code, re};

fn matches(filter: bson::Document, doc: bson::Document) -> bool {
    Filter::parse(&filter).expect("valid filter").matches(&doc)
}

#[test]
fn implicit_equality_and_arrays() {
    assert!(matches(doc! {"a": 1}, doc! {"a": 1.0}));
    assert!(matches(doc! {"a": 1}, doc! {"a": 1_i64}));
    assert!(!matches(doc! {"a": 1}, doc! {"a": "1"}));
    assert!(matches(
        doc! {"tags": "red"},
        doc! {"tags": ["blank", "red"]}
    ));
    assert!(matches(
        doc! {"tags": ["red", "blank"]},
        doc! {"tags": ["red", "blank"]}
    ));
    assert!(!matches(
        doc! {"tags": ["blank", "red"]},
        doc! {"tags": ["red", "blank"]}
    ));
    // One level of array nesting only.
    assert!(matches(doc! {"a": [1]}, doc! {"a": [[1], 2]}));
    assert!(!matches(doc! {"a": 1}, doc! {"a": [[1]]}));
    assert!(matches(doc! {"a": {"b": 1}}, doc! {"a": {"b": 1}}));
    assert!(!matches(doc! {"a": {"b": 1}}, doc! {"a": {"b": 1, "c": 2}}));
    assert!(matches(doc! {}, doc! {"x": 1}));
}

#[test]
fn dotted_paths() {
    let d = doc! {"a": [{"b": 1}, {"b": 2, "c": [3, 4]}], "x": {"y": {"z": 5}}};
    assert!(matches(doc! {"a.b": 2}, d.clone()));
    assert!(matches(doc! {"a.c": 4}, d.clone()));
    assert!(matches(doc! {"x.y.z": 5}, d.clone()));
    assert!(matches(doc! {"a.1.b": 2}, d.clone()));
    assert!(!matches(doc! {"a.0.b": 2}, d.clone()));
    assert!(matches(doc! {"a.1.c.0": 3}, d.clone()));
    assert!(!matches(doc! {"x.y.q": 5}, d));
}

#[test]
fn null_and_exists() {
    assert!(matches(doc! {"a": null}, doc! {}));
    assert!(matches(doc! {"a": null}, doc! {"a": null}));
    assert!(matches(doc! {"a": null}, doc! {"a": [1, null]}));
    assert!(!matches(doc! {"a": null}, doc! {"a": 0}));
    assert!(matches(doc! {"a.b": null}, doc! {"a": 1}));
    assert!(matches(doc! {"a": {"$exists": true}}, doc! {"a": null}));
    assert!(!matches(doc! {"a": {"$exists": true}}, doc! {"b": 1}));
    assert!(matches(doc! {"a": {"$exists": false}}, doc! {"b": 1}));
    assert!(matches(doc! {"a": {"$exists": 0}}, doc! {"b": 1}));
    assert!(matches(
        doc! {"a.b": {"$exists": true}},
        doc! {"a": [{"c": 1}, {"b": 2}]}
    ));
    assert!(!matches(doc! {"a": {"$ne": null}}, doc! {}));
    assert!(matches(doc! {"a": {"$ne": null}}, doc! {"a": 0}));
    assert!(matches(doc! {"a": {"$gte": null}}, doc! {}));
    assert!(!matches(doc! {"a": {"$gt": null}}, doc! {"a": null}));
}

/// `{"a.b": null}` as MongoDB 8.0 defines it (its null_query_semantics test): a document
/// matches when `a` is missing or no document or array, when the subdocument `a` has no or a
/// null `b`, or when an array `a` holds a document with no or a null `b`. An array without
/// documents contributes nothing, so it matches `$ne: null` instead.
#[test]
fn dotted_null_through_arrays() {
    let matching = [
        doc! {},
        doc! {"a": null},
        doc! {"a": 4},
        doc! {"a": {}},
        doc! {"a": {"b": null}},
        doc! {"a": [{"b": null}, {"b": null}, {}]},
        doc! {"a": [{"b": null}, {"b": 3}]},
        doc! {"a": [{"b": 3}, {}]},
    ];
    let not_matching = [
        doc! {"a": []},
        doc! {"a": [[]]},
        doc! {"a": [null, null]},
        doc! {"a": [1, "string", 4]},
        doc! {"a": [1, "string", null, 4]},
        doc! {"a": [{"b": 1}, {"b": 3}]},
        doc! {"a": {"b": "hi"}},
    ];
    for d in matching {
        assert!(matches(doc! {"a.b": null}, d.clone()), "{d}");
        assert!(matches(doc! {"a.b": {"$in": [null, 75]}}, d.clone()), "{d}");
        assert!(!matches(doc! {"a.b": {"$ne": null}}, d.clone()), "{d}");
    }
    for d in not_matching {
        assert!(!matches(doc! {"a.b": null}, d.clone()), "{d}");
        assert!(!matches(doc! {"a.b": {"$gte": null}}, d.clone()), "{d}");
        assert!(matches(doc! {"a.b": {"$ne": null}}, d.clone()), "{d}");
        assert!(matches(doc! {"a.b": {"$nin": [null]}}, d.clone()), "{d}");
    }
}

#[test]
fn comparisons_are_type_bracketed() {
    assert!(matches(doc! {"a": {"$gt": 5}}, doc! {"a": 6.5}));
    assert!(!matches(doc! {"a": {"$gt": 5}}, doc! {"a": "abc"}));
    assert!(!matches(doc! {"a": {"$lt": 5}}, doc! {"a": null}));
    assert!(matches(doc! {"a": {"$gt": 5}}, doc! {"a": [1, 10]}));
    // Range operators apply per element: no single element is in (1, 3).
    assert!(matches(
        doc! {"a": {"$gt": 1, "$lt": 3}},
        doc! {"a": [0, 5]}
    ));
    assert!(!matches(
        doc! {"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}},
        doc! {"a": [0, 5]}
    ));
    assert!(matches(doc! {"a": {"$gte": "b"}}, doc! {"a": "c"}));
    assert!(!matches(doc! {"a": {"$gte": "b"}}, doc! {"a": 1}));
    assert!(matches(doc! {"a": {"$lte": 2}}, doc! {"a": 2_i64}));
    assert!(matches(doc! {"a": {"$gt": Bson::MinKey}}, doc! {"a": "x"}));
    assert!(matches(
        doc! {"a": {"$lt": Bson::MaxKey}},
        doc! {"a": {"b": 1}}
    ));
    // Every document is above MinKey and below MaxKey, with or without the field.
    assert!(matches(doc! {"a": {"$gt": Bson::MinKey}}, doc! {}));
    assert!(matches(doc! {"a": {"$gte": Bson::MinKey}}, doc! {}));
    assert!(!matches(doc! {"a": {"$lte": Bson::MinKey}}, doc! {}));
    assert!(matches(doc! {"a": {"$lt": Bson::MaxKey}}, doc! {}));
    assert!(matches(doc! {"a": {"$lte": Bson::MaxKey}}, doc! {}));
    assert!(!matches(doc! {"a": {"$gte": Bson::MaxKey}}, doc! {}));
    assert!(matches(doc! {"a": {"$eq": [1, 2]}}, doc! {"a": [1, 2]}));
    assert!(matches(doc! {"a": {"$gt": [1]}}, doc! {"a": [[2]]}));
    assert!(matches(doc! {"a": {"$ne": 1}}, doc! {"a": [2, 3]}));
    assert!(!matches(doc! {"a": {"$ne": 1}}, doc! {"a": [1, 2]}));
    assert!(matches(doc! {"a": {"$ne": 1}}, doc! {}));
}

#[test]
fn in_and_nin() {
    assert!(matches(doc! {"a": {"$in": [1, 2]}}, doc! {"a": 2.0}));
    assert!(matches(
        doc! {"a": {"$in": [5, [1, 2]]}},
        doc! {"a": [1, 2]}
    ));
    assert!(matches(doc! {"a": {"$in": [5, 1]}}, doc! {"a": [1, 2]}));
    assert!(matches(doc! {"a": {"$in": [null]}}, doc! {}));
    assert!(matches(
        doc! {"a": {"$in": [re("^ab", "")]}},
        doc! {"a": "abc"}
    ));
    assert!(!matches(doc! {"a": {"$in": []}}, doc! {"a": 1}));
    assert!(matches(doc! {"a": {"$nin": [1, 2]}}, doc! {"a": 3}));
    assert!(matches(doc! {"a": {"$nin": [1, 2]}}, doc! {}));
    assert!(!matches(doc! {"a": {"$nin": [1, 2]}}, doc! {"a": [3, 2]}));
    assert_eq!(code(Filter::parse(&doc! {"a": {"$in": 1}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$nin": {"x": 1}}})), 2);
}

#[test]
fn type_operator() {
    assert!(matches(doc! {"a": {"$type": "string"}}, doc! {"a": "x"}));
    assert!(matches(doc! {"a": {"$type": 2}}, doc! {"a": "x"}));
    assert!(matches(doc! {"a": {"$type": 2.0}}, doc! {"a": "x"}));
    assert!(matches(doc! {"a": {"$type": "number"}}, doc! {"a": 1_i64}));
    assert!(matches(doc! {"a": {"$type": "int"}}, doc! {"a": 1}));
    assert!(!matches(doc! {"a": {"$type": "int"}}, doc! {"a": 1.0}));
    assert!(matches(doc! {"a": {"$type": "array"}}, doc! {"a": []}));
    assert!(matches(
        doc! {"a": {"$type": "string"}},
        doc! {"a": [1, "x"]}
    ));
    assert!(matches(
        doc! {"a": {"$type": ["double", "null"]}},
        doc! {"a": null}
    ));
    assert!(matches(doc! {"a": {"$type": -1}}, doc! {"a": Bson::MinKey}));
    assert!(!matches(doc! {"a": {"$type": "null"}}, doc! {}));
    assert_eq!(code(Filter::parse(&doc! {"a": {"$type": "foo"}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$type": 99}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$type": true}})), 2);
}

#[test]
fn logical_operators() {
    let d = doc! {"a": 1, "b": 2};
    assert!(matches(doc! {"$and": [{"a": 1}, {"b": 2}]}, d.clone()));
    assert!(matches(doc! {"$or": [{"a": 5}, {"b": 2}]}, d.clone()));
    assert!(!matches(doc! {"$nor": [{"a": 5}, {"b": 2}]}, d.clone()));
    assert!(matches(doc! {"$nor": [{"a": 5}, {"c": 2}]}, d.clone()));
    assert!(matches(doc! {"a": {"$not": {"$gt": 5}}}, d.clone()));
    assert!(matches(doc! {"z": {"$not": {"$gt": 5}}}, d.clone()));
    assert!(!matches(
        doc! {"a": {"$not": {"$lt": 5, "$gt": 0}}},
        d.clone()
    ));
    assert!(matches(
        doc! {"s": {"$not": re("^a", "")}},
        doc! {"s": "bc"}
    ));
    assert!(matches(doc! {"$comment": "hi", "a": 1}, d));
    assert_eq!(code(Filter::parse(&doc! {"$or": []})), 2);
    assert_eq!(code(Filter::parse(&doc! {"$and": {"a": 1}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"$or": [1]})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$not": 5}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$not": {}}})), 2);
}

#[test]
fn regex() {
    assert!(matches(doc! {"s": re("^ab", "i")}, doc! {"s": "ABC"}));
    assert!(matches(
        doc! {"s": {"$regex": "^ab", "$options": "i"}},
        doc! {"s": "ABC"}
    ));
    assert!(matches(
        doc! {"s": {"$regex": re("b$", "")}},
        doc! {"s": ["x", "ab"]}
    ));
    assert!(matches(
        doc! {"s": {"$regex": "^b", "$options": "m"}},
        doc! {"s": "a\nb"}
    ));
    assert!(!matches(doc! {"s": {"$regex": "^b"}}, doc! {"s": "a\nb"}));
    assert!(matches(
        doc! {"s": {"$regex": "a.c", "$options": "s"}},
        doc! {"s": "a\nc"}
    ));
    assert!(matches(
        doc! {"s": {"$regex": "a c # spaced", "$options": "x"}},
        doc! {"s": "ac"}
    ));
    assert!(!matches(doc! {"s": re("1", "")}, doc! {"s": 1}));
    assert!(matches(
        doc! {"s": {"$eq": re("x", "")}},
        doc! {"s": re("x", "")}
    ));
    assert!(!matches(doc! {"s": {"$eq": re("x", "")}}, doc! {"s": "x"}));
    assert_eq!(code(Filter::parse(&doc! {"s": {"$options": "i"}})), 2);
    assert_eq!(
        code(Filter::parse(&doc! {"s": {"$regex": "a", "$options": "q"}})),
        51108
    );
    assert_eq!(code(Filter::parse(&doc! {"s": {"$regex": "("}})), 51091);
    assert_eq!(code(Filter::parse(&doc! {"s": {"$regex": 5}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"s": {"$ne": re("x", "")}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"s": {"$gt": re("x", "")}})), 2);
}

#[test]
fn elem_match_size_all_mod() {
    let d = doc! {"results": [{"product": "abc", "score": 10}, {"product": "xyz", "score": 5}]};
    assert!(matches(
        doc! {"results": {"$elemMatch": {"product": "xyz", "score": {"$gte": 5}}}},
        d.clone()
    ));
    assert!(!matches(
        doc! {"results": {"$elemMatch": {"product": "xyz", "score": {"$gte": 8}}}},
        d.clone()
    ));
    assert!(matches(
        doc! {"results": {"$elemMatch": {"$or": [{"score": 10}, {"x": 1}]}}},
        d.clone()
    ));
    assert!(matches(
        doc! {"r": {"$elemMatch": {"$gte": 80, "$lt": 85}}},
        doc! {"r": [82, 90]}
    ));
    assert!(!matches(
        doc! {"r": {"$elemMatch": {"$gte": 80, "$lt": 85}}},
        doc! {"r": 82}
    ));
    assert!(matches(doc! {"a": {"$size": 2}}, doc! {"a": [1, [2, 3]]}));
    assert!(!matches(doc! {"a": {"$size": 1}}, doc! {"a": 1}));
    assert!(matches(doc! {"a": {"$size": 0}}, doc! {"a": []}));
    assert!(!matches(doc! {"a": {"$size": -1}}, doc! {"a": []}));
    assert_eq!(code(Filter::parse(&doc! {"a": {"$size": 1.5}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$size": "1"}})), 2);
    assert!(matches(
        doc! {"t": {"$all": ["a", "b"]}},
        doc! {"t": ["b", "c", "a"]}
    ));
    assert!(!matches(
        doc! {"t": {"$all": ["a", "d"]}},
        doc! {"t": ["b", "c", "a"]}
    ));
    assert!(matches(
        doc! {"t": {"$all": [["a", "b"]]}},
        doc! {"t": ["a", "b"]}
    ));
    assert!(matches(doc! {"t": {"$all": ["a"]}}, doc! {"t": "a"}));
    assert!(!matches(doc! {"t": {"$all": []}}, doc! {"t": []}));
    assert!(matches(
        doc! {"results": {"$all": [{"$elemMatch": {"score": 10}}, {"$elemMatch": {"score": 5}}]}},
        d
    ));
    assert_eq!(code(Filter::parse(&doc! {"a": {"$all": 1}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$elemMatch": 1}})), 2);
    // The query form sees an embedded array as the document of its indexes, and `{}` matches
    // any embedded document or array, never a scalar.
    assert!(matches(
        doc! {"a": {"$elemMatch": {"1": 5}}},
        doc! {"a": [3, [4, 5]]}
    ));
    assert!(!matches(
        doc! {"a": {"$elemMatch": {"0": 5}}},
        doc! {"a": [3, [4, 5]]}
    ));
    assert!(matches(doc! {"a": {"$elemMatch": {}}}, doc! {"a": [1, []]}));
    assert!(!matches(
        doc! {"a": {"$elemMatch": {}}},
        doc! {"a": [1, "x"]}
    ));
    // The value form tests each element itself: it does not look into nested arrays, so
    // two conditions cannot be met by two different inner elements.
    let range = doc! {"a": {"$elemMatch": {"$gt": 4, "$lt": 6}}};
    assert!(matches(range.clone(), doc! {"a": [5]}));
    assert!(!matches(range.clone(), doc! {"a": [[5]]}));
    assert!(!matches(range, doc! {"a": [[3, 7]]}));
    assert!(!matches(
        doc! {"a": {"$elemMatch": {"$type": "number"}}},
        doc! {"a": [[5]]}
    ));
    assert!(matches(
        doc! {"a": {"$elemMatch": {"$ne": 5}}},
        doc! {"a": [[5]]}
    ));
    assert!(matches(
        doc! {"a": {"$elemMatch": {"$elemMatch": {"$gt": 4, "$lt": 6}}}},
        doc! {"a": [[5]]}
    ));
    assert!(!matches(
        doc! {"a": {"$elemMatch": {"$elemMatch": {"$gt": 4, "$lt": 6}}}},
        doc! {"a": [[[5]]]}
    ));
    assert!(matches(doc! {"q": {"$mod": [4, 0]}}, doc! {"q": 12}));
    // A double no 64-bit integer holds never matches, and is refused as an operand;
    // the minimum integer modulo -1 is 0.
    assert!(!matches(doc! {"q": {"$mod": [2, 1]}}, doc! {"q": 1e20}));
    assert!(!matches(doc! {"q": {"$mod": [2, 0]}}, doc! {"q": 1e20}));
    assert_eq!(code(Filter::parse(&doc! {"q": {"$mod": [1e20, 0]}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"q": {"$mod": [3, f64::NAN]}})), 2);
    assert!(matches(doc! {"q": {"$mod": [-1, 0]}}, doc! {"q": i64::MIN}));
    assert!(!matches(doc! {"q": {"$mod": [4, 0]}}, doc! {"q": 13}));
    assert!(matches(doc! {"q": {"$mod": [4, 1]}}, doc! {"q": 5.9}));
    assert_eq!(code(Filter::parse(&doc! {"q": {"$mod": [4]}})), 2);
    assert_eq!(code(Filter::parse(&doc! {"q": {"$mod": [0, 1]}})), 2);
}

#[test]
fn expr() {
    let f = doc! {"$expr": {"$gt": ["$spent", "$budget"]}};
    assert!(matches(f.clone(), doc! {"spent": 400, "budget": 100}));
    assert!(!matches(f, doc! {"spent": 40, "budget": 100}));
    let bad = Filter::parse(&doc! {"$expr": {"$add": ["$s", 1]}}).expect("valid");
    assert_eq!(code(bad.try_matches(&doc! {"s": "x"})), 14);
    assert_eq!(code(Filter::parse(&doc! {"$expr": {"$foo": 1}})), 168);
}

#[test]
fn unknown_and_unsupported_operators() {
    let err = Filter::parse(&doc! {"a": {"$foo": 1}}).expect_err("unknown");
    assert_eq!(
        (err.code, err.code_name, err.message.as_str()),
        (2, "BadValue", "unknown operator: $foo")
    );
    assert_eq!(code(Filter::parse(&doc! {"a": {"$gt": 1, "b": 1}})), 2);
    let err = Filter::parse(&doc! {"$foo": 1}).expect_err("unknown");
    assert!(err.message.starts_with("unknown top level operator: $foo"));
    assert_eq!(code(Filter::parse(&doc! {"$where": "true"})), 238);
    assert_eq!(code(Filter::parse(&doc! {"$text": {"$search": "x"}})), 238);
    assert_eq!(code(Filter::parse(&doc! {"a": {"$near": [0, 0]}})), 238);
    // A document whose first key is not an operator is a literal.
    assert!(matches(
        doc! {"a": {"b": 1, "$c": 2}},
        doc! {"a": {"b": 1, "$c": 2}}
    ));
}

#[test]
fn id_and_equality_helpers() {
    let f = Filter::parse(&doc! {"_id": 5, "a": {"$gt": 1}}).expect("valid");
    assert_eq!(f.id_equality(), Some(&Bson::Int32(5)));
    let f = Filter::parse(&doc! {"$and": [{"_id": {"$eq": "k"}}, {"b": 1}]}).expect("valid");
    assert_eq!(f.id_equality(), Some(&Bson::String("k".into())));
    assert_eq!(f.equality_value("b"), Some(&Bson::Int32(1)));
    let f = Filter::parse(&doc! {"_id": {"$in": [7]}}).expect("valid");
    assert_eq!(f.id_equality(), Some(&Bson::Int32(7)));
    for no_pin in [
        doc! {"_id": {"$gt": 5}},
        doc! {"$or": [{"_id": 1}, {"_id": 2}]},
        doc! {"_id": re("x", "")},
    ] {
        assert_eq!(Filter::parse(&no_pin).expect("valid").id_equality(), None);
    }
    let f = Filter::parse(&doc! {}).expect("valid");
    assert!(f.is_match_all());
}

#[test]
fn upsert_seed() {
    let f = Filter::parse(
        &doc! {"_id": 1, "a.b": 2, "c": {"$gt": 3}, "$and": [{"d": {"$eq": 4}}], "e": re("x", "")},
    )
    .expect("valid");
    assert_eq!(
        f.upsert_seed().expect("seed"),
        doc! {"_id": 1, "a": {"b": 2}, "d": 4}
    );
    let f = Filter::parse(&doc! {"$or": [{"x": 1}]}).expect("valid");
    assert_eq!(f.upsert_seed().expect("seed"), doc! {"x": 1});
    let f = Filter::parse(&doc! {"a": 1, "$and": [{"a": 2}]}).expect("valid");
    assert_eq!(code(f.upsert_seed()), 54);
    let f = Filter::parse(&doc! {"a": 1, "a.b": 2}).expect("valid");
    assert_eq!(code(f.upsert_seed()), 54);
}

#[test]
fn numeric_types_and_decimal() {
    let dec = |s: &str| Bson::Decimal128(s.parse().expect("decimal"));
    assert!(matches(doc! {"a": 2}, doc! {"a": dec("2.00")}));
    assert!(matches(doc! {"a": {"$lt": dec("2.5")}}, doc! {"a": 2_i64}));
    assert!(matches(doc! {"a": f64::NAN}, doc! {"a": f64::NAN}));
    assert!(!matches(
        doc! {"a": {"$gt": f64::NAN}},
        doc! {"a": f64::NAN}
    ));
    assert!(matches(
        doc! {"a": {"$lt": 0}},
        doc! {"a": f64::NEG_INFINITY}
    ));
    assert!(!matches(doc! {"a": {"$lt": 0}}, doc! {"a": f64::NAN}));
    assert!(matches(
        doc! {"a": {"$gte": f64::NAN}},
        doc! {"a": f64::NAN}
    ));
    assert!(!matches(doc! {"a": {"$gte": f64::NAN}}, doc! {"a": 1}));
    // Decimals compare exactly (MongoDB's documented 9.99 example: the double is not the
    // decimal), integers beyond a double's precision included.
    assert!(!matches(doc! {"a": 9.99}, doc! {"a": dec("9.99")}));
    assert!(!matches(doc! {"a": dec("9.99")}, doc! {"a": 9.99}));
    assert!(matches(doc! {"a": dec("9.990")}, doc! {"a": dec("9.99")}));
    assert!(matches(
        doc! {"a": 9_007_199_254_740_993_i64},
        doc! {"a": dec("9007199254740993")}
    ));
    assert!(!matches(
        doc! {"a": 9_007_199_254_740_992_i64},
        doc! {"a": dec("9007199254740993")}
    ));
    assert!(matches(
        doc! {"a": {"$gt": 0, "$lt": 0.1}},
        doc! {"a": dec("0.1")}
    ));
    assert!(!matches(
        doc! {"a": 1},
        doc! {"a": dec("1.0000000000000000000000000000001")}
    ));
}

#[test]
fn nested_array_paths() {
    let d = doc! {"o": [{"items": [{"sku": "x", "q": 1}, {"sku": "y", "q": 5}]}, {"items": []}]};
    assert!(matches(doc! {"o.items.sku": "y"}, d.clone()));
    assert!(matches(
        doc! {"o.items": {"$elemMatch": {"sku": "y", "q": {"$gt": 2}}}},
        d.clone()
    ));
    assert!(!matches(
        doc! {"o.items": {"$elemMatch": {"sku": "x", "q": {"$gt": 2}}}},
        d.clone()
    ));
    assert!(matches(doc! {"o.items": {"$size": 0}}, d.clone()));
    assert!(matches(doc! {"o.0.items.1.q": 5}, d.clone()));
    assert!(!matches(doc! {"o.items.sku": {"$exists": false}}, d));
}

#[test]
fn positional_index() {
    let idx = |filter: bson::Document, d: bson::Document| {
        Filter::parse(&filter).expect("valid").positional_index(&d)
    };
    assert_eq!(idx(doc! {"a": 3}, doc! {"a": [1, 2, 3]}), Some(2));
    assert_eq!(
        idx(doc! {"a.b": 2}, doc! {"a": [{"b": 1}, {"b": 2}]}),
        Some(1)
    );
    assert_eq!(
        idx(doc! {"a.b": 2}, doc! {"a": [{"b": 1}, {"b": [5, 2]}]}),
        Some(1)
    );
    assert_eq!(
        idx(
            doc! {"a": {"$elemMatch": {"$gt": 1}}},
            doc! {"a": [0, 1, 5]}
        ),
        Some(2)
    );
    assert_eq!(
        idx(doc! {"x": 1, "a": {"$gte": 2}}, doc! {"x": 1, "a": [1, 2]}),
        Some(1)
    );
    assert_eq!(
        idx(doc! {"$or": [{"a": 9}, {"a": 1}]}, doc! {"a": [0, 1]}),
        Some(1)
    );
    assert_eq!(idx(doc! {"a": 1}, doc! {"a": 1}), None);
    assert_eq!(idx(doc! {"a": [1, 2]}, doc! {"a": [1, 2]}), None);
}
