//! The Go MongoDB driver's text formatting, reproduced byte for byte so that
//! metadata reads exactly as mongodump writes it: its JSON string escaping
//! (`writeStringWithEscapes` with HTML escaping off) and its double
//! formatting (`formatDouble`: `strconv.FormatFloat(f, 'G', -1, 64)`, plus
//! `.0` when the result has neither a point nor an exponent).

use std::fmt::Write as _;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` to `out` as a JSON string the way the Go driver escapes it:
/// `"` and `\` backslashed, `\n` `\r` `\t` by name, other control bytes as
/// `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029`, and each byte of invalid
/// UTF-8 as `\ufffd`. Everything else, DEL and `<>&` included, is verbatim.
pub(crate) fn write_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c if (c as u32) < 0x20 => {
                    let b = c as u32 as usize;
                    out.push_str("\\u00");
                    out.push(char::from(HEX[b >> 4]));
                    out.push(char::from(HEX[b & 0xf]));
                }
                c => out.push(c),
            }
        }
        // Go decodes invalid UTF-8 one byte at a time, one U+FFFD each.
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The Go driver's `formatDouble`.
pub(crate) fn format_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let s = format_g_shortest(f);
    if s.contains(['E', '.']) { s } else { s + ".0" }
}

/// `strconv.FormatFloat(f, 'G', -1, 64)` for a finite `f`.
///
/// Both Go and Rust print the shortest digit string that reads back as the
/// same double, so the digits come from Rust's `{:e}` and only the layout is
/// Go's: exponent form when the decimal exponent is below -4 or at least 6
/// (Go's rule for the shortest precision), plain form otherwise.
fn format_g_shortest(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();

    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        push_digit(&mut out, digits.first().copied().unwrap_or(b'0'));
        if digits.len() > 1 {
            out.push('.');
            digits[1..].iter().for_each(|&d| push_digit(&mut out, d));
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "E{sign}{:02}", exp.unsigned_abs());
        return out;
    }
    // Plain form: `point` digits before the decimal point (exp + 1).
    let point = exp + 1;
    if point <= 0 {
        out.push('0');
    } else {
        for i in 0..point {
            push_digit(&mut out, digit_at(&digits, i));
        }
    }
    let n = digits.len() as i32;
    if n > point {
        out.push('.');
        for i in point..n {
            push_digit(&mut out, digit_at(&digits, i));
        }
    }
    out
}

/// The `i`th significant digit, zero outside the digit string.
fn digit_at(digits: &[u8], i: i32) -> u8 {
    usize::try_from(i)
        .ok()
        .and_then(|i| digits.get(i).copied())
        .unwrap_or(b'0')
}

fn push_digit(out: &mut String, d: u8) {
    out.push(char::from(d));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &[u8]) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn doubles_match_go_format_double() {
        // Expected values are what Go's strconv.FormatFloat('G', -1) gives,
        // with formatDouble's ".0" rule applied.
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (100000.0, "100000.0"),
            (123456.0, "123456.0"),
            (1e6, "1E+06"),
            (1234567.0, "1.234567E+06"),
            (1e21, "1E+21"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1E-05"),
            (1.5e-7, "1.5E-07"),
            (std::f64::consts::PI, "3.141592653589793"),
            (2.5e-5, "2.5E-05"),
            (123.456, "123.456"),
            (0.1, "0.1"),
            (1e100, "1E+100"),
            (5e-324, "5E-324"),
            (f64::MAX, "1.7976931348623157E+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(format_double(*f), *want, "formatting {f:e}");
        }
    }

    #[test]
    fn strings_are_escaped_like_go() {
        assert_eq!(escaped(b"plain"), r#""plain""#);
        assert_eq!(escaped(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            escaped(b"\n\r\t\x08\x0c\x01\x1f"),
            r#""\n\r\t\u0008\u000c\u0001\u001f""#
        );
        assert_eq!(escaped(b"<>&\x7f"), "\"<>&\x7f\"");
        assert_eq!(
            escaped("caf\u{e9}\u{2028}\u{2029}".as_bytes()),
            "\"caf\u{e9}\\u2028\\u2029\""
        );
        assert_eq!(escaped(b"a\xffb\xe2\x82"), r#""a\ufffdb\ufffd\ufffd""#);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
