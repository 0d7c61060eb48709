use bson::{Bson, Document, doc};
use rewind_query::aggregate::Pipeline;
use rewind_query::distinct::distinct;

use crate::code;

fn run(stages: Vec<Document>, docs: Vec<Document>) -> Vec<Document> {
    Pipeline::parse(&stages)
        .expect("valid pipeline")
        .run(docs)
        .expect("runs")
}

fn sales() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "item": "abc", "price": 10, "quantity": 2},
        doc! {"_id": 2, "item": "jkl", "price": 20, "quantity": 1},
        doc! {"_id": 3, "item": "xyz", "price": 5, "quantity": 10},
        doc! {"_id": 4, "item": "xyz", "price": 5, "quantity": 20},
        doc! {"_id": 5, "item": "abc", "price": 10, "quantity": 10},
    ]
}

#[test]
fn group_accumulators() {
    let out = run(
        vec![
            doc! {"$group": {
                "_id": "$item",
                "total": {"$sum": {"$multiply": ["$price", "$quantity"]}},
                "avgQ": {"$avg": "$quantity"},
                "minQ": {"$min": "$quantity"},
                "maxQ": {"$max": "$quantity"},
                "first": {"$first": "$_id"},
                "last": {"$last": "$_id"},
                "ids": {"$push": "$_id"},
                "prices": {"$addToSet": "$price"},
                "n": {"$count": {}},
            }},
            doc! {"$sort": {"_id": 1}},
        ],
        sales(),
    );
    assert_eq!(
        out[0],
        doc! {"_id": "abc", "total": 120, "avgQ": 6.0, "minQ": 2, "maxQ": 10, "first": 1, "last": 5, "ids": [1, 5], "prices": [10], "n": 2}
    );
    assert_eq!(out.len(), 3);
    let out = run(
        vec![doc! {"$group": {"_id": null, "count": {"$sum": 1}, "none": {"$avg": "$nope"}}}],
        sales(),
    );
    assert_eq!(out, vec![doc! {"_id": null, "count": 5, "none": null}]);
    let out = run(
        vec![
            doc! {"$group": {"_id": {"i": "$item", "p": "$price"}, "n": {"$sum": 1}}},
            doc! {"$sort": {"_id.i": -1}},
        ],
        sales(),
    );
    assert_eq!(out[0], doc! {"_id": {"i": "xyz", "p": 5}, "n": 2});
}

#[test]
fn group_numeric_typing() {
    let docs = vec![doc! {"v": i32::MAX}, doc! {"v": 1}, doc! {"v": "x"}];
    let out = run(
        vec![doc! {"$group": {"_id": null, "s": {"$sum": "$v"}}}],
        docs,
    );
    assert_eq!(out[0].get("s"), Some(&Bson::Int64(i64::from(i32::MAX) + 1)));
    let docs = vec![doc! {"v": 1}, doc! {"v": 2}];
    let out = run(
        vec![doc! {"$group": {"_id": null, "s": {"$sum": "$v"}}}],
        docs.clone(),
    );
    assert_eq!(out[0].get("s"), Some(&Bson::Int32(3)));
    let docs = vec![doc! {"v": 1}, doc! {"v": 0.5}];
    let out = run(
        vec![doc! {"$group": {"_id": null, "s": {"$sum": "$v"}}}],
        docs,
    );
    assert_eq!(out[0].get("s"), Some(&Bson::Double(1.5)));
    let docs = vec![doc! {"v": i64::MAX}, doc! {"v": 1}];
    let out = run(
        vec![doc! {"$group": {"_id": null, "s": {"$sum": "$v"}}}],
        docs,
    );
    assert!(matches!(out[0].get("s"), Some(Bson::Double(_))));
    // Group keys compare numerically: 1 and 1.0 are one group.
    let docs = vec![doc! {"k": 1}, doc! {"k": 1.0}, doc! {"k": null}, doc! {}];
    let out = run(vec![doc! {"$group": {"_id": "$k", "n": {"$sum": 1}}}], docs);
    assert_eq!(
        out,
        vec![doc! {"_id": 1, "n": 2}, doc! {"_id": null, "n": 2}]
    );
}

