//! Date expressions in UTC: the date parts (`$year` ... `$isoDayOfWeek`) and
//! `$dateToString`. A time zone other than UTC is refused (238): rewind carries no time-zone
//! database, and computing in UTC instead would be silently wrong.

use bson::{Bson, Document};
use time::OffsetDateTime;

use super::expr::Expr;
use crate::error::{QueryError, QueryResult};
use crate::types::type_alias;

/// Which part of a date an operator returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    /// `$year`
    Year,
    /// `$month` (1–12)
    Month,
    /// `$dayOfMonth` (1–31)
    DayOfMonth,
    /// `$hour`
    Hour,
    /// `$minute`
    Minute,
    /// `$second`
    Second,
    /// `$millisecond`
    Millisecond,
    /// `$dayOfYear` (1–366)
    DayOfYear,
    /// `$dayOfWeek` (1 Sunday – 7 Saturday)
    DayOfWeek,
    /// `$week` (0–53, weeks starting on Sunday)
    Week,
    /// `$isoWeek` (1–53)
    IsoWeek,
    /// `$isoWeekYear`
    IsoWeekYear,
    /// `$isoDayOfWeek` (1 Monday – 7 Sunday)
    IsoDayOfWeek,
}

/// Time-zone names that are UTC.
const UTC_NAMES: &[&str] = &[
    "UTC",
    "GMT",
    "Z",
    "Etc/UTC",
    "Etc/GMT",
    "Etc/Zulu",
    "Etc/Universal",
    "Universal",
    "Zulu",
    "UCT",
    "Etc/UCT",
    "GMT0",
    "Greenwich",
    "+00:00",
    "+0000",
    "+00",
    "-00:00",
    "-0000",
    "-00",
];

/// Parses a date operator's argument: an expression, a one-element array, or
/// `{date, timezone}`. Returns `[date, timezone]` (`$$REMOVE` when no time zone is given).
pub(super) fn parse_date_argument(name: &str, arg: &Bson) -> QueryResult<Vec<Expr>> {
    match arg {
        Bson::Document(spec) if !spec.keys().next().is_some_and(|k| k.starts_with('$')) => {
            if let Some(other) = spec
                .keys()
                .find(|k| !matches!(k.as_str(), "date" | "timezone"))
            {
                return Err(QueryError::location(
                    40535,
                    format!("unrecognized option to {name}: \"{other}\""),
                ));
            }
            let date = spec.get("date").ok_or_else(|| {
                QueryError::location(
                    40539,
                    format!("missing 'date' argument to {name}, provided: {spec}"),
                )
            })?;
            Ok(vec![Expr::parse(date)?, optional(spec, "timezone")?])
        }
        Bson::Array(items) if items.len() == 1 => Ok(vec![Expr::parse(&items[0])?, Expr::Remove]),
        Bson::Array(items) => Err(QueryError::location(
            16020,
            format!(
                "Expression {name} takes exactly 1 arguments. {} were passed in.",
                items.len()
            ),
        )),
        single => Ok(vec![Expr::parse(single)?, Expr::Remove]),
    }
}

/// Parses `$dateToString`'s `{date, format, timezone, onNull}` into
/// `[date, format, timezone, onNull]` (`$$REMOVE` for an absent option; an absent `onNull`
/// is `null`, what a null date gives without one).
pub(super) fn parse_date_to_string(arg: &Bson) -> QueryResult<Vec<Expr>> {
    let Bson::Document(spec) = arg else {
        return Err(QueryError::location(
            18629,
            "$dateToString only supports an object as its argument",
        ));
    };
    if let Some(other) = spec
        .keys()
        .find(|k| !matches!(k.as_str(), "date" | "format" | "timezone" | "onNull"))
    {
        return Err(QueryError::location(
            18534,
            format!("Unrecognized argument to $dateToString: {other}"),
        ));
    }
    let date = spec
        .get("date")
        .ok_or_else(|| QueryError::location(18628, "Missing 'date' parameter to $dateToString"))?;
    let on_null = match spec.get("onNull") {
        Some(value) => Expr::parse(value)?,
        None => Expr::Literal(Bson::Null),
    };
    Ok(vec![
        Expr::parse(date)?,
        optional(spec, "format")?,
        optional(spec, "timezone")?,
        on_null,
    ])
}

fn optional(spec: &Document, field: &str) -> QueryResult<Expr> {
    spec.get(field).map_or(Ok(Expr::Remove), Expr::parse)
}

/// The date a value stands for, `None` for null or missing (the result is then null).
fn date_of(value: Option<Bson>, name: &str) -> QueryResult<Option<OffsetDateTime>> {
    let millis = match value {
        None | Some(Bson::Null | Bson::Undefined) => return Ok(None),
        Some(Bson::DateTime(d)) => d.timestamp_millis(),
        Some(Bson::Timestamp(t)) => i64::from(t.time) * 1000,
        Some(Bson::ObjectId(oid)) => oid.timestamp().timestamp_millis(),
        Some(other) => {
            return Err(QueryError::location(
                16006,
                format!(
                    "can't convert from BSON type {} to Date",
                    type_alias(&other)
                ),
            ));
        }
    };
    let nanos = i128::from(millis) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(Some)
        .map_err(|_| {
            QueryError::location(
                18537,
                format!("{name}: the date is outside years -9999 to 9999"),
            )
        })
}

