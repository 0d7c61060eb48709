//! Backup schedules: when snapshots are taken and how long they are kept.

use serde_json::Value;

use crate::fields::{BodyReader, invalid, wrong_type};
use crate::snapshot::RetentionUnit;
use crate::{DomainError, ObjectId, Timestamp};

/// How often a policy item takes a snapshot.
const FREQUENCY_TYPES: &[&str] = &["hourly", "daily", "weekly", "monthly", "yearly"];
/// The intervals Atlas's schema allows (`40` means the last day of the month).
const FREQUENCY_INTERVALS: &[i32] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 40,
];

/// One rule of a schedule: take a snapshot every `interval` `frequency`, keep it for
/// `retention_value` `retention_unit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyItem {
    /// Unique id.
    pub id: ObjectId,
    /// `hourly`, `daily`, `weekly`, `monthly` or `yearly`.
    pub frequency_type: String,
    /// Hours for hourly, day of week for weekly, day of month for monthly, month for yearly.
    pub frequency_interval: i32,
    /// Unit of the retention.
    pub retention_unit: RetentionUnit,
    /// Number of retention units.
    pub retention_value: i32,
}

impl PolicyItem {
    /// Retention in days.
    pub fn retention_days(&self) -> i64 {
        i64::from(self.retention_value) * self.retention_unit.days()
    }
}

/// A cluster's backup schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupSchedule {
    /// The cluster it belongs to.
    pub cluster_id: ObjectId,
    /// Hour of day (UTC) snapshots are anchored to.
    pub reference_hour_of_day: i32,
    /// Minute of the hour snapshots are anchored to.
    pub reference_minute_of_hour: i32,
    /// Days back a point-in-time restore may reach.
    pub restore_window_days: i32,
    /// Id of the single policy.
    pub policy_id: ObjectId,
    /// The policy's rules.
    pub policy_items: Vec<PolicyItem>,
    /// Whether snapshots are exported automatically.
    pub auto_export_enabled: bool,
    /// Whether export prefixes use org and project names.
    pub use_org_and_group_names_in_export_prefix: bool,
    /// Whether copy settings follow the policy automatically (2024-08-05).
    pub auto_copy_settings_enabled: bool,
    /// Whether copies follow policy items.
    pub copy_policy_items_enabled: bool,
    /// Copy settings, validated and stored in the 2023-01-01 shape (`replicationSpecId`);
    /// see [`BackupSchedule::copy_settings_for`].
    pub copy_settings: Vec<Value>,
    /// Extra retention settings, recorded and echoed as sent.
    pub extra_retention_settings: Vec<Value>,
}

impl BackupSchedule {
    /// The schedule Atlas gives a new cluster with backup on: every 6 hours kept 7 days,
    /// daily kept 7 days, weekly kept 4 weeks, monthly kept 12 months, yearly kept 1 year,
    /// and a 7-day restore window. The reference time is the creation time.
    pub fn atlas_default(cluster_id: ObjectId, created_at: Timestamp) -> Self {
        let seconds_of_day = created_at.secs().rem_euclid(86_400);
        let item = |frequency_type: &str, interval, unit, value| PolicyItem {
            id: ObjectId::generate(),
            frequency_type: frequency_type.to_owned(),
            frequency_interval: interval,
            retention_unit: unit,
            retention_value: value,
        };
        Self {
            cluster_id,
            reference_hour_of_day: (seconds_of_day / 3600) as i32,
            reference_minute_of_hour: ((seconds_of_day % 3600) / 60) as i32,
            restore_window_days: 7,
            policy_id: ObjectId::generate(),
            policy_items: vec![
                item("hourly", 6, RetentionUnit::Days, 7),
                item("daily", 1, RetentionUnit::Days, 7),
                item("weekly", 6, RetentionUnit::Weeks, 4),
                item("monthly", 40, RetentionUnit::Months, 12),
                item("yearly", 12, RetentionUnit::Years, 1),
            ],
            auto_export_enabled: false,
            use_org_and_group_names_in_export_prefix: false,
            auto_copy_settings_enabled: false,
            copy_policy_items_enabled: false,
            copy_settings: Vec::new(),
            extra_retention_settings: Vec::new(),
        }
    }