#[test]
fn match_project_sort_skip_limit_count() {
    let out = run(
        vec![
            doc! {"$match": {"price": {"$gte": 10}}},
            doc! {"$sort": {"quantity": -1}},
            doc! {"$skip": 1},
            doc! {"$limit": 1},
            doc! {"$project": {"item": 1, "cost": {"$multiply": ["$price", "$quantity"]}}},
        ],
        sales(),
    );
    assert_eq!(out, vec![doc! {"_id": 1, "item": "abc", "cost": 20}]);
    assert_eq!(
        run(vec![doc! {"$count": "n"}], sales()),
        vec![doc! {"n": 5}]
    );
    assert_eq!(
        run(
            vec![doc! {"$match": {"x": 1}}, doc! {"$count": "n"}],
            sales()
        ),
        Vec::<Document>::new()
    );
    let out = run(
        vec![
            doc! {"$set": {"t": {"$add": ["$price", 1]}, "s.x": 1}},
            doc! {"$unset": ["item", "quantity"]},
            doc! {"$limit": 1},
        ],
        sales(),
    );
    assert_eq!(
        out,
        vec![doc! {"_id": 1, "price": 10, "t": 11, "s": {"x": 1}}]
    );
    let out = run(
        vec![doc! {"$addFields": {"b": {"c": 1}}}],
        vec![doc! {"b": {"d": 2}}],
    );
    assert_eq!(out, vec![doc! {"b": {"d": 2, "c": 1}}]);
    // A dotted path through an array sets the field in every element: documents get it,
    // nested arrays are entered, other values become documents (MongoDB's dotted_paths.js).
    let out = run(
        vec![doc! {"$addFields": {"arr.new.b": "v"}}],
        vec![doc! {"arr": [1, {"sub": [2, {}]}, [1]], "other": 1}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "arr": [{"new": {"b": "v"}}, {"sub": [2, {}], "new": {"b": "v"}}, [{"new": {"b": "v"}}]],
            "other": 1
        }]
    );
    // A missing value removes the field from each element.
    let out = run(
        vec![doc! {"$set": {"arr.x": "$nope"}}],
        vec![doc! {"arr": [{"x": 1, "y": 2}, {"x": 3}]}],
    );
    assert_eq!(out, vec![doc! {"arr": [{"y": 2}, {}]}]);
    let out = run(
        vec![doc! {"$replaceRoot": {"newRoot": "$b"}}],
        vec![doc! {"b": {"d": 2}}],
    );
    assert_eq!(out, vec![doc! {"d": 2}]);
}

#[test]
fn unwind() {
    let docs = vec![
        doc! {"_id": 1, "sizes": ["S", "M"]},
        doc! {"_id": 2, "sizes": []},
        doc! {"_id": 3, "sizes": "M"},
        doc! {"_id": 4},
        doc! {"_id": 5, "sizes": null},
    ];
    let out = run(vec![doc! {"$unwind": "$sizes"}], docs.clone());
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "sizes": "S"},
            doc! {"_id": 1, "sizes": "M"},
            doc! {"_id": 3, "sizes": "M"}
        ]
    );
    let out = run(
        vec![
            doc! {"$unwind": {"path": "$sizes", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": true}},
        ],
        docs,
    );
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "sizes": "S", "i": 0_i64},
            doc! {"_id": 1, "sizes": "M", "i": 1_i64},
            doc! {"_id": 2, "i": null},
            doc! {"_id": 3, "sizes": "M", "i": null},
            doc! {"_id": 4, "i": null},
            doc! {"_id": 5, "sizes": null, "i": null},
        ]
    );
    let out = run(
        vec![doc! {"$unwind": "$a.b"}],
        vec![doc! {"a": {"b": [1, 2]}}],
    );
    assert_eq!(out, vec![doc! {"a": {"b": 1}}, doc! {"a": {"b": 2}}]);
    // A dotted includeArrayIndex nests, as the unwound path does.
    let out = run(
        vec![doc! {"$unwind": {"path": "$x.a", "includeArrayIndex": "x.i"}}],
        vec![doc! {"x": {"a": [{"b": 1}]}}],
    );
    assert_eq!(out, vec![doc! {"x": {"a": {"b": 1}, "i": 0_i64}}]);
}