/// Checks a time zone: `Ok(false)` when it is null (the result is then null).
fn utc(timezone: Option<Bson>, name: &str) -> QueryResult<bool> {
    match timezone {
        None => Ok(true),
        Some(Bson::Null | Bson::Undefined) => Ok(false),
        Some(Bson::String(tz)) if UTC_NAMES.contains(&tz.as_str()) => Ok(true),
        Some(Bson::String(tz)) => Err(QueryError::not_implemented(format!(
            "{name} with timezone '{tz}' is not supported by rewind (only UTC)"
        ))),
        Some(other) => Err(QueryError::location(
            40517,
            format!(
                "timezone must evaluate to a string, found {}",
                type_alias(&other)
            ),
        )),
    }
}

/// Evaluates a date part operator over `[date, timezone]`.
pub(super) fn date_part(
    part: DatePart,
    name: &str,
    args: &[Expr],
    doc: &Document,
) -> QueryResult<Bson> {
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let (date, timezone) = (arg(0)?, arg(1)?);
    if !utc(timezone, name)? {
        return Ok(Bson::Null);
    }
    let Some(t) = date_of(date, name)? else {
        return Ok(Bson::Null);
    };
    let (iso_year, iso_week, _) = t.to_iso_week_date();
    let value = match part {
        DatePart::Year => t.year(),
        DatePart::Month => i32::from(u8::from(t.month())),
        DatePart::DayOfMonth => i32::from(t.day()),
        DatePart::Hour => i32::from(t.hour()),
        DatePart::Minute => i32::from(t.minute()),
        DatePart::Second => i32::from(t.second()),
        DatePart::Millisecond => i32::from(t.millisecond()),
        DatePart::DayOfYear => i32::from(t.ordinal()),
        DatePart::DayOfWeek => i32::from(t.weekday().number_from_sunday()),
        DatePart::Week => i32::from(t.sunday_based_week()),
        DatePart::IsoWeek => i32::from(iso_week),
        DatePart::IsoWeekYear => iso_year,
        DatePart::IsoDayOfWeek => i32::from(t.weekday().number_from_monday()),
    };
    Ok(Bson::Int32(value))
}

/// Evaluates `$dateToString` over `[date, format, timezone, onNull]`.
pub(super) fn date_to_string(args: &[Expr], doc: &Document) -> QueryResult<Option<Bson>> {
    const NAME: &str = "$dateToString";
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let format = match arg(1)? {
        None => None,
        Some(Bson::String(f)) => Some(f),
        Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
        Some(other) => {
            return Err(QueryError::location(
                18533,
                format!(
                    "$dateToString requires that 'format' be a string, found: {} with value {other}",
                    type_alias(&other)
                ),
            ));
        }
    };
    if let Some(format) = &format {
        check_format(format)?;
    }
    if !utc(arg(2)?, NAME)? {
        return Ok(Some(Bson::Null));
    }
    let Some(t) = date_of(arg(0)?, NAME)? else {
        return args
            .get(3)
            .map_or(Ok(Some(Bson::Null)), |e| e.evaluate_opt(doc));
    };
    if !(0..=9999).contains(&t.year()) {
        return Err(QueryError::location(
            18537,
            format!(
                "Could not convert date to string: date component was outside the supported \
                 range of 0-9999: {}",
                t.year()
            ),
        ));
    }
    let format = format.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S.%LZ");
    Ok(Some(Bson::String(render(format, t))))
}

/// Refuses a format with an unknown specifier (18536) or a lone `%` at its end (18535).
fn check_format(format: &str) -> QueryResult<()> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            None => {
                return Err(QueryError::location(
                    18535,
                    "Unmatched '%' at end of format string",
                ));
            }
            Some(
                'd' | 'G' | 'H' | 'j' | 'L' | 'm' | 'M' | 'S' | 'w' | 'u' | 'U' | 'V' | 'Y' | 'z'
                | 'Z' | '%',
            ) => {}
            Some(other) => {
                return Err(QueryError::location(
                    18536,
                    format!("Invalid format character '%{other}' in format string"),
                ));
            }
        }
    }
    Ok(())
}

/// Renders a checked format in UTC.
fn render(format: &str, t: OffsetDateTime) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    let (iso_year, iso_week, _) = t.to_iso_week_date();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let text = match chars.next() {
            Some('d') => format!("{:02}", t.day()),
            Some('G') => format!("{iso_year:04}"),
            Some('H') => format!("{:02}", t.hour()),
            Some('j') => format!("{:03}", t.ordinal()),
            Some('L') => format!("{:03}", t.millisecond()),
            Some('m') => format!("{:02}", u8::from(t.month())),
            Some('M') => format!("{:02}", t.minute()),
            Some('S') => format!("{:02}", t.second()),
            Some('w') => t.weekday().number_from_sunday().to_string(),
            Some('u') => t.weekday().number_from_monday().to_string(),
            Some('U') => format!("{:02}", t.sunday_based_week()),
            Some('V') => format!("{iso_week:02}"),
            Some('Y') => format!("{:04}", t.year()),
            // UTC: no offset.
            Some('z') => "+0000".to_owned(),
            Some('Z') => "+0".to_owned(),
            _ => "%".to_owned(),
        };
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use bson::DateTime;

    use super::*;

    fn at(millis: i64) -> OffsetDateTime {
        date_of(Some(Bson::DateTime(DateTime::from_millis(millis))), "t")
            .ok()
            .flatten()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn formats_in_utc() {
        // 2021-01-03 was a Sunday, in ISO week 53 of 2020.
        let t = at(1_609_679_045_678);
        assert_eq!(
            render("%Y-%m-%dT%H:%M:%S.%LZ", t),
            "2021-01-03T13:04:05.678Z"
        );
        assert_eq!(
            render("%G-W%V-%u %U %w %j %z %Z %%", t),
            "2020-W53-7 01 1 003 +0000 +0 %"
        );
        assert!(check_format("%Y %q").is_err_and(|e| e.code == 18536));
        assert!(check_format("100%").is_err_and(|e| e.code == 18535));
    }
}