    /// The schedule after `DELETE .../backup/schedule`: no policy items, so nothing is taken.
    pub fn cleared(&self) -> Self {
        Self {
            policy_items: Vec::new(),
            copy_settings: Vec::new(),
            extra_retention_settings: Vec::new(),
            auto_export_enabled: false,
            ..self.clone()
        }
    }

    /// The next instant after `now` at which a policy item is due, if any item exists.
    /// Hourly items recur every `interval` hours from the reference time; every other item is
    /// due at the daily reference time, which is when Atlas evaluates them.
    pub fn next_snapshot(&self, now: Timestamp) -> Option<Timestamp> {
        let reference_secs = i64::from(self.reference_hour_of_day) * 3600
            + i64::from(self.reference_minute_of_hour) * 60;
        let now_secs = now.secs();
        self.policy_items
            .iter()
            .map(|item| {
                let period = if item.frequency_type == "hourly" {
                    i64::from(item.frequency_interval.max(1)) * 3600
                } else {
                    86_400
                };
                let since_reference = (now_secs - reference_secs).rem_euclid(period);
                Timestamp::from_secs(now_secs - since_reference + period)
            })
            .min()
    }

    /// The latest instant at or before `now` when policy items were due, with those items.
    /// Hourly items recur every `frequencyInterval` hours from the reference time; daily items
    /// at the reference time; weekly ones on ISO weekday `frequencyInterval` (1 = Monday),
    /// monthly ones on day `frequencyInterval` of the month (40: its last day) and yearly ones
    /// on the first day of month `frequencyInterval`, each at the reference time.
    pub fn last_due(&self, now: Timestamp) -> Option<(Timestamp, Vec<&PolicyItem>)> {
        let reference = i64::from(self.reference_hour_of_day) * 3600
            + i64::from(self.reference_minute_of_hour) * 60;
        let now_secs = now.secs();
        let due: Vec<(i64, &PolicyItem)> = self
            .policy_items
            .iter()
            .filter_map(|item| last_due_of(item, reference, now_secs).map(|at| (at, item)))
            .collect();
        let latest = due.iter().map(|(at, _)| *at).max()?;
        let items = due
            .into_iter()
            .filter(|(at, _)| *at == latest)
            .map(|(_, item)| item)
            .collect();
        Some((Timestamp::from_secs(latest), items))
    }