#[test]
fn expressions() {
    let d = vec![
        doc! {"a": 7, "b": 2, "s": "Hi", "arr": [1, 2, 3], "dt": bson::DateTime::from_millis(1000)},
    ];
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "sub": {"$subtract": ["$a", "$b"]},
            "div": {"$divide": ["$a", "$b"]},
            "cmp": {"$cmp": ["$a", "$b"]},
            "cond": {"$cond": {"if": {"$gt": ["$a", 5]}, "then": "big", "else": "small"}},
            "cond2": {"$cond": [false, 1, 2]},
            "ifn": {"$ifNull": ["$missing", "dflt"]},
            "cat": {"$concat": ["$s", "!"]},
            "low": {"$toLower": "$s"},
            "size": {"$size": "$arr"},
            "at": {"$arrayElemAt": ["$arr", -1]},
            "in": {"$in": [2, "$arr"]},
            "and": {"$and": [1, "$a"]},
            "or": {"$or": [0, null]},
            "not": {"$not": [false]},
            "type": {"$type": "$s"},
            "later": {"$add": ["$dt", 500]},
            "obj": {"x": "$a", "y": ["$b", 1]},
        }}],
        d,
    );
    assert_eq!(
        out,
        vec![doc! {
            "sub": 5, "div": 3.5, "cmp": 1, "cond": "big", "cond2": 2, "ifn": "dflt", "cat": "Hi!",
            "low": "hi", "size": 3, "at": 3, "in": true, "and": true, "or": false, "not": true,
            "type": "string", "later": bson::DateTime::from_millis(1500), "obj": {"x": 7, "y": [2, 1]},
        }]
    );
    let arr_path = run(
        vec![doc! {"$project": {"_id": 0, "v": "$a.b"}}],
        vec![doc! {"a": [{"b": 1}, {"c": 2}, {"b": 3}]}],
    );
    assert_eq!(arr_path, vec![doc! {"v": [1, 3]}]);
    // A missing field is no null to comparisons: below it (and equal to another missing).
    let missing = run(
        vec![doc! {"$project": {
            "_id": 0,
            "eq": {"$eq": ["$nope", null]},
            "ne": {"$ne": ["$nope", null]},
            "lt": {"$lt": ["$nope", null]},
            "cmp": {"$cmp": [null, "$nope"]},
            "both": {"$eq": ["$nope", "$other"]},
            "min": {"$gt": ["$nope", {"$literal": Bson::MinKey}]},
        }}],
        vec![doc! {"a": 1}],
    );
    assert_eq!(
        missing,
        vec![doc! {"eq": false, "ne": true, "lt": true, "cmp": 1, "both": true, "min": true}]
    );
    let p = Pipeline::parse(&[doc! {"$project": {"v": {"$divide": [1, 0]}}}]).expect("valid");
    assert_eq!(code(p.run(vec![doc! {}])), 16608);
    assert_eq!(
        code(Pipeline::parse(&[
            doc! {"$project": {"v": {"$ifNull": ["$a"]}}}
        ])),
        1257300
    );
    // $toUpper/$toLower coerce as the server does: dates in ISO form, doubles like `%g`,
    // and no string form for booleans, arrays, documents or ObjectIds.
    let upper = run(
        vec![
            doc! {"$project": {"_id": 0, "d": {"$toUpper": "$dt"}, "f": {"$toLower": "$f"}, "m": {"$toUpper": "$nope"}}},
        ],
        vec![doc! {"dt": bson::DateTime::from_millis(1_577_934_245_678), "f": 1e20}],
    );
    assert_eq!(
        upper,
        vec![doc! {"d": "2020-01-02T03:04:05.678Z", "f": "1e+20", "m": ""}]
    );
    let p = Pipeline::parse(&[doc! {"$project": {"v": {"$toUpper": "$b"}}}]).expect("valid");
    assert_eq!(code(p.run(vec![doc! {"b": true}])), 16007);
    // find's projection operators do not exist in $project: there $slice and $elemMatch
    // are expressions, and a positional path is refused.
    for spec in [
        doc! {"a": {"$slice": 2}},
        doc! {"a": {"$elemMatch": {"$gt": 1}}},
        doc! {"a.$": 1},
    ] {
        assert!(
            Pipeline::parse(&[doc! {"$project": spec.clone()}]).is_err(),
            "{spec}"
        );
    }
}

#[test]
fn now_is_one_date_for_the_whole_command() {
    let start = bson::DateTime::from_millis(1_700_000_000_000);
    let stages = vec![doc! {"$project": {"_id": 0, "t": "$$NOW", "u": "$$NOW"}}];
    let out = rewind_query::with_now(start, || {
        run(stages.clone(), vec![doc! {"_id": 1}, doc! {"_id": 2}])
    });
    assert_eq!(out, vec![doc! {"t": start, "u": start}; 2]);
    // Outside a command's scope it reads the clock.
    let Some(Bson::DateTime(t)) = run(stages, vec![doc! {"_id": 1}])[0].get("t").cloned() else {
        panic!("no date");
    };
    assert!((bson::DateTime::now().timestamp_millis() - t.timestamp_millis()).abs() < 60_000);
}

#[test]
fn date_parts_and_date_to_string_in_utc() {
    // 2021-01-03T13:04:05.678Z, a Sunday in ISO week 53 of 2020.
    let at = bson::DateTime::from_millis(1_609_679_045_678);
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "y": {"$year": "$t"}, "m": {"$month": ["$t"]}, "d": {"$dayOfMonth": {"date": "$t", "timezone": "UTC"}},
            "h": {"$hour": "$t"}, "mi": {"$minute": "$t"}, "s": {"$second": "$t"}, "ms": {"$millisecond": "$t"},
            "doy": {"$dayOfYear": "$t"}, "dow": {"$dayOfWeek": "$t"}, "w": {"$week": "$t"},
            "iw": {"$isoWeek": "$t"}, "iy": {"$isoWeekYear": "$t"}, "idow": {"$isoDayOfWeek": "$t"},
            "day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$t"}},
            "iso": {"$dateToString": {"date": "$t"}},
            "none": {"$year": "$missing"},
            "fallback": {"$dateToString": {"date": "$missing", "onNull": "n/a"}},
        }}],
        vec![doc! {"t": at}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "y": 2021, "m": 1, "d": 3, "h": 13, "mi": 4, "s": 5, "ms": 678,
            "doy": 3, "dow": 1, "w": 1, "iw": 53, "iy": 2020, "idow": 7,
            "day": "2021-01-03", "iso": "2021-01-03T13:04:05.678Z",
            "none": null, "fallback": "n/a",
        }]
    );
    // A time zone rewind cannot apply is refused rather than ignored; a string is no date.
    let project = |expr: Document| Pipeline::parse(&[doc! {"$project": {"x": expr}}]);
    let err = |expr: Document| {
        project(expr)
            .and_then(|p| p.run(vec![doc! {"t": at, "s": "x"}]))
            .map_err(|e| e.code)
    };
    assert_eq!(
        err(doc! {"$hour": {"date": "$t", "timezone": "Europe/Paris"}}),
        Err(238)
    );
    assert_eq!(err(doc! {"$year": "$s"}), Err(16006));
    assert_eq!(
        err(doc! {"$dateToString": {"date": "$t", "format": "%Q"}}),
        Err(18536)
    );
    assert_eq!(err(doc! {"$year": {"date": "$t", "tz": "UTC"}}), Err(40535));
    // A fixed offset applies; the date is read before the zone, as in mongod.
    let local = run(
        vec![doc! {"$project": {
            "_id": 0,
            "h": {"$hour": {"date": "$t", "timezone": "+05:30"}},
            "s": {"$dateToString": {"date": "$t", "format": "%H:%M%z", "timezone": "-0100"}},
            "n": {"$dateToString": {"date": null, "format": null, "onNull": "x"}},
        }}],
        vec![doc! {"t": at}],
    );
    assert_eq!(local, vec![doc! {"h": 18, "s": "12:04-0100", "n": "x"}]);
    assert_eq!(
        err(doc! {"$hour": {"date": "$t", "timezone": "Z"}}),
        Err(40485)
    );
    assert_eq!(
        err(doc! {"$hour": {"date": "$t", "timezone": 5}}),
        Err(40533)
    );
    assert_eq!(
        err(doc! {"$hour": {"date": "$s", "timezone": "Europe/Paris"}}),
        Err(16006)
    );
    assert_eq!(err(doc! {"$year": ["$t", "$t"]}), Err(40536));
}

