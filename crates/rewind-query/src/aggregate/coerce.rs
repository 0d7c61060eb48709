//! The string form mongod gives a value where an expression wants a string (`$toUpper`,
//! `$toLower`): `Value::coerceToString`.

use bson::{Bson, DateTime, Timestamp};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

use crate::error::{QueryError, QueryResult};
use crate::types::type_alias;

/// `value` as a string: numbers in the server's notation, dates in ISO 8601 UTC with
/// milliseconds, null and missing as `""`; other types are refused (code 16007).
pub(super) fn coerce_to_string(value: Option<Bson>) -> QueryResult<String> {
    Ok(match value {
        None | Some(Bson::Null | Bson::Undefined) => String::new(),
        Some(Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s)) => s,
        Some(Bson::Int32(i)) => i.to_string(),
        Some(Bson::Int64(i)) => i.to_string(),
        Some(Bson::Double(f)) => format_double(f),
        Some(Bson::Decimal128(d)) => d.to_string(),
        Some(Bson::DateTime(date)) => iso_date(date)?,
        Some(Bson::Timestamp(ts)) => timestamp(ts),
        Some(other) => {
            return Err(QueryError::location(
                16007,
                format!(
                    "can't convert from BSON type {} to String",
                    type_alias(&other)
                ),
            ));
        }
    })
}

/// A double as C's `%g` prints it (six significant digits), which is how the server's
/// string builder writes doubles: `1.23457`, `1e+20`, `100000`, `1e-05`.
fn format_double(f: f64) -> String {
    const PRECISION: i32 = 6;
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The exponent after rounding to the precision (5 digits after the first) decides the
    // notation.
    let scientific = format!("{f:.5e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..PRECISION).contains(&exponent) {
        let decimals = usize::try_from(PRECISION - 1 - exponent).unwrap_or(0);
        strip_zeros(&format!("{f:.decimals$}")).to_owned()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_zeros(mantissa),
            exponent.unsigned_abs()
        )
    }
}

/// `%g` drops trailing zeros of the fraction, and the point when nothing follows it.
fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the server's `kIsoFormatStringZ`, for years 0 to 9999 (the
/// server's range; others fail with 18537).
fn iso_date(date: DateTime) -> QueryResult<String> {
    const ISO: &[FormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let millis = date.timestamp_millis();
    let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok();
    match utc {
        Some(utc) if (0..=9999).contains(&utc.year()) => Ok(utc.format(ISO).unwrap_or_default()),
        // Beyond what the calendar type holds, the year is past ±9999 anyway.
        other => Err(QueryError::location(
            18537,
            format!(
                "Could not convert date to string: date component was outside the supported \
                 range of 0-9999: {}",
                other.map_or_else(|| "beyond 9999".to_owned(), |t| t.year().to_string())
            ),
        )),
    }
}

/// The server's `Timestamp::toStringPretty`: its seconds as C's `ctime` prints them without
/// weekday and year (`Jan  2 03:04:05`, in UTC here), then `:` and the increment.
fn timestamp(ts: Timestamp) -> String {
    const CTIME: &[FormatItem<'_>] =
        format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second]");
    let utc = OffsetDateTime::from_unix_timestamp(i64::from(ts.time))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{}:{}", utc.format(CTIME).unwrap_or_default(), ts.increment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_percent_g() {
        for (value, text) in [
            (1.234_567_89, "1.23457"),
            (1e20, "1e+20"),
            (1e8, "1e+08"),
            (100_000.0, "100000"),
            (1_000_000.0, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5, "2.5"),
            (-3.0, "-3"),
            (999_999.5, "1e+06"),
            (0.1, "0.1"),
        ] {
            assert_eq!(format_double(value), text, "{value}");
        }
    }

    #[test]
    fn dates_print_in_iso_utc_with_milliseconds() {
        let date = DateTime::from_millis(1_577_934_245_678);
        assert_eq!(
            iso_date(date).ok().as_deref(),
            Some("2020-01-02T03:04:05.678Z")
        );
        assert_eq!(
            iso_date(DateTime::from_millis(-1)).ok().as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
        // Just before year 0, and year 10000: outside the server's range.
        let code = |millis| iso_date(DateTime::from_millis(millis)).map_err(|e| e.code);
        assert_eq!(code(-62_167_219_200_001), Err(18537));
        assert_eq!(code(253_402_300_800_000), Err(18537));
        assert_eq!(
            timestamp(Timestamp {
                time: 1_577_934_245,
                increment: 7
            }),
            "Jan  2 03:04:05:7"
        );
    }
}
