//! Organizations, projects, clusters and schedules in PostgreSQL.

use async_trait::async_trait;
use rewind_domain::cluster::{Cluster, ClusterState};
use rewind_domain::group::{Group, Organization};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use sqlx::postgres::PgConnection;

use super::{PgStore, all, args, count, execute, limit, numbered, offset, one};
use crate::rows::{self, encode_policy_items};
use crate::sql;
use crate::{Page, StoreError};

const INSERT_SCHEDULE: &str = "INSERT INTO schedules (cluster_id, reference_hour_of_day, reference_minute_of_hour, restore_window_days, policy_id, policy_items, auto_export_enabled, use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled, copy_policy_items_enabled, copy_settings, extra_retention_settings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

async fn execute_schedule(
    connection: &mut PgConnection,
    schedule: &BackupSchedule,
    sql: &str,
) -> Result<(), StoreError> {
    execute(
        connection,
        sql,
        args![
            schedule.cluster_id.to_string(),
            i64::from(schedule.reference_hour_of_day),
            i64::from(schedule.reference_minute_of_hour),
            i64::from(schedule.restore_window_days),
            schedule.policy_id.to_string(),
            encode_policy_items(&schedule.policy_items),
            i64::from(schedule.auto_export_enabled),
            i64::from(schedule.use_org_and_group_names_in_export_prefix),
            i64::from(schedule.auto_copy_settings_enabled),
            i64::from(schedule.copy_policy_items_enabled),
            serde_json::Value::from(schedule.copy_settings.clone()).to_string(),
            serde_json::Value::from(schedule.extra_retention_settings.clone()).to_string(),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl crate::ProjectStore for PgStore {
    async fn create_org(&self, org: &Organization) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        execute(
            &mut connection,
            "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
            args![
                org.id.to_string(),
                org.name.as_str(),
                org.created_at.millis()
            ],
        )
        .await
        .map_err(|error| StoreError::from_pg_insert(error, "organization"))?;
        Ok(())
    }

    async fn get_org(&self, id: ObjectId) -> Result<Option<Organization>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM orgs WHERE id = $1",
            args![id.to_string()],
            rows::organization,
        )
        .await
    }

    async fn list_orgs(&self, page: Page) -> Result<(Vec<Organization>, u64), StoreError> {
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM orgs ORDER BY created_at, id LIMIT $1 OFFSET $2",
            args![limit(page), offset(page)],
            rows::organization,
        )
        .await?;
        Ok((
            items,
            count(&mut connection, "SELECT COUNT(*) FROM orgs", args![]).await?,
        ))
    }

    async fn create_group(&self, group: &Group) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        execute(
            &mut connection,
            "INSERT INTO groups (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)",
            args![
                group.id.to_string(),
                group.org_id.to_string(),
                group.name.as_str(),
                group.created_at.millis()
            ],
        )
        .await
        .map_err(|error| StoreError::from_pg_insert(error, "group name"))?;
        Ok(())
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<Group>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM groups WHERE id = $1",
            args![id.to_string()],
            rows::group,
        )
        .await
    }

    async fn list_groups(
        &self,
        org_ids: &[ObjectId],
        page: Page,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        let ids: Vec<String> = org_ids.iter().map(ObjectId::to_string).collect();
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM groups WHERE org_id = ANY($1) ORDER BY created_at, id LIMIT $2 OFFSET $3",
            args![ids.clone(), limit(page), offset(page)],
            rows::group,
        )
        .await?;
        let total = count(
            &mut connection,
            "SELECT COUNT(*) FROM groups WHERE org_id = ANY($1)",
            args![ids],
        )
        .await?;
        Ok((items, total))
    }

    async fn delete_group(&self, id: ObjectId) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        super::lock(&mut transaction, &format!("rewind.group.{id}")).await?;
        let clusters = count(
            &mut transaction,
            "SELECT COUNT(*) FROM clusters WHERE group_id = $1",
            args![id.to_string()],
        )
        .await?;
        if clusters > 0 {
            return Err(StoreError::Conflict(format!(
                "group {id} has {clusters} clusters"
            )));
        }
        let deleted = execute(
            &mut transaction,
            "DELETE FROM groups WHERE id = $1",
            args![id.to_string()],
        )
        .await?;
        transaction.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_cluster(
        &self,
        cluster: &Cluster,
        schedule: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        super::lock(
            &mut transaction,
            &format!("rewind.group.{}", cluster.group_id),
        )
        .await?;
        execute(
            &mut transaction,
            "INSERT INTO clusters (id, group_id, name, cluster_type, backup_enabled, pit_enabled, paused, state, created_at, spec) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            args![
                cluster.id.to_string(),
                cluster.group_id.to_string(),
                cluster.name.as_str(),
                cluster.cluster_type.as_str(),
                i64::from(cluster.backup_enabled),
                i64::from(cluster.pit_enabled),
                i64::from(cluster.paused),
                cluster.state.as_str(),
                cluster.created_at.millis(),
                cluster.spec.to_string(),
            ],
        )
        .await
        .map_err(|error| StoreError::from_pg_insert(error, "cluster name"))?;
        if let Some(schedule) = schedule {
            execute_schedule(&mut transaction, schedule, INSERT_SCHEDULE).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn get_cluster(
        &self,
        group_id: ObjectId,
        name: &ClusterName,
    ) -> Result<Option<Cluster>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM clusters WHERE group_id = $1 AND name = $2",
            args![group_id.to_string(), name.as_str()],
            rows::cluster,
        )
        .await
    }

    async fn list_clusters(
        &self,
        group_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Cluster>, u64), StoreError> {
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM clusters WHERE group_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3",
            args![group_id.to_string(), limit(page), offset(page)],
            rows::cluster,
        )
        .await?;
        let total = count(
            &mut connection,
            "SELECT COUNT(*) FROM clusters WHERE group_id = $1",
            args![group_id.to_string()],
        )
        .await?;
        Ok((items, total))
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        schedule_if_missing: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        execute(
            &mut transaction,
            "UPDATE clusters SET cluster_type = $2, backup_enabled = $3, pit_enabled = $4, paused = $5, state = $6, spec = $7 WHERE id = $1",
            args![
                cluster.id.to_string(),
                cluster.cluster_type.as_str(),
                i64::from(cluster.backup_enabled),
                i64::from(cluster.pit_enabled),
                i64::from(cluster.paused),
                cluster.state.as_str(),
                cluster.spec.to_string(),
            ],
        )
        .await?;
        if let Some(schedule) = schedule_if_missing {
            execute_schedule(
                &mut transaction,
                schedule,
                &format!("{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO NOTHING"),
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn delete_cluster(&self, cluster_id: ObjectId) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let found = one(
            &mut transaction,
            "SELECT group_id, name FROM clusters WHERE id = $1",
            args![cluster_id.to_string()],
            |row| Ok((row.text_at(0)?, row.text_at(1)?)),
        )
        .await?;
        let Some((group_id, name)) = found else {
            return Ok(false);
        };
        // The same lock restore-job inserts take: no restore can start while this deletes.
        super::lock(&mut transaction, "rewind.restore_jobs").await?;
        let busy = count(
            &mut transaction,
            "SELECT COUNT(*) FROM restore_jobs WHERE state IN ('queued', 'inProgress') AND ((target_group_id = $1 AND target_cluster_name = $2) OR (group_id = $1 AND cluster_name = $2))",
            args![group_id, name.as_str()],
        )
        .await?;
        if busy > 0 {
            return Err(StoreError::Conflict(format!(
                "cluster {name} has {busy} active restore jobs"
            )));
        }
        for sql in [
            "DELETE FROM snapshots WHERE cluster_id = $1",
            "DELETE FROM schedules WHERE cluster_id = $1",
            "DELETE FROM clusters WHERE id = $1",
        ] {
            execute(&mut transaction, sql, args![cluster_id.to_string()]).await?;
        }
        execute(
            &mut transaction,
            &numbered(sql::INSERT_DELETED_CLUSTER_BACKUPS),
            args![cluster_id.to_string(), Timestamp::now().millis()],
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn deleted_cluster_backups(
        &self,
        before: Timestamp,
    ) -> Result<Vec<ObjectId>, StoreError> {
        all(
            &mut *self.connection().await?,
            &numbered(sql::DELETED_CLUSTER_BACKUPS),
            args![before.millis()],
            rows::deleted_cluster,
        )
        .await
    }

    async fn forget_deleted_cluster_backups(&self, cluster_id: ObjectId) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            &numbered(sql::FORGET_DELETED_CLUSTER_BACKUPS),
            args![cluster_id.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn host_clusters(&self, replica: &str) -> Result<Vec<Cluster>, StoreError> {
        let mut connection = self.connection().await?;
        execute(
            &mut connection,
            &numbered(sql::HOST_UNHOSTED_CLUSTERS),
            args![replica],
        )
        .await?;
        all(
            &mut connection,
            &numbered(sql::CLUSTERS_HOSTED_BY),
            args![replica],
            rows::cluster,
        )
        .await
    }

    async fn replica_heartbeat(&self, replica: &str, now: Timestamp) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            &numbered(sql::REPLICA_HEARTBEAT),
            args![replica, now.millis()],
        )
        .await?;
        Ok(())
    }

    async fn take_over_clusters(
        &self,
        replica: &str,
        stale_before: Timestamp,
    ) -> Result<Vec<Cluster>, StoreError> {
        // Each row is updated once: a replica racing for the same cluster re-checks
        // `host_replica` after the first commits, finds it live, and leaves it.
        all(
            &mut *self.connection().await?,
            &numbered(sql::TAKE_OVER_CLUSTERS),
            args![replica, stale_before.millis()],
            rows::cluster,
        )
        .await
    }

    async fn record_cluster_address(
        &self,
        cluster_id: ObjectId,
        replica: &str,
        address: Option<&str>,
        state: ClusterState,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            &numbered(sql::RECORD_CLUSTER_ADDRESS),
            args![
                cluster_id.to_string(),
                replica,
                address.map(str::to_owned),
                state.as_str()
            ],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn get_schedule(
        &self,
        cluster_id: ObjectId,
    ) -> Result<Option<BackupSchedule>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM schedules WHERE cluster_id = $1",
            args![cluster_id.to_string()],
            rows::schedule,
        )
        .await
    }

    async fn put_schedule(&self, schedule: &BackupSchedule) -> Result<(), StoreError> {
        let sql = format!(
            "{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO UPDATE SET reference_hour_of_day = excluded.reference_hour_of_day, reference_minute_of_hour = excluded.reference_minute_of_hour, restore_window_days = excluded.restore_window_days, policy_id = excluded.policy_id, policy_items = excluded.policy_items, auto_export_enabled = excluded.auto_export_enabled, use_org_and_group_names_in_export_prefix = excluded.use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled = excluded.auto_copy_settings_enabled, copy_policy_items_enabled = excluded.copy_policy_items_enabled, copy_settings = excluded.copy_settings, extra_retention_settings = excluded.extra_retention_settings"
        );
        execute_schedule(&mut *self.connection().await?, schedule, &sql).await
    }
}
