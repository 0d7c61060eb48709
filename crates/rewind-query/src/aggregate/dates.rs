//! Date expressions: the date parts (`$year` ... `$isoDayOfWeek`) and `$dateToString`, in
//! UTC or at a fixed offset (`+05:30`). A named time zone other than UTC (`Europe/Paris`) is
//! refused (238): rewind carries no time-zone database, and computing in UTC instead would
//! be silently wrong.

use bson::{Bson, Document};
use time::{OffsetDateTime, UtcOffset};

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
            40536,
            format!(
                "{name} accepts exactly one argument if given an array, but was given {}",
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

/// A time zone: `Ok(None)` when it is null (the result is then null), else its offset from
/// UTC. `not_string` makes the operator's error for a zone that is no string.
fn zone(
    timezone: Option<Bson>,
    name: &str,
    not_string: fn(String) -> QueryError,
) -> QueryResult<Option<UtcOffset>> {
    let tz = match timezone {
        None => return Ok(Some(UtcOffset::UTC)),
        Some(Bson::Null | Bson::Undefined) => return Ok(None),
        Some(Bson::String(tz)) => tz,
        Some(other) => {
            return Err(not_string(format!(
                "timezone must evaluate to a string, found {}",
                type_alias(&other)
            )));
        }
    };
    if UTC_NAMES.contains(&tz.as_str()) {
        return Ok(Some(UtcOffset::UTC));
    }
    if tz.starts_with(['+', '-']) || tz == "Z" {
        return fixed_offset(&tz).map(Some).ok_or_else(|| {
            QueryError::location(
                40485,
                format!("unrecognized time zone identifier: \"{tz}\""),
            )
        });
    }
    Err(QueryError::not_implemented(format!(
        "{name} with timezone '{tz}' is not supported by rewind (UTC and fixed offsets only)"
    )))
}

/// `t` at `offset`, refused (18537) past the years the calendar holds.
fn local(t: OffsetDateTime, offset: UtcOffset, name: &str) -> QueryResult<OffsetDateTime> {
    t.checked_to_offset(offset).ok_or_else(|| {
        QueryError::location(
            18537,
            format!("{name}: the date is outside years -9999 to 9999 at offset {offset}"),
        )
    })
}

/// `±HH`, `±HHMM` or `±HH:MM`, as mongod reads an offset.
pub(super) fn fixed_offset(tz: &str) -> Option<UtcOffset> {
    let (sign, digits) = match tz.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let digits: String = match digits.as_bytes() {
        [_, _] | [_, _, _, _] => digits.to_owned(),
        [a, b, b':', c, d] => String::from_utf8(vec![*a, *b, *c, *d]).ok()?,
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits.get(..2)?.parse().ok()?;
    let minutes: i8 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// Evaluates a date part operator over `[date, timezone]`: the date first (a null one is
/// null whatever the zone), then the zone.
pub(super) fn date_part(
    part: DatePart,
    name: &str,
    args: &[Expr],
    doc: &Document,
) -> QueryResult<Bson> {
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let Some(t) = date_of(arg(0)?, name)? else {
        return Ok(Bson::Null);
    };
    let Some(offset) = zone(arg(1)?, name, |m| QueryError::location(40533, m))? else {
        return Ok(Bson::Null);
    };
    let t = local(t, offset, name)?;
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

/// Evaluates `$dateToString` over `[date, format, timezone, onNull]`, in mongod 8's order: a
/// format that is neither a string nor null fails, the zone is checked, then a null date
/// gives `onNull`, and only then does a null zone or format give null.
pub(super) fn date_to_string(args: &[Expr], doc: &Document) -> QueryResult<Option<Bson>> {
    const NAME: &str = "$dateToString";
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let format = match arg(1)? {
        None => Some("%Y-%m-%dT%H:%M:%S.%LZ".to_owned()),
        Some(Bson::String(f)) => {
            check_format(&f)?;
            Some(f)
        }
        Some(Bson::Null | Bson::Undefined) => None,
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
    let offset = zone(arg(2)?, NAME, |m| QueryError::location(40517, m))?;
    let Some(t) = date_of(arg(0)?, NAME)? else {
        return args
            .get(3)
            .map_or(Ok(Some(Bson::Null)), |e| e.evaluate_opt(doc));
    };
    let (Some(offset), Some(format)) = (offset, format) else {
        return Ok(Some(Bson::Null));
    };
    render(&format, local(t, offset, NAME)?).map(|text| Some(Bson::String(text)))
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
                'b' | 'B' | 'd' | 'G' | 'H' | 'j' | 'L' | 'm' | 'M' | 'S' | 'w' | 'u' | 'U' | 'V'
                | 'Y' | 'z' | 'Z' | '%',
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

/// Renders a checked format for `t` (at its offset). A year outside 0–9999 fails where a
/// four-digit year is printed (`%Y`, `%G`), as in mongod.
fn render(format: &str, t: OffsetDateTime) -> QueryResult<String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let year = |y: i32| {
        if (0..=9999).contains(&y) {
            Ok(format!("{y:04}"))
        } else {
            Err(QueryError::location(
                18537,
                format!(
                    "Could not convert date to string: date component was outside the supported \
                     range of 0-9999: {y}"
                ),
            ))
        }
    };
    let month = MONTHS
        .get(usize::from(u8::from(t.month())) - 1)
        .copied()
        .unwrap_or_default();
    let offset_minutes = i32::from(t.offset().whole_minutes());
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    let (iso_year, iso_week, _) = t.to_iso_week_date();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let text = match chars.next() {
            Some('b') => month.get(..3).unwrap_or_default().to_owned(),
            Some('B') => month.to_owned(),
            Some('d') => format!("{:02}", t.day()),
            Some('G') => year(iso_year)?,
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
            Some('Y') => year(t.year())?,
            // The offset as +hhmm, and as minutes (mongod writes them unpadded, unsigned 0).
            Some('z') => {
                let sign = if offset_minutes < 0 { '-' } else { '+' };
                let minutes = offset_minutes.unsigned_abs();
                format!("{sign}{:02}{:02}", minutes / 60, minutes % 60)
            }
            Some('Z') => offset_minutes.to_string(),
            _ => "%".to_owned(),
        };
        out.push_str(&text);
    }
    Ok(out)
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
            render("%Y-%m-%dT%H:%M:%S.%LZ", t).ok().as_deref(),
            Some("2021-01-03T13:04:05.678Z")
        );
        assert_eq!(
            render("%G-W%V-%u %U %w %j %z %Z %b %B %%", t)
                .ok()
                .as_deref(),
            Some("2020-W53-7 01 1 003 +0000 0 Jan January %")
        );
        assert!(check_format("%Y %q").is_err_and(|e| e.code == 18536));
        assert!(check_format("100%").is_err_and(|e| e.code == 18535));
        // At a fixed offset: the local time, and the offset itself.
        let offset = fixed_offset("-05:30").unwrap_or(UtcOffset::UTC);
        assert_eq!(
            render("%Y-%m-%d %H:%M %z %Z", t.to_offset(offset))
                .ok()
                .as_deref(),
            Some("2021-01-03 07:34 -0530 -330")
        );
        for tz in ["+05", "+0530", "-05:30", "+00:00"] {
            assert!(fixed_offset(tz).is_some(), "{tz}");
        }
        for tz in ["Z", "+5", "+05:3", "05:30", "+ab", "+1:::2", "+:1:23"] {
            assert!(fixed_offset(tz).is_none(), "{tz}");
        }
        // A local time past the calendar's years is an error, not a panic.
        let last = date_of(
            Some(Bson::DateTime(DateTime::from_millis(253_402_299_000_000))),
            "t",
        );
        let last = last.ok().flatten().unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(last.year(), 9999);
        let plus_one = fixed_offset("+01").unwrap_or(UtcOffset::UTC);
        assert!(local(last, plus_one, "t").is_err_and(|e| e.code == 18537));
        // A year before 0 prints nowhere a four-digit year is asked for; other parts print.
        let far = at(-62_200_000_000_000);
        assert!(far.year() < 0);
        assert!(render("%Y", far).is_err_and(|e| e.code == 18537));
        assert!(render("%m-%d %H", far).is_ok());
    }
}
