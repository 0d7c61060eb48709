//! Property tests: `compare` is a total order consistent with `values_equal`,
//! and `SortSpec` orders documents accordingly.

use std::cmp::Ordering;

use bson::{Bson, Decimal128, Document, oid::ObjectId};
use proptest::prelude::*;
use rewind_query::sort::SortSpec;
use rewind_query::{compare, values_equal};

fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        Just(Bson::Null),
        Just(Bson::Undefined),
        (-3i32..3).prop_map(Bson::Int32),
        (-3i64..3).prop_map(Bson::Int64),
        prop_oneof![
            (-6i32..6).prop_map(|i| f64::from(i) / 2.0),
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(9_223_372_036_854_775_808.0),
        ]
        .prop_map(Bson::Double),
        Just(Bson::Int64(i64::MAX)),
        (-3i32..3)
            .prop_map(|i| Bson::Decimal128(i.to_string().parse::<Decimal128>().expect("decimal"))),
        "[ab]{0,2}".prop_map(Bson::String),
        "[ab]{0,2}".prop_map(Bson::Symbol),
        any::<bool>().prop_map(Bson::Boolean),
        (-2i64..2).prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        (0u32..2, 0u32..2)
            .prop_map(|(time, increment)| Bson::Timestamp(bson::Timestamp { time, increment })),
        (0u8..3).prop_map(|b| Bson::ObjectId(ObjectId::from_bytes([b; 12]))),
        (0u8..2, proptest::collection::vec(0u8..2, 0..2)).prop_map(|(s, bytes)| Bson::Binary(
            bson::Binary {
                subtype: s.into(),
                bytes
            }
        )),
        ("[ab]{0,1}", "[im]{0,1}").prop_map(|(p, o)| crate::re(&p, &o)),
    ]
}

fn value() -> impl Strategy<Value = Bson> {
    scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
            proptest::collection::vec(("[xy]", inner), 0..3)
                .prop_map(|fields| { Bson::Document(fields.into_iter().collect::<Document>()) }),
        ]
    })
}

proptest! {
    #[test]
    fn compare_is_reflexive_and_antisymmetric(a in value(), b in value()) {
        prop_assert_eq!(compare(&a, &a), Ordering::Equal);
        prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        prop_assert_eq!(values_equal(&a, &b), compare(&a, &b) == Ordering::Equal);
    }

    #[test]
    fn compare_is_transitive(a in value(), b in value(), c in value()) {
        let ab = compare(&a, &b);
        let bc = compare(&b, &c);
        if ab != Ordering::Greater && bc != Ordering::Greater {
            prop_assert_ne!(compare(&a, &c), Ordering::Greater);
        }
        if ab == Ordering::Equal && bc == Ordering::Equal {
            prop_assert!(values_equal(&a, &c));
        }
    }

    #[test]
    fn sorted_vectors_are_pairwise_ordered(mut values in proptest::collection::vec(value(), 0..12)) {
        values.sort_by(compare);
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                prop_assert_ne!(compare(&values[i], &values[j]), Ordering::Greater);
            }
        }
    }

    #[test]
    fn sort_spec_agrees_with_compare(
        values in proptest::collection::vec(proptest::option::of(value()), 0..12),
        descending in any::<bool>(),
    ) {
        // Non-array keys: a document sorts by its value (missing as null).
        let values: Vec<Option<Bson>> = values
            .into_iter()
            .filter(|v| !matches!(v, Some(Bson::Array(_))))
            .collect();
        let mut docs: Vec<Document> = values
            .iter()
            .map(|v| {
                let mut d = Document::new();
                if let Some(v) = v {
                    d.insert("k", v.clone());
                }
                d
            })
            .collect();
        let dir = if descending { -1 } else { 1 };
        let spec = SortSpec::parse(&bson::doc! {"k": dir}).expect("valid sort");
        spec.sort(&mut docs);
        let key = |d: &Document| d.get("k").cloned().unwrap_or(Bson::Null);
        for pair in docs.windows(2) {
            let ord = compare(&key(&pair[0]), &key(&pair[1]));
            let expected_not = if descending { Ordering::Less } else { Ordering::Greater };
            prop_assert_ne!(ord, expected_not);
        }
    }
}