    /// Applies a PATCH body. `version_2024` allows the fields added in 2024-08-05.
    pub fn patched(&self, body: &Value, version_2024: bool) -> Result<Self, DomainError> {
        let mut writable = vec![
            "autoExportEnabled",
            "copySettings",
            "deleteCopiedBackups",
            "export",
            "extraRetentionSettings",
            "policies",
            "referenceHourOfDay",
            "referenceMinuteOfHour",
            "restoreWindowDays",
            "updateSnapshots",
            "useOrgAndGroupNamesInExportPrefix",
            "copyPolicyItemsEnabled",
            "deleteCopySnapshots",
            "deleteSnapshots",
            "updateCopySnapshots",
        ];
        if version_2024 {
            writable.push("autoCopySettingsEnabled");
        }
        let reader = BodyReader::new(
            body,
            &writable,
            &["clusterId", "clusterName", "links", "nextSnapshot"],
        )?;
        let mut next = self.clone();
        if let Some(hour) = reader.int32_at_least("referenceHourOfDay", 0)? {
            if hour > 23 {
                return Err(invalid("referenceHourOfDay", "must be between 0 and 23"));
            }
            next.reference_hour_of_day = hour;
        }
        if let Some(minute) = reader.int32_at_least("referenceMinuteOfHour", 0)? {
            if minute > 59 {
                return Err(invalid("referenceMinuteOfHour", "must be between 0 and 59"));
            }
            next.reference_minute_of_hour = minute;
        }
        if let Some(days) = reader.int32_at_least("restoreWindowDays", 1)? {
            next.restore_window_days = days;
        }
        if let Some(flag) = reader.bool("autoExportEnabled")? {
            next.auto_export_enabled = flag;
        }
        if let Some(flag) = reader.bool("useOrgAndGroupNamesInExportPrefix")? {
            next.use_org_and_group_names_in_export_prefix = flag;
        }
        if let Some(flag) = reader.bool("autoCopySettingsEnabled")? {
            next.auto_copy_settings_enabled = flag;
        }
        if let Some(flag) = reader.bool("copyPolicyItemsEnabled")? {
            next.copy_policy_items_enabled = flag;
        }
        for flag in [
            "updateSnapshots",
            "deleteCopySnapshots",
            "deleteSnapshots",
            "updateCopySnapshots",
        ] {
            reader.bool(flag)?;
        }
        if let Some(settings) = reader.array("copySettings")? {
            next.copy_settings = parse_copy_settings(settings, version_2024)?;
        }
        if let Some(settings) = reader.array("extraRetentionSettings")? {
            next.extra_retention_settings = settings.clone();
        }
        if let Some(policies) = reader.array("policies")? {
            next.policy_items = parse_policies(policies, &self.policy_items)?;
        }
        let longest_hourly = next
            .policy_items
            .iter()
            .filter(|item| item.frequency_type == "hourly")
            .map(PolicyItem::retention_days)
            .max();
        if let Some(hourly_days) = longest_hourly
            && i64::from(next.restore_window_days) > hourly_days
        {
            return Err(invalid(
                "restoreWindowDays",
                "cannot exceed the retention of the hourly policy item",
            ));
        }
        Ok(next)
    }
}

/// The key naming a copy setting's target: the 2024-08-05 shape calls it `zoneId`.
fn copy_target_key(version_2024: bool) -> &'static str {
    if version_2024 {
        "zoneId"
    } else {
        "replicationSpecId"
    }
}

impl BackupSchedule {
    /// Copy settings in the shape of the negotiated version.
    pub fn copy_settings_for(&self, version_2024: bool) -> Vec<Value> {
        self.copy_settings
            .iter()
            .map(|setting| {
                let mut setting = setting.clone();
                if let Some(object) = setting.as_object_mut()
                    && let Some(target) = object.remove("replicationSpecId")
                {
                    object.insert(copy_target_key(version_2024).to_owned(), target);
                }
                setting
            })
            .collect()
    }
}

