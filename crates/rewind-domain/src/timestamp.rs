//! Wall-clock instants with millisecond precision, rendered the way Atlas renders dates.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, UTC. Stored as an integer in every metadata store so
/// SQLite and PostgreSQL agree; rendered as ISO-8601 `2025-05-04T09:42:00Z` at the API edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// From milliseconds since the epoch.
    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// From whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (floor).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved by `millis` (negative moves back).
    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// This instant moved forward by whole days.
    pub fn plus_days(self, days: i64) -> Self {
        self.plus_millis(days.saturating_mul(86_400_000))
    }

    /// ISO-8601 in UTC with second precision and a `Z`, as Atlas writes dates.
    pub fn to_iso8601(self) -> String {
        let datetime =
            OffsetDateTime::from_unix_timestamp(self.secs()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        datetime
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_iso8601())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_atlas() {
        assert_eq!(
            Timestamp::from_secs(1_746_351_720).to_iso8601(),
            "2025-05-04T09:42:00Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_746_351_720_999).to_iso8601(),
            "2025-05-04T09:42:00Z"
        );
    }
}
