//! The `.metadata.json` text, the file names and `prelude.json`, as mongodump
//! produces them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha1::{Digest as _, Sha1};

use crate::error::DumpError;
use crate::extjson;
use crate::gofmt::{hex, write_string};
use crate::source::DumpNamespace;

/// The `.metadata.json` text mongodump writes for `ns` (and embeds in an
/// archive's prelude): mongodump's `Metadata` struct marshalled as canonical
/// Extended JSON, fields in struct order, `omitempty` honoured:
///
/// `{"options":{…},"indexes":[…],"uuid":"<32 hex>","collectionName":"…","type":"…"}`
///
/// `options` is left out when empty and `uuid` when unknown; `indexes` is
/// always there, `[]` at least.
pub fn metadata_json(ns: &DumpNamespace) -> Result<String, DumpError> {
    let failed = |err: extjson::MalformedBson| DumpError::Metadata {
        namespace: ns.display_name(),
        reason: err.0.to_owned(),
    };
    let mut out = String::from("{");
    if !ns.options.is_empty() {
        out.push_str(r#""options":"#);
        out.push_str(&extjson::document_to_string(&ns.options).map_err(failed)?);
        out.push(',');
    }
    out.push_str(r#""indexes":["#);
    for (i, index) in ns.indexes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&extjson::document_to_string(index).map_err(failed)?);
    }
    out.push(']');
    if let Some(uuid) = ns.uuid {
        out.push_str(r#","uuid":"#);
        out.push_str(&format!("\"{}\"", hex(&uuid)));
    }
    out.push_str(r#","collectionName":"#);
    write_string(&mut out, ns.collection.as_bytes());
    let type_name = ns.kind.type_name();
    if !type_name.is_empty() {
        out.push_str(r#","type":"#);
        write_string(&mut out, type_name.as_bytes());
    }
    out.push('}');
    Ok(out)
}

/// `prelude.json` of a directory dump (mongodump 100.12 and later): Go's
/// `encoding/json` of `{ServerVersion, ToolVersion}`.
pub(crate) fn prelude_json(server_version: &str, tool_version: &str) -> String {
    let mut out = String::from(r#"{"ServerVersion":"#);
    write_string(&mut out, server_version.as_bytes());
    out.push_str(r#","ToolVersion":"#);
    write_string(&mut out, tool_version.as_bytes());
    out.push('}');
    out
}

/// The file name stem mongodump uses for a collection: `url.QueryEscape` of
/// the name, and for escaped names over 238 bytes the first 208 bytes,
/// `%24` and the unpadded URL-safe base64 of the name's SHA-1, so that
/// `<stem>.metadata.json.gz` fits in 255 bytes. mongorestore reads the real
/// name back from `collectionName`.
pub fn file_stem(collection: &str) -> String {
    let escaped = query_escape(collection);
    if escaped.len() <= 238 {
        return escaped;
    }
    let digest = Sha1::digest(collection.as_bytes());
    // The escaped form is ASCII, so any byte offset is a char boundary.
    let head = escaped.get(..208).unwrap_or(&escaped);
    format!("{head}%24{}", URL_SAFE_NO_PAD.encode(digest))
}

/// Go's `url.QueryEscape`: unreserved bytes verbatim, space as `+`, every
/// other byte as `%XX` in uppercase hex.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::NamespaceKind;
    use bson::doc;

    #[test]
    fn metadata_has_mongodumps_field_order() {
        let mut ns = DumpNamespace::collection("test", "foo");
        ns.indexes = vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "f": 1.0 }, "name": "f_1", "expireAfterSeconds": 1000 },
        ];
        ns.uuid = Some([
            0x06, 0x79, 0xdb, 0x72, 0x0f, 0x49, 0x44, 0xde, 0x90, 0xae, 0x27, 0x47, 0x26, 0x64,
            0xe9, 0x4a,
        ]);
        assert_eq!(
            metadata_json(&ns).unwrap(),
            concat!(
                r#"{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"},"#,
                r#"{"v":{"$numberInt":"2"},"key":{"f":{"$numberDouble":"1.0"}},"name":"f_1","#,
                r#""expireAfterSeconds":{"$numberInt":"1000"}}],"#,
                r#""uuid":"0679db720f4944de90ae27472664e94a","collectionName":"foo","type":"collection"}"#
            )
        );
    }

    #[test]
    fn view_metadata_carries_options_and_no_uuid() {
        let mut ns = DumpNamespace::collection("test", "v");
        ns.kind = NamespaceKind::View;
        ns.options = doc! { "viewOn": "foo", "pipeline": [ { "$match": { "a": 1 } } ] };
        assert_eq!(
            metadata_json(&ns).unwrap(),
            concat!(
                r#"{"options":{"viewOn":"foo","pipeline":[{"$match":{"a":{"$numberInt":"1"}}}]},"#,
                r#""indexes":[],"collectionName":"v","type":"view"}"#
            )
        );
    }

    #[test]
    fn stems_escape_like_query_escape() {
        assert_eq!(file_stem("foo"), "foo");
        assert_eq!(file_stem("cafés"), "caf%C3%A9s");
        assert_eq!(file_stem("a b/c$d"), "a+b%2Fc%24d");
        assert_eq!(file_stem("system.buckets.x~y"), "system.buckets.x~y");
    }

    #[test]
    fn long_names_are_truncated_with_a_hash() {
        let name = "a".repeat(300);
        let stem = file_stem(&name);
        assert_eq!(stem.len(), 208 + 3 + 27);
        assert!(stem.starts_with(&"a".repeat(208)));
        let digest = Sha1::digest(name.as_bytes());
        assert_eq!(
            &stem[208..],
            format!("%24{}", URL_SAFE_NO_PAD.encode(digest))
        );
        assert_eq!(file_stem(&"b".repeat(238)), "b".repeat(238));
    }

    #[test]
    fn long_name_matches_mongo_tools_testdata() {
        // mongo-tools' mongorestore/testdata/longcollectionname/db1: the file
        // name mongodump chose, and the collectionName inside it.
        let name = format!(
            "a{}LongCollectionNameConsistingOfExactlyTwoHundredAndFortySevenCharacters",
            "Very".repeat(44)
        );
        assert_eq!(name.len(), 247);
        let want = format!(
            "a{}LongCollectionNameConsistingOfE%24xFO0VquRn7cg3QooSZD5sglTddU",
            "Very".repeat(44)
        );
        assert_eq!(file_stem(&name), want);

        let mut ns = DumpNamespace::collection("db1", name.clone());
        ns.indexes = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];
        ns.uuid = Some([
            0xee, 0x35, 0x34, 0xfe, 0x95, 0x45, 0x40, 0x6f, 0x90, 0x40, 0x6b, 0x24, 0x6d, 0xde,
            0x42, 0x0d,
        ]);
        // That file predates the `type` field; everything before it matches.
        let testdata = format!(
            concat!(
                r#"{{"indexes":[{{"v":{{"$numberInt":"2"}},"key":{{"_id":{{"$numberInt":"1"}}}},"name":"_id_"}}],"#,
                r#""uuid":"ee3534fe9545406f90406b246dde420d","collectionName":"{}""#
            ),
            name
        );
        assert_eq!(
            metadata_json(&ns).unwrap(),
            format!(r#"{testdata},"type":"collection"}}"#)
        );
    }

    #[test]
    fn prelude_json_is_go_encoding() {
        assert_eq!(
            prelude_json("7.0.16", ""),
            r#"{"ServerVersion":"7.0.16","ToolVersion":""}"#
        );
    }
}