#[test]
fn switch_abs_ceil_floor_concat_arrays_merge_objects() {
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "size": {"$switch": {"branches": [
                {"case": {"$lt": ["$n", 0]}, "then": "negative"},
                {"case": {"$lt": ["$n", 10]}, "then": "small"},
            ], "default": "large"}},
            "abs": {"$abs": "$n"}, "ceil": {"$ceil": 2.1}, "floor": {"$floor": -2.1},
            "all": {"$concatArrays": [[1], "$list", []]},
            "merged": {"$mergeObjects": [{"a": 1, "b": 1}, null, {"b": 2, "c": 3}]},
        }}],
        vec![doc! {"n": -5, "list": [2, 3]}, doc! {"n": 50, "list": []}],
    );
    assert_eq!(
        out,
        vec![
            doc! {"size": "negative", "abs": 5, "ceil": 3.0, "floor": -3.0, "all": [1, 2, 3], "merged": {"a": 1, "b": 2, "c": 3}},
            doc! {"size": "large", "abs": 50, "ceil": 3.0, "floor": -3.0, "all": [1], "merged": {"a": 1, "b": 2, "c": 3}},
        ]
    );
    let run_err = |expr: Document, input: Document| {
        Pipeline::parse(&[doc! {"$project": {"x": expr}}])
            .and_then(|p| p.run(vec![input]))
            .map_err(|e| e.code)
    };
    let no_default = doc! {"$switch": {"branches": [{"case": false, "then": 1}]}};
    assert_eq!(run_err(no_default, doc! {}), Err(40066));
    assert_eq!(run_err(doc! {"$abs": "$s"}, doc! {"s": "x"}), Err(28765));
    assert_eq!(
        run_err(doc! {"$abs": "$n"}, doc! {"n": i64::MIN}),
        Err(28680)
    );
    assert_eq!(
        run_err(doc! {"$concatArrays": [[1], 2]}, doc! {}),
        Err(28664)
    );
    assert_eq!(
        run_err(doc! {"$mergeObjects": [{"a": 1}, 2]}, doc! {}),
        Err(40400)
    );
    assert_eq!(
        run_err(doc! {"$switch": {"branches": []}}, doc! {}),
        Err(40068)
    );
}

