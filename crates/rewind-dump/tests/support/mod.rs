//! Shared fixtures: an in-memory snapshot, and readers of both formats
//! written from the specification, independently of the crate.

pub mod archive_reader;
pub mod python;

use std::io;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Decimal128, Regex, Timestamp, doc, oid::ObjectId};
use rewind_dump::{DumpNamespace, DumpSource, NamespaceKind};

/// A snapshot held in memory: namespaces with their raw documents.
pub struct MemSource {
    pub namespaces: Vec<(DumpNamespace, Vec<Vec<u8>>)>,
}

impl MemSource {
    pub fn documents(&self, db: &str, collection: &str) -> &[Vec<u8>] {
        self.namespaces
            .iter()
            .find(|(ns, _)| ns.db == db && ns.collection == collection)
            .map(|(_, docs)| docs.as_slice())
            .unwrap_or_default()
    }
}

impl DumpSource for MemSource {
    fn namespaces(&self) -> io::Result<Vec<DumpNamespace>> {
        Ok(self.namespaces.iter().map(|(ns, _)| ns.clone()).collect())
    }

    fn for_each_document(
        &self,
        ns: &DumpNamespace,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        for doc in self.documents(&ns.db, &ns.collection) {
            f(doc)?;
        }
        Ok(())
    }
}

pub fn raw(d: bson::Document) -> Vec<u8> {
    d.to_vec().expect("fixture documents serialize")
}

/// The name of a collection whose escaped name mongodump truncates.
pub fn long_name() -> String {
    format!("events_{}", "x".repeat(293))
}

/// Several databases and collections: nested documents, binary data, most
/// BSON types, an empty collection, a view, a time-series collection,
/// indexes with options, a name that needs escaping, a name long enough to
/// be hashed, and an oplog.
pub fn fixture() -> MemSource {
    let mut orders = DumpNamespace::collection("shop", "orders");
    orders.uuid = Some(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef");
    orders.options = doc! {
        "validator": { "$jsonSchema": { "required": ["total"] } },
        "validationLevel": "moderate",
    };
    orders.indexes = vec![
        doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
        doc! { "v": 2, "key": { "customer": 1, "placed": -1 }, "name": "customer_1_placed_-1", "unique": true },
        doc! {
            "v": 2, "key": { "placed": 1 }, "name": "placed_1",
            "expireAfterSeconds": 3600_i64,
            "partialFilterExpression": { "total": { "$gt": 0.5 } },
            "collation": { "locale": "fr", "strength": 2 },
        },
    ];
    let order_docs = (0..40)
        .map(|i| {
            raw(doc! {
                "_id": ObjectId::from_bytes([i as u8; 12]),
                "customer": format!("c{}", i % 7),
                "placed": DateTime::from_millis(1_700_000_000_000 + i64::from(i) * 1000),
                "total": f64::from(i) * 1.25,
                "qty": i,
                "big": i64::from(i) << 40,
                "price": format!("{i}.99").parse::<Decimal128>().unwrap(),
                "lines": [ { "sku": "A-1", "n": 2 }, { "sku": "B\u{e9}\"2", "n": [1, 2, { "deep": { "er": null } }] } ],
                "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![i as u8, 0, 255, 10] },
                "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
                "flag": i % 2 == 0,
                "re": Regex { pattern: "^c[0-9]+$".try_into().unwrap(), options: "i".try_into().unwrap() },
                "ts": Timestamp { time: 1_700_000_000, increment: i },
                "code": Bson::JavaScriptCode("function() { return 1; }".to_owned()),
                "bounds": [Bson::MinKey, Bson::MaxKey],
            })
        })
        .collect();

    let mut empty = DumpNamespace::collection("shop", "empty");
    empty.uuid = Some([0xee; 16]);
    empty.indexes = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];

    let mut view = DumpNamespace::collection("shop", "big_orders");
    view.kind = NamespaceKind::View;
    view.options =
        doc! { "viewOn": "orders", "pipeline": [ { "$match": { "total": { "$gt": 20 } } } ] };

    let mut weather = DumpNamespace::collection("metrics", "weather");
    weather.kind = NamespaceKind::Timeseries;
    weather.uuid = Some([0x42; 16]);
    weather.options = doc! { "timeseries": { "timeField": "ts", "metaField": "meta", "granularity": "seconds", "bucketMaxSpanSeconds": 3600 } };
    weather.indexes = vec![doc! { "v": 2, "key": { "meta": 1, "ts": 1 }, "name": "meta_1_ts_1" }];
    let buckets = (0..3)
        .map(|i| {
            raw(doc! {
                "_id": ObjectId::from_bytes([0x60 + i; 12]),
                "control": { "version": 1, "min": { "ts": DateTime::from_millis(0) }, "max": { "ts": DateTime::from_millis(1000) } },
                "meta": { "station": i32::from(i) },
                "data": { "ts": { "0": DateTime::from_millis(0), "1": DateTime::from_millis(1000) }, "temp": { "0": 20.5, "1": 21.0 } },
            })
        })
        .collect();

    let mut odd = DumpNamespace::collection("metrics", "we ird/name$");
    odd.indexes = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];
    let odd_docs = vec![
        raw(doc! { "_id": 1, "s": "x" }),
        raw(doc! { "_id": 2, "nested": { "a": [[], {}] } }),
    ];

    let long = DumpNamespace::collection("metrics", long_name());
    let long_docs = vec![raw(doc! { "_id": "only" })];

    let oplog_docs = (0..3)
        .map(|i| {
            raw(doc! {
                "ts": Timestamp { time: 1_700_000_100, increment: i },
                "t": 1_i64, "op": "i", "ns": "shop.orders",
                "o": { "_id": 1000 + i64::from(i) },
            })
        })
        .collect();

    MemSource {
        namespaces: vec![
            (DumpNamespace::oplog(), oplog_docs),
            (orders, order_docs),
            (empty, Vec::new()),
            (view, Vec::new()),
            (weather, buckets),
            (odd, odd_docs),
            (long, long_docs),
        ],
    }
}
