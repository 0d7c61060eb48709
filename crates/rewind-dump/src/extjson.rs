//! Canonical Extended JSON v2 exactly as the Go driver writes it
//! (`bson.MarshalExtJSON(v, canonical=true, escapeHTML=false)`), which is
//! what mongodump puts in `.metadata.json`: compact, keys in document order,
//! every number wrapped (`{"$numberInt":"1"}`).
//!
//! It walks raw BSON rather than `bson::Bson` because the `bson` crate does
//! not expose a DBPointer's parts, and because it must follow Go's number and
//! string formatting rather than the crate's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::gofmt::{format_double, hex, write_string};

/// Deeper nesting than any server accepts (100 levels); a bound keeps a
/// hostile input from exhausting the stack.
const MAX_DEPTH: usize = 200;

/// Why a raw document could not be rendered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MalformedBson(pub(crate) &'static str);

/// Renders `doc` (a `bson::Document`) as canonical Extended JSON.
pub(crate) fn document_to_string(doc: &bson::Document) -> Result<String, MalformedBson> {
    let raw = doc
        .to_vec()
        .map_err(|_| MalformedBson("document does not serialize"))?;
    let mut out = String::new();
    write_document(&mut out, &raw)?;
    Ok(out)
}

/// Appends the raw document `raw` to `out` as canonical Extended JSON.
pub(crate) fn write_document(out: &mut String, raw: &[u8]) -> Result<(), MalformedBson> {
    let mut reader = Reader { bytes: raw, pos: 0 };
    write_container(out, &mut reader, false, 0)?;
    if reader.pos == raw.len() {
        Ok(())
    } else {
        Err(MalformedBson("trailing bytes after document"))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MalformedBson> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(MalformedBson("length overflow"))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(MalformedBson("value runs past the end"))?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MalformedBson> {
        let slice = self.take(N)?;
        slice.try_into().map_err(|_| MalformedBson("short value"))
    }

    fn u8(&mut self) -> Result<u8, MalformedBson> {
        Ok(self.array::<1>()?[0])
    }

    fn i32(&mut self) -> Result<i32, MalformedBson> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, MalformedBson> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, MalformedBson> {
        usize::try_from(self.i32()?).map_err(|_| MalformedBson("negative length"))
    }

    fn cstring(&mut self) -> Result<&'a [u8], MalformedBson> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(MalformedBson("unterminated key or regex"))?;
        let s = self.take(nul)?;
        self.pos += 1;
        Ok(s)
    }

    /// A BSON `string`: int32 length (including the NUL), bytes, NUL.
    fn string(&mut self) -> Result<&'a [u8], MalformedBson> {
        let len = self.len()?;
        let with_nul = self.take(len)?;
        match with_nul.split_last() {
            Some((0, s)) => Ok(s),
            _ => Err(MalformedBson("string is not NUL-terminated")),
        }
    }
}

/// Writes a document (`{...}`) or, when `array`, an array (`[...]`, keys
/// dropped) starting at the reader's position.
fn write_container(
    out: &mut String,
    r: &mut Reader<'_>,
    array: bool,
    depth: usize,
) -> Result<(), MalformedBson> {
    if depth > MAX_DEPTH {
        return Err(MalformedBson("nesting too deep"));
    }
    let start = r.pos;
    let len = r.len()?;
    let end = start
        .checked_add(len)
        .ok_or(MalformedBson("length overflow"))?;
    if len < 5 || end > r.bytes.len() {
        return Err(MalformedBson("bad document length"));
    }
    out.push(if array { '[' } else { '{' });
    let mut first = true;
    loop {
        let tag = r.u8()?;
        if tag == 0 {
            break;
        }
        let key = r.cstring()?;
        if !first {
            out.push(',');
        }
        first = false;
        if !array {
            write_string(out, key);
            out.push(':');
        }
        write_value(out, r, tag, depth)?;
        if r.pos >= end {
            return Err(MalformedBson("element runs past its document"));
        }
    }
    if r.pos != end {
        return Err(MalformedBson("document length does not match its elements"));
    }
    out.push(if array { ']' } else { '}' });
    Ok(())
}