/// Validates copy settings (`DiskBackupCopySetting` or its 2024-08-05 variant) and stores
/// them in the 2023-01-01 shape.
fn parse_copy_settings(settings: &[Value], version_2024: bool) -> Result<Vec<Value>, DomainError> {
    let target_key = copy_target_key(version_2024);
    let mut parsed = Vec::with_capacity(settings.len());
    for (index, setting) in settings.iter().enumerate() {
        let field = |name: &str| format!("copySettings[{index}].{name}");
        let reader = BodyReader::new(
            setting,
            &[
                "cloudProvider",
                "copyPolicyItems",
                "frequencies",
                "lastNumberOfSnapshots",
                "regionName",
                "shouldCopyOplogs",
                target_key,
            ],
            &[],
        )
        .map_err(|error| match error {
            DomainError::UnknownAttribute { field: name } => DomainError::UnknownAttribute {
                field: field(&name),
            },
            other => other,
        })?;
        if let Some(provider) = reader
            .string("cloudProvider")
            .map_err(|_| wrong_type(&field("cloudProvider")))?
            && !["AWS", "AZURE", "GCP"].contains(&provider)
        {
            return Err(DomainError::InvalidEnumValue {
                field: field("cloudProvider"),
                value: provider.to_owned(),
            });
        }
        reader
            .string("regionName")
            .map_err(|_| wrong_type(&field("regionName")))?;
        reader
            .bool("shouldCopyOplogs")
            .map_err(|_| wrong_type(&field("shouldCopyOplogs")))?;
        if let Some(count) = reader
            .int32_at_least("lastNumberOfSnapshots", 1)
            .map_err(|_| invalid(&field("lastNumberOfSnapshots"), "must be between 1 and 500"))?
            && count > 500
        {
            return Err(invalid(
                &field("lastNumberOfSnapshots"),
                "must be between 1 and 500",
            ));
        }
        if let Some(frequencies) = reader
            .array("frequencies")
            .map_err(|_| wrong_type(&field("frequencies")))?
        {
            let known = [
                "HOURLY",
                "DAILY",
                "WEEKLY",
                "MONTHLY",
                "YEARLY",
                "ON_DEMAND",
            ];
            if frequencies.len() > 6
                || frequencies
                    .iter()
                    .any(|item| !item.as_str().is_some_and(|text| known.contains(&text)))
            {
                return Err(invalid(
                    &field("frequencies"),
                    "must hold at most 6 of HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY, ON_DEMAND",
                ));
            }
        }
        if let Some(items) = reader
            .array("copyPolicyItems")
            .map_err(|_| wrong_type(&field("copyPolicyItems")))?
            && items.len() > 6
        {
            return Err(invalid(
                &field("copyPolicyItems"),
                "must hold at most 6 items",
            ));
        }
        let target = reader
            .string(target_key)
            .map_err(|_| wrong_type(&field(target_key)))?;
        match target {
            Some(text) if text.parse::<ObjectId>().is_err() => {
                return Err(invalid(&field(target_key), "must match ^([a-f0-9]{24})$"));
            }
            None if version_2024 => {
                return Err(DomainError::MissingAttribute {
                    field: field(target_key),
                });
            }
            _ => {}
        }
        let mut stored = setting.clone();
        if let Some(object) = stored.as_object_mut()
            && let Some(target) = object.remove(target_key)
        {
            object.insert("replicationSpecId".to_owned(), target);
        }
        parsed.push(stored);
    }
    Ok(parsed)
}

fn parse_policies(
    policies: &[Value],
    current: &[PolicyItem],
) -> Result<Vec<PolicyItem>, DomainError> {
    if policies.len() > 1 {
        return Err(invalid("policies", "must hold at most 1 item"));
    }
    let Some(policy) = policies.first() else {
        return Ok(current.to_vec());
    };
    let reader = BodyReader::new(policy, &["id", "policyItems"], &[])?;
    let Some(items) = reader.array("policyItems")? else {
        return Err(DomainError::MissingAttribute {
            field: "policies[0].policyItems".to_owned(),
        });
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("policies[0].policyItems[{index}].{name}");
        let reader = BodyReader::new(
            item,
            &[
                "id",
                "frequencyInterval",
                "frequencyType",
                "retentionUnit",
                "retentionValue",
            ],
            &[],
        )
        .map_err(|error| match error {
            DomainError::UnknownAttribute { field: name } => DomainError::UnknownAttribute {
                field: field(&name),
            },
            other => other,
        })?;
        let required = |name: &str| DomainError::MissingAttribute { field: field(name) };
        let frequency_type = reader
            .string("frequencyType")
            .map_err(|_| wrong_type(&field("frequencyType")))?
            .ok_or_else(|| required("frequencyType"))?;
        if !FREQUENCY_TYPES.contains(&frequency_type) {
            return Err(DomainError::InvalidEnumValue {
                field: field("frequencyType"),
                value: frequency_type.to_owned(),
            });
        }
        let interval = reader
            .int32_at_least("frequencyInterval", 1)
            .map_err(|_| invalid(&field("frequencyInterval"), "must be one of 1-28 or 40"))?
            .ok_or_else(|| required("frequencyInterval"))?;
        if !FREQUENCY_INTERVALS.contains(&interval) {
            return Err(invalid(
                &field("frequencyInterval"),
                "must be one of 1-28 or 40",
            ));
        }
        let unit_text = reader
            .string("retentionUnit")
            .map_err(|_| wrong_type(&field("retentionUnit")))?
            .ok_or_else(|| required("retentionUnit"))?;
        let unit = (unit_text == unit_text.to_ascii_lowercase())
            .then(|| RetentionUnit::parse(unit_text))
            .flatten()
            .ok_or_else(|| DomainError::InvalidEnumValue {
                field: field("retentionUnit"),
                value: unit_text.to_owned(),
            })?;
        let value = reader
            .int32_at_least("retentionValue", 1)
            .map_err(|_| invalid(&field("retentionValue"), "must be a positive integer"))?
            .ok_or_else(|| required("retentionValue"))?;
        let id = match reader.string("id").map_err(|_| wrong_type(&field("id")))? {
            Some(text) => text
                .parse::<ObjectId>()
                .map_err(|_| invalid(&field("id"), "must match ^([a-f0-9]{24})$"))?,
            None => ObjectId::generate(),
        };
        parsed.push(PolicyItem {
            id,
            frequency_type: frequency_type.to_owned(),
            frequency_interval: interval,
            retention_unit: unit,
            retention_value: value,
        });
    }
    Ok(parsed)
}

