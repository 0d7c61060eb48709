//! Property test: random operation sequences against a BTreeMap model.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use bson::{Bson, doc};
use proptest::prelude::*;
use rewind_engine::{Engine, EngineOptions, key_bytes};

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, i32, i32),
    Update(u8, i32, i32),
    Delete(u8, i32),
    Create(u8),
    Drop(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0i32..20, any::<i32>()).prop_map(|(c, id, v)| Op::Insert(c, id, v)),
        2 => (0u8..3, 0i32..20, any::<i32>()).prop_map(|(c, id, v)| Op::Update(c, id, v)),
        2 => (0u8..3, 0i32..20).prop_map(|(c, id)| Op::Delete(c, id)),
        1 => (0u8..3).prop_map(Op::Create),
        1 => (0u8..3).prop_map(Op::Drop),
    ]
}

type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = crate::tmpdir("prop");
        let e = Engine::open(&dir, EngineOptions::default()).unwrap();
        let mut model: Model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(c, id, v) => {
                    let ns = format!("db.c{c}");
                    let d = crate::raw(doc! {"_id": id, "v": v});
                    let r = e.write(|t| t.insert(&ns, &d));
                    let coll = model.entry(ns).or_default();
                    let k = key_bytes(&Bson::Int32(id));
                    match coll.entry(k) {
                        Entry::Occupied(_) => prop_assert_eq!(r.unwrap_err().code(), 11000),
                        Entry::Vacant(slot) => {
                            r.unwrap();
                            slot.insert(d.into_bytes());
                        }
                    }
                }
                Op::Update(c, id, v) => {
                    let ns = format!("db.c{c}");
                    let d = crate::raw(doc! {"_id": id, "w": v, "x": 1});
                    let found = e.write(|t| t.update(&ns, &Bson::Int64(id.into()), &d)).unwrap();
                    let k = key_bytes(&Bson::Int32(id));
                    let slot = model.get_mut(&ns).and_then(|c| c.get_mut(&k));
                    prop_assert_eq!(found, slot.is_some());
                    if let Some(s) = slot { *s = d.into_bytes(); }
                }
                Op::Delete(c, id) => {
                    let ns = format!("db.c{c}");
                    let found = e.write(|t| t.delete(&ns, &Bson::Double(id.into()))).unwrap();
                    let k = key_bytes(&Bson::Int32(id));
                    prop_assert_eq!(found, model.get_mut(&ns).and_then(|c| c.remove(&k)).is_some());
                }
                Op::Create(c) => {
                    let ns = format!("db.c{c}");
                    let r = e.write(|t| t.create_collection(&ns, &doc! {}));
                    match model.entry(ns) {
                        Entry::Occupied(_) => prop_assert_eq!(r.unwrap_err().code(), 48),
                        Entry::Vacant(slot) => {
                            r.unwrap();
                            slot.insert(BTreeMap::new());
                        }
                    }
                }
                Op::Drop(c) => {
                    let ns = format!("db.c{c}");
                    let existed = e.write(|t| t.drop_collection(&ns)).unwrap();
                    prop_assert_eq!(existed, model.remove(&ns).is_some());
                }
            }
        }
        let v = e.read_view().unwrap();
        let names: Vec<String> = v.collections().map(|c| c.ns()).collect();
        prop_assert_eq!(names, model.keys().cloned().collect::<Vec<_>>());
        for (ns, docs) in &model {
            let got: Vec<Vec<u8>> = v.scan(ns, None, usize::MAX).unwrap().into_iter().map(|d| d.into_bytes()).collect();
            prop_assert_eq!(got, docs.values().cloned().collect::<Vec<_>>());
        }
        drop(v);
        drop(e);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