fn write_value(
    out: &mut String,
    r: &mut Reader<'_>,
    tag: u8,
    depth: usize,
) -> Result<(), MalformedBson> {
    match tag {
        0x01 => {
            let f = f64::from_le_bytes(r.array()?);
            wrap_str(out, "$numberDouble", &format_double(f));
        }
        0x02 => write_string(out, r.string()?),
        0x03 => write_container(out, r, false, depth + 1)?,
        0x04 => write_container(out, r, true, depth + 1)?,
        0x05 => write_binary(out, r)?,
        0x06 => out.push_str(r#"{"$undefined":true}"#),
        0x07 => write_oid(out, &r.array::<12>()?),
        0x08 => out.push_str(if r.u8()? != 0 { "true" } else { "false" }),
        0x09 => {
            out.push_str(r#"{"$date":"#);
            wrap_str(out, "$numberLong", &r.i64()?.to_string());
            out.push('}');
        }
        0x0A => out.push_str("null"),
        0x0B => {
            let pattern = r.cstring()?;
            // Go sorts the options so equal regexes print equally.
            let mut options = r.cstring()?.to_vec();
            options.sort_unstable();
            out.push_str(r#"{"$regularExpression":{"pattern":"#);
            write_string(out, pattern);
            out.push_str(r#","options":"#);
            write_string(out, &options);
            out.push_str("}}");
        }
        0x0C => {
            let ns = r.string()?;
            let id = r.array::<12>()?;
            out.push_str(r#"{"$dbPointer":{"$ref":"#);
            write_string(out, ns);
            out.push_str(r#","$id":"#);
            write_oid(out, &id);
            out.push_str("}}");
        }
        0x0D => {
            out.push_str(r#"{"$code":"#);
            write_string(out, r.string()?);
            out.push('}');
        }
        0x0E => {
            out.push_str(r#"{"$symbol":"#);
            write_string(out, r.string()?);
            out.push('}');
        }
        0x0F => {
            // Total length, then the code string, then the scope document.
            let _total = r.len()?;
            out.push_str(r#"{"$code":"#);
            write_string(out, r.string()?);
            out.push_str(r#","$scope":"#);
            write_container(out, r, false, depth + 1)?;
            out.push('}');
        }
        0x10 => wrap_str(out, "$numberInt", &r.i32()?.to_string()),
        0x11 => {
            let ts = u64::from_le_bytes(r.array()?);
            let (time, increment) = (ts >> 32, ts & 0xffff_ffff);
            out.push_str(&format!(
                r#"{{"$timestamp":{{"t":{time},"i":{increment}}}}}"#
            ));
        }
        0x12 => wrap_str(out, "$numberLong", &r.i64()?.to_string()),
        0x13 => {
            let dec = bson::Decimal128::from_bytes(r.array()?);
            wrap_str(out, "$numberDecimal", &dec.to_string());
        }
        0xFF => out.push_str(r#"{"$minKey":1}"#),
        0x7F => out.push_str(r#"{"$maxKey":1}"#),
        _ => return Err(MalformedBson("unknown element type")),
    }
    Ok(())
}

fn write_binary(out: &mut String, r: &mut Reader<'_>) -> Result<(), MalformedBson> {
    let len = r.len()?;
    let subtype = r.u8()?;
    let mut data = r.take(len)?;
    // The old binary subtype carries its own length prefix, which the Go
    // driver strips before printing.
    if subtype == 0x02
        && let Some((prefix, rest)) = data.split_first_chunk::<4>()
        && usize::try_from(i32::from_le_bytes(*prefix)) == Ok(rest.len())
    {
        data = rest;
    }
    out.push_str(r#"{"$binary":{"base64":""#);
    out.push_str(&STANDARD.encode(data));
    out.push_str(r#"","subType":""#);
    out.push_str(&hex(&[subtype]));
    out.push_str("\"}}");
    Ok(())
}

fn write_oid(out: &mut String, id: &[u8; 12]) {
    out.push_str(r#"{"$oid":""#);
    out.push_str(&hex(id));
    out.push_str("\"}");
}

/// `{"<key>":"<value>"}`, for the wrappers whose value needs no escaping.
fn wrap_str(out: &mut String, key: &str, value: &str) {
    out.push_str("{\"");
    out.push_str(key);
    out.push_str("\":\"");
    out.push_str(value);
    out.push_str("\"}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::spec::BinarySubtype;
    use bson::{
        Binary, Bson, DateTime, Decimal128, JavaScriptCodeWithScope, Regex, Timestamp, doc,
        oid::ObjectId,
    };

    fn render(d: &bson::Document) -> String {
        document_to_string(d).unwrap()
    }

    #[test]
    fn index_spec_matches_mongodump() {
        // The shape of mongo-tools' own testdata metadata files.
        let d = doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" };
        assert_eq!(
            render(&d),
            r#"{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}"#
        );
        let d = doc! { "key": { "f": 1.0 }, "expireAfterSeconds": 1000_i64 };
        assert_eq!(
            render(&d),
            r#"{"key":{"f":{"$numberDouble":"1.0"}},"expireAfterSeconds":{"$numberLong":"1000"}}"#
        );
    }

    #[test]
    fn every_type_is_canonical() {
        let oid = ObjectId::from_bytes([0x5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a]);
        let d = doc! {
            "s": "x\"y",
            "arr": [1, "two", { "three": 3_i64 }],
            "empty_doc": {},
            "empty_arr": [],
            "bin": Binary { subtype: BinarySubtype::Uuid, bytes: vec![0xde, 0xad] },
            "oid": oid,
            "t": true,
            "f": false,
            "date": DateTime::from_millis(-1),
            "null": Bson::Null,
            "re": Regex { pattern: "^a\\d".try_into().unwrap(), options: "xmi".try_into().unwrap() },
            "code": Bson::JavaScriptCode("f()".to_owned()),
            "scoped": JavaScriptCodeWithScope { code: "g()".to_owned(), scope: doc! { "k": 1 } },
            "sym": Bson::Symbol("sym".to_owned()),
            "undef": Bson::Undefined,
            "ts": Timestamp { time: 7, increment: 9 },
            "dec": "1.50".parse::<Decimal128>().unwrap(),
            "min": Bson::MinKey,
            "max": Bson::MaxKey,
            "nan": f64::NAN,
        };
        let want = concat!(
            r#"{"s":"x\"y","arr":[{"$numberInt":"1"},"two",{"three":{"$numberLong":"3"}}],"#,
            r#""empty_doc":{},"empty_arr":[],"#,
            r#""bin":{"$binary":{"base64":"3q0=","subType":"04"}},"#,
            r#""oid":{"$oid":"5f000000000000000000002a"},"t":true,"f":false,"#,
            r#""date":{"$date":{"$numberLong":"-1"}},"null":null,"#,
            r#""re":{"$regularExpression":{"pattern":"^a\\d","options":"imx"}},"#,
            r#""code":{"$code":"f()"},"#,
            r#""scoped":{"$code":"g()","$scope":{"k":{"$numberInt":"1"}}},"#,
            r#""sym":{"$symbol":"sym"},"undef":{"$undefined":true},"#,
            r#""ts":{"$timestamp":{"t":7,"i":9}},"dec":{"$numberDecimal":"1.50"},"#,
            r#""min":{"$minKey":1},"max":{"$maxKey":1},"nan":{"$numberDouble":"NaN"}}"#,
        );
        assert_eq!(render(&d), want);
    }

    #[test]
    fn db_pointer_and_old_binary_from_raw_bytes() {
        // {p: DBPointer("a.b", oid 0x01..0x0c), b: Binary(0x02, "hi")}
        let mut raw = Vec::new();
        raw.extend_from_slice(&[0; 4]);
        raw.push(0x0C);
        raw.extend_from_slice(b"p\0");
        raw.extend_from_slice(&4_i32.to_le_bytes());
        raw.extend_from_slice(b"a.b\0");
        raw.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        raw.push(0x05);
        raw.extend_from_slice(b"b\0");
        raw.extend_from_slice(&6_i32.to_le_bytes());
        raw.push(0x02);
        raw.extend_from_slice(&2_i32.to_le_bytes());
        raw.extend_from_slice(b"hi");
        raw.push(0);
        let len = raw.len() as i32;
        raw[..4].copy_from_slice(&len.to_le_bytes());
        let mut out = String::new();
        write_document(&mut out, &raw).unwrap();
        assert_eq!(
            out,
            concat!(
                r#"{"p":{"$dbPointer":{"$ref":"a.b","$id":{"$oid":"0102030405060708090a0b0c"}}},"#,
                r#""b":{"$binary":{"base64":"aGk=","subType":"02"}}}"#
            )
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = doc! { "a": { "b": [1, 2] }, "s": "str" }.to_vec().unwrap();
        for cut in 0..good.len() {
            let mut out = String::new();
            assert!(
                write_document(&mut out, &good[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
        let mut bad_tag = good.clone();
        bad_tag[4] = 0x42;
        assert!(write_document(&mut String::new(), &bad_tag).is_err());
        let mut lying = good.clone();
        lying[0] = lying[0].wrapping_add(1);
        assert!(write_document(&mut String::new(), &lying).is_err());
    }
}