/// The latest second at or before `now` when `item` was due (within the last 400 days).
fn last_due_of(item: &PolicyItem, reference: i64, now: i64) -> Option<i64> {
    const DAY: i64 = 86_400;
    if item.frequency_type == "hourly" {
        let period = i64::from(item.frequency_interval.max(1)) * 3600;
        return Some(now - (now - reference).rem_euclid(period));
    }
    // The latest daily reference instant at or before `now`, then back a day at a time until
    // the day matches the item.
    let mut at = now - (now - reference).rem_euclid(DAY);
    for _ in 0..400 {
        let date = time::OffsetDateTime::from_unix_timestamp(at).ok()?.date();
        let matches = match item.frequency_type.as_str() {
            "daily" => true,
            "weekly" => i32::from(date.weekday().number_from_monday()) == item.frequency_interval,
            "monthly" => {
                let day = i32::from(date.day());
                let last = i32::from(date.month().length(date.year()));
                day == item.frequency_interval || (item.frequency_interval == 40 && day == last)
            }
            "yearly" => {
                date.day() == 1 && i32::from(u8::from(date.month())) == item.frequency_interval
            }
            _ => false,
        };
        if matches {
            return Some(at);
        }
        at -= DAY;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(frequency_type: &str, interval: i32, days: i32) -> PolicyItem {
        PolicyItem {
            id: ObjectId::generate(),
            frequency_type: frequency_type.into(),
            frequency_interval: interval,
            retention_unit: RetentionUnit::Days,
            retention_value: days,
        }
    }

    #[test]
    fn last_due_finds_the_latest_slot_and_its_items() {
        // 2026-11-29 (a Sunday) 10:17:00 UTC.
        let now = Timestamp::from_secs(1_795_947_420);
        let mut schedule = BackupSchedule::atlas_default(ObjectId::generate(), now);
        schedule.reference_hour_of_day = 2;
        schedule.reference_minute_of_hour = 30;
        schedule.policy_items = vec![
            item("hourly", 6, 2),
            item("daily", 1, 7),
            item("weekly", 7, 28),
            item("monthly", 40, 365),
        ];
        let (at, items) = schedule.last_due(now).unwrap();
        // Hourly every 6 h from 02:30: 08:30 is the latest.
        assert_eq!(at, Timestamp::from_secs(1_795_919_400 + 6 * 3600));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].frequency_type, "hourly");
        schedule.policy_items.remove(0);
        let (at, items) = schedule.last_due(now).unwrap();
        assert_eq!(
            at,
            Timestamp::from_secs(1_795_919_400),
            "today 02:30, a Sunday"
        );
        let kinds: Vec<_> = items
            .iter()
            .map(|item| item.frequency_type.as_str())
            .collect();
        assert_eq!(kinds, ["daily", "weekly"], "weekly day 7 is Sunday");
        schedule.policy_items = vec![item("monthly", 40, 365)];
        let (at, _) = schedule.last_due(now).unwrap();
        assert_eq!(
            at,
            Timestamp::from_secs(1_793_413_800),
            "2026-10-31 02:30, the last day of October"
        );
    }

    use serde_json::json;

    #[test]
    fn default_schedule_matches_atlas() {
        let schedule = BackupSchedule::atlas_default(
            ObjectId::generate(),
            Timestamp::from_secs(3600 * 5 + 60 * 7),
        );
        assert_eq!(schedule.restore_window_days, 7);
        assert_eq!(
            (
                schedule.reference_hour_of_day,
                schedule.reference_minute_of_hour
            ),
            (5, 7)
        );
        let kinds: Vec<_> = schedule
            .policy_items
            .iter()
            .map(|item| item.frequency_type.as_str())
            .collect();
        assert_eq!(kinds, ["hourly", "daily", "weekly", "monthly", "yearly"]);
        let next = schedule
            .next_snapshot(Timestamp::from_secs(3600 * 6))
            .unwrap();
        assert_eq!(next.secs(), 3600 * 11 + 60 * 7);
    }

    #[test]
    fn copy_settings_follow_the_version() {
        let schedule = BackupSchedule::atlas_default(ObjectId::generate(), Timestamp::from_secs(0));
        let setting = json!({"cloudProvider": "AWS", "regionName": "US_WEST_2", "zoneId": "32b6e34b3d91647abb20e7b8", "shouldCopyOplogs": false, "frequencies": ["DAILY"]});
        let patched = schedule
            .patched(&json!({"copySettings": [setting]}), true)
            .unwrap();
        assert_eq!(
            patched.copy_settings_for(false)[0]["replicationSpecId"],
            "32b6e34b3d91647abb20e7b8"
        );
        assert_eq!(
            patched.copy_settings_for(true)[0]["zoneId"],
            "32b6e34b3d91647abb20e7b8"
        );
        assert!(
            patched.copy_settings_for(true)[0]
                .get("replicationSpecId")
                .is_none()
        );
        let error = schedule
            .patched(
                &json!({"copySettings": [{"zoneId": "32b6e34b3d91647abb20e7b8"}]}),
                false,
            )
            .unwrap_err();
        assert_eq!(error.field(), Some("copySettings[0].zoneId"));
        let error = schedule
            .patched(&json!({"copySettings": [{"cloudProvider": "AWS"}]}), true)
            .unwrap_err();
        assert_eq!(error.field(), Some("copySettings[0].zoneId"));
    }

    #[test]
    fn patch_validates_and_names_fields() {
        let schedule = BackupSchedule::atlas_default(ObjectId::generate(), Timestamp::from_secs(0));
        let error = schedule
            .patched(&json!({"referenceHourOfDay": 24}), false)
            .unwrap_err();
        assert_eq!(error.field(), Some("referenceHourOfDay"));
        let error = schedule
            .patched(&json!({"restoreWindowDays": 8}), false)
            .unwrap_err();
        assert_eq!(error.field(), Some("restoreWindowDays"));
        let error = schedule
            .patched(&json!({"policies": [{"policyItems": [{"frequencyType": "hourly", "frequencyInterval": 5, "retentionUnit": "DAYS", "retentionValue": 2}]}]}), false)
            .unwrap_err();
        assert_eq!(
            error.field(),
            Some("policies[0].policyItems[0].retentionUnit")
        );
        let error = schedule
            .patched(&json!({"autoCopySettingsEnabled": true}), false)
            .unwrap_err();
        assert_eq!(error.field(), Some("autoCopySettingsEnabled"));
        let patched = schedule
            .patched(
                &json!({"restoreWindowDays": 3, "referenceMinuteOfHour": 30}),
                false,
            )
            .unwrap();
        assert_eq!(
            (
                patched.restore_window_days,
                patched.reference_minute_of_hour
            ),
            (3, 30)
        );
    }
}