#[test]
fn conversions() {
    let oid = bson::oid::ObjectId::parse_str("5ab9cbfa31c2ab715d42129e").unwrap_or_default();
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "i": {"$toInt": "2"}, "l": {"$toLong": 5.9}, "neg": {"$toInt": -5.9},
            "d": {"$toDouble": "1.5"}, "dec": {"$toDecimal": 2.5}, "b": {"$toBool": 0},
            "bs": {"$toBool": "false"}, "s": {"$toString": "$o"}, "sd": {"$toString": "$t"},
            "sn": {"$toString": 7}, "o": {"$toObjectId": "5ab9cbfa31c2ab715d42129e"},
            "date": {"$toDate": "2021-01-03T13:04:05.678Z"}, "day": {"$toDate": "2021-01-03"},
            "null": {"$toInt": "$missing"},
            "bad": {"$convert": {"input": "x", "to": "int", "onError": -1}},
            "none": {"$convert": {"input": null, "to": "int", "onNull": 0}},
            "arr": {"$convert": {"input": 1, "to": "array", "onError": "no"}},
            "code": {"$convert": {"input": "3", "to": 16}},
        }}],
        vec![doc! {"o": oid, "t": bson::DateTime::from_millis(1_609_679_045_678)}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "i": 2, "l": 5i64, "neg": -5, "d": 1.5,
            "dec": Bson::Decimal128("2.50000000000000".parse().unwrap_or_else(|e| panic!("{e:?}"))),
            "b": false, "bs": true, "s": "5ab9cbfa31c2ab715d42129e", "sd": "2021-01-03T13:04:05.678Z",
            "sn": "7", "o": oid, "date": bson::DateTime::from_millis(1_609_679_045_678),
            "day": bson::DateTime::from_millis(1_609_632_000_000), "null": null,
            "bad": -1, "none": 0, "arr": "no", "code": 3,
        }]
    );
    let err = |expr: Document| {
        Pipeline::parse(&[doc! {"$project": {"x": expr}}])
            .and_then(|p| p.run(vec![doc! {}]))
            .map_err(|e| e.code)
    };
    assert_eq!(err(doc! {"$toInt": "1.5"}), Err(241));
    assert_eq!(err(doc! {"$toInt": 3_000_000_000i64}), Err(241));
    assert_eq!(err(doc! {"$toLong": f64::NAN}), Err(241));
    assert_eq!(err(doc! {"$toObjectId": "xyz"}), Err(241));
    assert_eq!(err(doc! {"$toDate": 5}), Err(241));
    assert_eq!(
        err(doc! {"$convert": {"input": 1, "to": "nothing"}}),
        Err(2)
    );
    // `to` is checked before a null input; a number that is no type is FailedToParse.
    assert_eq!(
        err(doc! {"$convert": {"input": "$missing", "to": 3.6}}),
        Err(9)
    );
    assert_eq!(err(doc! {"$convert": {"input": 1, "to": 99}}), Err(9));
    assert_eq!(
        err(doc! {"$convert": {"input": 1, "to": "int", "format": "x"}}),
        Err(238)
    );
    // A double is checked for overflow before it is truncated.
    assert_eq!(err(doc! {"$toInt": 2_147_483_647.5}), Err(241));

    let more = run(
        vec![doc! {"$project": {
            "_id": 0,
            "ms": {"$toLong": "$t"},
            "nan": {"$toString": f64::NAN}, "inf": {"$toString": f64::NEG_INFINITY},
            "big": {"$toDecimal": 1e20},
            "spaced": {"$toDate": "2018-03-20 11:00:06 +0500"},
            "short": {"$toDate": "2018-03-03T12:00"},
            "frac": {"$toDate": "2018-03-03T12:00:00.5-01:00"},
            "before": {"$toDate": "1969-12-31T23:59:59.9995Z"},
            "gone": {"$convert": {"input": "x", "to": "int", "onError": "$$REMOVE"}},
            "dec_to": {"$convert": {"input": "7", "to": Bson::Decimal128("18".parse().unwrap_or_else(|e| panic!("{e:?}")))}},
        }}],
        vec![doc! {"t": bson::DateTime::from_millis(1_609_679_045_678)}],
    );
    assert_eq!(
        more,
        vec![doc! {
            "ms": 1_609_679_045_678i64, "nan": "NaN", "inf": "-Infinity",
            "big": Bson::Decimal128("1.00000000000000E+20".parse().unwrap_or_else(|e| panic!("{e:?}"))),
            "spaced": bson::DateTime::from_millis(1_521_525_606_000),
            "short": bson::DateTime::from_millis(1_520_078_400_000),
            "frac": bson::DateTime::from_millis(1_520_082_000_500),
            "before": bson::DateTime::from_millis(-1),
            "dec_to": 7i64,
        }]
    );
}

#[test]
fn variables_let_map_filter_reduce() {
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "doubled": {"$map": {"input": "$xs", "in": {"$multiply": ["$$this", 2]}}},
            "names": {"$map": {"input": "$items", "as": "item", "in": "$$item.name"}},
            "big": {"$filter": {"input": "$xs", "as": "x", "cond": {"$gt": ["$$x", 1]}}},
            "first": {"$filter": {"input": "$xs", "cond": {"$gte": ["$$this", 1]}, "limit": 1}},
            "sum": {"$reduce": {"input": "$xs", "initialValue": 0, "in": {"$add": ["$$value", "$$this"]}}},
            "total": {"$let": {"vars": {"low": 1, "xs": "$xs"}, "in": {"$size": {"$filter": {"input": "$$xs", "cond": {"$gte": ["$$this", "$$low"]}}}}}},
            "nested": {"$map": {"input": [[1, 2], [3]], "as": "row", "in": {"$map": {"input": "$$row", "in": {"$add": ["$$this", {"$size": "$$row"}]}}}}},
            "none": {"$map": {"input": "$missing", "in": 1}},
        }}],
        vec![doc! {"xs": [0, 1, 2, 3], "items": [{"name": "a"}, {"name": "b"}]}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "doubled": [0, 2, 4, 6], "names": ["a", "b"], "big": [2, 3], "first": [1],
            "sum": 6, "total": 3, "nested": [[3, 4], [4]], "none": null,
        }]
    );
    let code = |expr: Document| {
        Pipeline::parse(&[doc! {"$project": {"x": expr}}])
            .and_then(|p| p.run(vec![doc! {"s": "x"}]))
            .map_err(|e| e.code)
    };
    // A variable outside its scope is undefined when parsed, as in mongod.
    assert_eq!(code(doc! {"$add": ["$$this", 1]}), Err(17276));
    assert_eq!(
        code(doc! {"$map": {"input": [1], "as": "Bad", "in": 1}}),
        Err(16867)
    );
    assert_eq!(code(doc! {"$map": {"input": "$s", "in": 1}}), Err(16883));
    assert_eq!(
        code(doc! {"$filter": {"input": [1], "cond": true, "limit": 0}}),
        Err(327392)
    );
    assert_eq!(code(doc! {"$reduce": {"input": [1], "in": 1}}), Err(40078));
    assert_eq!(
        code(doc! {"$let": {"vars": {}, "in": 1, "x": 2}}),
        Err(16875)
    );
    assert_eq!(code(doc! {"$map": 1}), Err(16878));
    assert_eq!(
        code(doc! {"$filter": {"input": [1], "cond": true, "limit": 5_000_000_000i64}}),
        Err(327391)
    );
    // An empty input is empty before the limit is looked at; a missing variable stays missing.
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "empty": {"$filter": {"input": [], "cond": true, "limit": 0}},
            "kind": {"$let": {"vars": {"x": "$missing"}, "in": {"$type": "$$x"}}},
            "dropped": {"$let": {"vars": {"x": "$missing"}, "in": "$$x"}},
        }}],
        vec![doc! {}],
    );
    assert_eq!(out, vec![doc! {"empty": [], "kind": "missing"}]);
}

#[test]
fn string_expressions() {
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "bytes": {"$strLenBytes": "$s"}, "cps": {"$strLenCP": "$s"},
            "sub": {"$substrCP": ["$s", 1, 3]}, "past": {"$substrCP": ["$s", 10, 2]},
            "at": {"$indexOfCP": ["$s", "é"]}, "from": {"$indexOfCP": ["$s", "l", 3]},
            "none": {"$indexOfCP": ["$s", "z"]}, "nullIdx": {"$indexOfCP": [null, "z"]},
            "parts": {"$split": ["a,b,,c", ","]}, "nullSplit": {"$split": ["$missing", ","]},
            "cmp": {"$strcasecmp": ["ABC", "abd"]}, "upper": {"$strcasecmp": ["_", "a"]},
            "runsPast": {"$indexOfCP": ["abcd", "cd", 0, 3]}, "emptyAtEnd": {"$indexOfCP": ["abc", "", 3]},
            "emptyIn": {"$indexOfCP": ["abc", "", 1]}, "trimNull": {"$trim": {"input": "x", "chars": "$$REMOVE"}},
            "trim": {"$trim": {"input": "  x y \n"}}, "ltrim": {"$ltrim": {"input": "xxhixx", "chars": "x"}},
            "rtrim": {"$rtrim": {"input": "xxhixx", "chars": "x"}},
            "one": {"$replaceOne": {"input": "a.a.a", "find": ".", "replacement": "-"}},
            "all": {"$replaceAll": {"input": "a.a.a", "find": ".", "replacement": "-"}},
            "nullRep": {"$replaceAll": {"input": null, "find": ".", "replacement": "-"}},
        }}],
        vec![doc! {"s": "héllo"}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "bytes": 6, "cps": 5, "sub": "éll", "past": "", "at": 1, "from": 3, "none": -1,
            "nullIdx": null, "parts": ["a", "b", "", "c"], "nullSplit": null, "cmp": -1,
            "upper": 1, "runsPast": 2, "emptyAtEnd": -1, "emptyIn": 1, "trimNull": null,
            "trim": "x y", "ltrim": "hixx", "rtrim": "xxhi", "one": "a-a.a", "all": "a-a-a",
            "nullRep": null,
        }]
    );
    let err = |expr: Document| {
        Pipeline::parse(&[doc! {"$project": {"x": expr}}])
            .and_then(|p| p.run(vec![doc! {}]))
            .map_err(|e| e.code)
    };
    assert_eq!(err(doc! {"$strLenCP": 5}), Err(34471));
    assert_eq!(err(doc! {"$split": ["a", ""]}), Err(40087));
    assert_eq!(err(doc! {"$substrCP": ["abc", -1, 1]}), Err(34455));
    assert_eq!(err(doc! {"$substrCP": ["abc", -1, -1]}), Err(34454));
    assert_eq!(
        err(doc! {"$indexOfCP": ["abc", "b", "$missing"]}),
        Err(40096)
    );
    assert_eq!(
        err(doc! {"$replaceAll": {"input": "a", "find": "b"}}),
        Err(51747)
    );
    assert_eq!(err(doc! {"$trim": {"chars": "b"}}), Err(50695));
    assert_eq!(err(doc! {"$trim": {"input": 5}}), Err(50699));
    assert_eq!(
        err(doc! {"$replaceAll": {"input": "a", "find": 1, "replacement": null}}),
        Err(51745)
    );
    assert_eq!(err(doc! {"$indexOfCP": ["a"]}), Err(28667));
}

#[test]
fn std_dev_merge_objects_accumulators_and_regex_match() {
    let out = run(
        vec![
            doc! {"$group": {
                "_id": null,
                "pop": {"$stdDevPop": "$n"}, "samp": {"$stdDevSamp": "$n"},
                "one": {"$stdDevSamp": "$only"}, "merged": {"$mergeObjects": "$o"},
            }},
            doc! {"$project": {"_id": 0}},
        ],
        vec![
            doc! {"n": 2, "o": {"a": 1, "b": 1}, "only": 5},
            doc! {"n": 4, "o": null},
            doc! {"n": 4.0, "o": {"b": 2}},
            doc! {"n": 4, "s": "ignored"},
            doc! {"n": Bson::Decimal128("5".parse().unwrap_or_else(|e| panic!("{e:?}"))), "o": {"c": 3}},
            doc! {"n": 5},
            doc! {"n": 7},
            doc! {"n": 9},
            doc! {"n": "x"},
        ],
    );
    // The classic 2, 4, 4, 4, 5, 5, 7, 9: population deviation 2, sample sqrt(32/7).
    assert_eq!(
        out,
        vec![
            doc! {"pop": 2.0, "samp": (32.0f64 / 7.0).sqrt(), "one": null, "merged": {"a": 1, "b": 2, "c": 3}}
        ]
    );
    let matched = run(
        vec![doc! {"$project": {
            "_id": 0,
            "m": {"$regexMatch": {"input": "$s", "regex": "^ab", "options": "i"}},
            "re": {"$regexMatch": {"input": "$s", "regex": bson::Regex { pattern: "c$".try_into().unwrap_or_else(|e| panic!("{e}")), options: "".try_into().unwrap_or_else(|e| panic!("{e}")) }}},
            "no": {"$regexMatch": {"input": "$missing", "regex": "a"}},
        }}],
        vec![doc! {"s": "ABC"}],
    );
    assert_eq!(matched, vec![doc! {"m": true, "re": false, "no": false}]);
    let err = |expr: Document| {
        Pipeline::parse(&[doc! {"$project": {"x": expr}}])
            .and_then(|p| p.run(vec![doc! {"n": 1}]))
            .map_err(|e| e.code)
    };
    assert_eq!(
        err(doc! {"$regexMatch": {"input": "$n", "regex": "a"}}),
        Err(51104)
    );
    assert_eq!(err(doc! {"$regexMatch": {"regex": "a"}}), Err(31022));
    // The regex is checked before the input is looked at, and a constant one when parsed.
    assert_eq!(
        err(doc! {"$regexMatch": {"input": "$missing", "regex": "$n"}}),
        Err(51105)
    );
    assert_eq!(
        err(doc! {"$regexMatch": {"input": "x", "regex": "a", "options": "l"}}),
        Err(51108)
    );
    assert_eq!(
        err(doc! {"$regexMatch": {"input": "x", "regex": "a\u{0}"}}),
        Err(51109)
    );
    assert_eq!(
        err(doc! {"$regexMatch": {"input": "x", "regex": "a", "options": 1}}),
        Err(51106)
    );
    assert_eq!(
        err(doc! {"$regexMatch": {"input": "x", "regex": "a", "bad": 1}}),
        Err(31024)
    );
    assert_eq!(
        Pipeline::parse(&[
            doc! {"$project": {"x": {"$regexMatch": {"input": "$s", "regex": "("}}}}
        ])
        .map(|_| ())
        .map_err(|e| e.code),
        Err(51111)
    );
    assert_eq!(
        Pipeline::parse(&[doc! {"$group": {"_id": null, "s": {"$sum": [1, 2]}}}])
            .map(|_| ())
            .map_err(|e| e.code),
        Err(40237)
    );
    let merge = Pipeline::parse(&[doc! {"$group": {"_id": null, "m": {"$mergeObjects": "$n"}}}])
        .and_then(|p| p.run(vec![doc! {"n": 1}]))
        .map_err(|e| e.code);
    assert_eq!(merge, Err(40400));
    // A field seen before keeps its place (Document equality ignores order: compare keys).
    let merged = run(
        vec![doc! {"$group": {"_id": null, "m": {"$mergeObjects": "$o"}}}],
        vec![
            doc! {"o": {"a": 1, "b": 1}},
            doc! {"o": {"c": 3}},
            doc! {"o": {"a": 2}},
        ],
    );
    let m = merged
        .first()
        .and_then(|d| d.get_document("m").ok())
        .cloned()
        .unwrap_or_default();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(m.get_i32("a").ok(), Some(2));
}

#[test]
fn round_and_trunc() {
    let out = run(
        vec![doc! {"$project": {
            "_id": 0,
            "r": {"$round": ["$x", 1]}, "t": {"$trunc": ["$x", 1]}, "whole": {"$round": "$x"},
            "tens": {"$round": [1234, -1]}, "dec": {"$round": [Bson::Decimal128("2.345".parse().unwrap_or_else(|e| panic!("{e:?}"))), 2]},
            "none": {"$round": ["$missing", 1]}, "nullPlace": {"$round": ["$x", null]},
        }}],
        vec![doc! {"x": 19.35}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "r": 19.4, "t": 19.3, "whole": 19.0, "tens": 1230,
            "dec": Bson::Decimal128("2.34".parse().unwrap_or_else(|e| panic!("{e:?}"))),
            "none": null, "nullPlace": null,
        }]
    );
    let err = |expr: Document| {
        Pipeline::parse(&[doc! {"$project": {"x": expr}}])
            .and_then(|p| p.run(vec![doc! {}]))
            .map_err(|e| e.code)
    };
    assert_eq!(err(doc! {"$round": ["a", 1]}), Err(51081));
    assert_eq!(err(doc! {"$round": [1.5, 1.5]}), Err(51082));
    assert_eq!(err(doc! {"$round": [1.5, 5_000_000_000i64]}), Err(51082));
    assert_eq!(err(doc! {"$round": [1.5, "a"]}), Err(16004));
    assert_eq!(err(doc! {"$round": [1.5, f64::NAN]}), Err(31109));
    assert_eq!(err(doc! {"$trunc": [1.5, 101]}), Err(51083));
    assert_eq!(err(doc! {"$round": [1, 2, 3]}), Err(28667));
}

#[test]
fn stage_errors() {
    let parse = |stages: Vec<Document>| code(Pipeline::parse(&stages));
    let err = Pipeline::parse(&[doc! {"$foo": {}}]).expect_err("unknown stage");
    assert_eq!(
        (err.code, err.message.as_str()),
        (40324, "Unrecognized pipeline stage name: '$foo'")
    );
    let err = Pipeline::parse(&[doc! {"$project": {"x": {"$foo": 1}}}]).expect_err("unknown expr");
    assert_eq!((err.code, err.code_name), (168, "InvalidPipelineOperator"));
    assert_eq!(parse(vec![doc! {"$match": {}, "$sort": {"a": 1}}]), 40323);
    assert_eq!(parse(vec![doc! {"$group": {"n": {"$sum": 1}}}]), 15955);
    assert_eq!(
        parse(vec![doc! {"$group": {"_id": null, "n": {"$foo": 1}}}]),
        15952
    );
    assert_eq!(parse(vec![doc! {"$group": {"_id": null, "n": 1}}]), 40234);
    assert_eq!(
        parse(vec![
            doc! {"$match": {}},
            doc! {"$collStats": {"count": {}}}
        ]),
        40602
    );
    // mongod's own operators that rewind lacks say so (238); misspelt ones stay unknown.
    let project = |expr: Bson| parse(vec![doc! {"$project": {"x": expr}}]);
    assert_eq!(project(Bson::Document(doc! {"$dateAdd": {}})), 238);
    assert_eq!(project(Bson::Document(doc! {"$dateAd": {}})), 168);
    assert_eq!(project(Bson::String("$$CLUSTER_TIME".into())), 238);
    assert_eq!(project(Bson::String("$$NOPE".into())), 17276);
    assert_eq!(
        parse(vec![doc! {"$group": {"_id": null, "n": {"$top": "$a"}}}]),
        238
    );
    assert_eq!(
        parse(vec![doc! {"$group": {"_id": null, "a.b": {"$sum": 1}}}]),
        40235
    );
    assert_eq!(parse(vec![doc! {"$unwind": "sizes"}]), 28818);
    assert_eq!(
        parse(vec![doc! {"$unwind": {"path": "$a", "bogus": 1}}]),
        28811
    );
    assert_eq!(
        parse(vec![doc! {"$unwind": {"includeArrayIndex": "i"}}]),
        28812
    );
    assert_eq!(parse(vec![doc! {"$limit": 0}]), 15958);
    assert_eq!(parse(vec![doc! {"$skip": -1}]), 15956);
    assert_eq!(parse(vec![doc! {"$sort": {}}]), 15976);
    assert_eq!(parse(vec![doc! {"$count": ""}]), 40156);
    assert_eq!(parse(vec![doc! {"$count": "$x"}]), 40158);
    assert_eq!(parse(vec![doc! {"$count": "a.b"}]), 40160);
    assert_eq!(parse(vec![doc! {"$project": {}}]), 51272);
    assert_eq!(parse(vec![doc! {"$match": 1}]), 15959);
    assert_eq!(parse(vec![doc! {"$lookup": {}}]), 9);
    assert_eq!(
        parse(vec![
            doc! {"$lookup": {"from": "c", "pipeline": [], "as": "x"}}
        ]),
        238
    );
    assert_eq!(parse(vec![doc! {"$facet": {}}]), 40169);
    assert_eq!(parse(vec![doc! {"$sortByCount": "item"}]), 40148);
    assert_eq!(parse(vec![doc! {"$sortByCount": {"a": 1}}]), 40147);
    assert_eq!(parse(vec![doc! {"$sortByCount": 1}]), 40149);
    assert_eq!(parse(vec![doc! {"$facet": {"a.b": []}}]), 16412);
    assert_eq!(parse(vec![doc! {"$bucketAuto": {}}]), 238);
    assert_eq!(
        parse(vec![doc! {"$project": {"x": {"$add": [1], "$sub": 1}}}]),
        15983
    );
    assert_eq!(
        parse(vec![doc! {"$project": {"x": {"$subtract": [1]}}}]),
        16020
    );
    assert_eq!(parse(vec![doc! {"$project": {"x": "$$NOPE"}}]), 17276);
}

#[test]
fn distinct_values() {
    let docs = [
        doc! {"a": 1, "t": ["x", "y"]},
        doc! {"a": 1.0, "t": "y"},
        doc! {"a": "s", "t": [["n"]]},
        doc! {"b": {"c": [{"d": 2}, {"d": 1}]}},
    ];
    assert_eq!(
        distinct(&docs, "a"),
        vec![Bson::Int32(1), Bson::String("s".into())]
    );
    assert_eq!(
        distinct(&docs, "t"),
        vec![
            Bson::String("x".into()),
            Bson::String("y".into()),
            bson::bson!(["n"])
        ]
    );
    assert_eq!(
        distinct(&docs, "b.c.d"),
        vec![Bson::Int32(1), Bson::Int32(2)]
    );
    assert!(distinct(&docs, "zzz").is_empty());
}
