//! Organizations, projects, clusters and schedules in SQLite.

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::rows;
use crate::sql;

#[async_trait]
impl crate::ProjectStore for SqliteStore {
    async fn create_org(&self, org: &Organization) -> Result<(), StoreError> {
        let org = org.clone();
        self.write(move |connection| {
            execute(
                connection,
                "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![org.id.to_string(), org.name, org.created_at.millis()],
            )
            .map_err(|error| StoreError::from_insert(error, "organization"))?;
            Ok(())
        })
        .await
    }

    async fn get_org(&self, id: ObjectId) -> Result<Option<Organization>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM orgs WHERE id = ?1",
                [id.to_string()],
                rows::organization,
            )
        })
    }

    async fn list_orgs(&self, page: Page) -> Result<(Vec<Organization>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM orgs ORDER BY created_at, id LIMIT ?1 OFFSET ?2",
                params![limit(page), offset(page)],
                rows::organization,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM orgs", [])?))
        })
    }

    async fn create_group(&self, group: &Group) -> Result<(), StoreError> {
        let group = group.clone();
        self.write(move |connection| {
            execute(
                connection,
                "INSERT INTO groups (id, org_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    group.id.to_string(),
                    group.org_id.to_string(),
                    group.name,
                    group.created_at.millis()
                ],
            )
            .map_err(|error| StoreError::from_insert(error, "group name"))?;
            Ok(())
        })
        .await
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<Group>, StoreError> {
        self.hot.groups.get_or_read(&self.hot.generations, id, || {
            self.read(|connection| {
                one(
                    connection,
                    "SELECT * FROM groups WHERE id = ?1",
                    [id.to_string()],
                    rows::group,
                )
            })
        })
    }

    async fn list_groups(
        &self,
        org_ids: &[ObjectId],
        page: Page,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        // A JSON array parameter keeps the statement fixed whatever the number of orgs.
        let ids = ids_json(org_ids);
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM groups WHERE org_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![ids, limit(page), offset(page)],
                rows::group,
            )?;
            let total = count(connection, "SELECT COUNT(*) FROM groups WHERE org_id IN (SELECT value FROM json_each(?1))", [&ids])?;
            Ok((items, total))
        })
    }

    async fn delete_group(&self, id: ObjectId) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let clusters = count(
                connection,
                "SELECT COUNT(*) FROM clusters WHERE group_id = ?1",
                [id.to_string()],
            )?;
            if clusters > 0 {
                return Err(StoreError::Conflict(format!(
                    "group {id} has {clusters} clusters"
                )));
            }
            let deleted = execute(
                connection,
                "DELETE FROM groups WHERE id = ?1",
                [id.to_string()],
            )?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn create_cluster(
        &self,
        cluster: &Cluster,
        schedule: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let (cluster, schedule) = (cluster.clone(), schedule.cloned());
        self.write(move |connection| {
            execute(connection,
                    "INSERT INTO clusters (id, group_id, name, cluster_type, backup_enabled, pit_enabled, paused, state, created_at, spec) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        cluster.id.to_string(),
                        cluster.group_id.to_string(),
                        cluster.name.as_str(),
                        cluster.cluster_type.as_str(),
                        flag(cluster.backup_enabled),
                        flag(cluster.pit_enabled),
                        flag(cluster.paused),
                        cluster.state.as_str(),
                        cluster.created_at.millis(),
                        cluster.spec.to_string(),
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "cluster name"))?;
            if let Some(schedule) = &schedule {
                execute_schedule(connection, schedule, INSERT_SCHEDULE)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_cluster(
        &self,
        group_id: ObjectId,
        name: &ClusterName,
    ) -> Result<Option<Cluster>, StoreError> {
        let key = (group_id, name.clone());
        self.hot
            .clusters
            .get_or_read(&self.hot.generations, key, || {
                self.read(|connection| {
                    one(
                        connection,
                        "SELECT * FROM clusters WHERE group_id = ?1 AND name = ?2",
                        params![group_id.to_string(), name.as_str()],
                        rows::cluster,
                    )
                })
            })
    }

    async fn list_clusters(
        &self,
        group_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Cluster>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM clusters WHERE group_id = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![group_id.to_string(), limit(page), offset(page)],
                rows::cluster,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM clusters WHERE group_id = ?1", [group_id.to_string()])?))
        })
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        schedule_if_missing: Option<&BackupSchedule>,
    ) -> Result<(), StoreError> {
        let (cluster, schedule) = (cluster.clone(), schedule_if_missing.cloned());
        self.write(move |connection| {
            execute(connection,
                "UPDATE clusters SET cluster_type = ?2, backup_enabled = ?3, pit_enabled = ?4, paused = ?5, state = ?6, spec = ?7 WHERE id = ?1",
                params![
                    cluster.id.to_string(),
                    cluster.cluster_type.as_str(),
                    flag(cluster.backup_enabled),
                    flag(cluster.pit_enabled),
                    flag(cluster.paused),
                    cluster.state.as_str(),
                    cluster.spec.to_string(),
                ],
            )?;
            if let Some(schedule) = &schedule {
                execute_schedule(connection, schedule, &format!("{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO NOTHING"))?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_cluster(&self, cluster_id: ObjectId) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let found: Option<(String, String)> = connection
                .query_row("SELECT group_id, name FROM clusters WHERE id = ?1", [cluster_id.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let Some((group_id, name)) = found else {
                return Ok(false);
            };
            let busy = count(
                connection,
                &format!("SELECT COUNT(*) FROM restore_jobs WHERE state IN {ACTIVE_STATES} AND ((target_group_id = ?1 AND target_cluster_name = ?2) OR (group_id = ?1 AND cluster_name = ?2))"),
                params![group_id, name],
            )?;
            if busy > 0 {
                return Err(StoreError::Conflict(format!("cluster {name} has {busy} active restore jobs")));
            }
            for sql in ["DELETE FROM snapshots WHERE cluster_id = ?1", "DELETE FROM schedules WHERE cluster_id = ?1", "DELETE FROM clusters WHERE id = ?1"] {
                execute(connection, sql, [cluster_id.to_string()])?;
            }
            execute(connection, sql::INSERT_DELETED_CLUSTER_BACKUPS, params![cluster_id.to_string(), Timestamp::now().millis()])?;
            Ok(true)
        })
        .await
    }

    async fn deleted_cluster_backups(
        &self,
        before: Timestamp,
    ) -> Result<Vec<ObjectId>, StoreError> {
        self.read(|connection| {
            all(
                connection,
                sql::DELETED_CLUSTER_BACKUPS,
                [before.millis()],
                rows::deleted_cluster,
            )
        })
    }

    async fn forget_deleted_cluster_backups(&self, cluster_id: ObjectId) -> Result<(), StoreError> {
        self.write(move |connection| {
            execute(
                connection,
                sql::FORGET_DELETED_CLUSTER_BACKUPS,
                [cluster_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn host_clusters(&self, replica: &str) -> Result<Vec<Cluster>, StoreError> {
        let replica = replica.to_owned();
        self.write(move |connection| {
            execute(connection, sql::HOST_UNHOSTED_CLUSTERS, [replica.as_str()])?;
            all(
                connection,
                sql::CLUSTERS_HOSTED_BY,
                [replica.as_str()],
                rows::cluster,
            )
        })
        .await
    }

    async fn replica_heartbeat(&self, replica: &str, now: Timestamp) -> Result<(), StoreError> {
        let replica = replica.to_owned();
        self.write(move |connection| {
            execute(
                connection,
                sql::REPLICA_HEARTBEAT,
                params![replica, now.millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_over_clusters(
        &self,
        replica: &str,
        stale_before: Timestamp,
    ) -> Result<Vec<Cluster>, StoreError> {
        let replica = replica.to_owned();
        self.write(move |connection| {
            all(
                connection,
                sql::TAKE_OVER_CLUSTERS,
                params![replica, stale_before.millis()],
                rows::cluster,
            )
        })
        .await
    }

    async fn record_cluster_address(
        &self,
        cluster_id: ObjectId,
        replica: &str,
        address: Option<&str>,
        state: ClusterState,
    ) -> Result<bool, StoreError> {
        let (replica, address) = (replica.to_owned(), address.map(str::to_owned));
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::RECORD_CLUSTER_ADDRESS,
                params![cluster_id.to_string(), replica, address, state.as_str()],
            )? > 0)
        })
        .await
    }

    async fn get_schedule(
        &self,
        cluster_id: ObjectId,
    ) -> Result<Option<BackupSchedule>, StoreError> {
        self.hot
            .schedules
            .get_or_read(&self.hot.generations, cluster_id, || {
                self.read(|connection| {
                    one(
                        connection,
                        "SELECT * FROM schedules WHERE cluster_id = ?1",
                        [cluster_id.to_string()],
                        rows::schedule,
                    )
                })
            })
    }

    async fn put_schedule(&self, schedule: &BackupSchedule) -> Result<(), StoreError> {
        let schedule = schedule.clone();
        self.write(move |connection| {
            let sql = format!(
                "{INSERT_SCHEDULE} ON CONFLICT (cluster_id) DO UPDATE SET reference_hour_of_day = excluded.reference_hour_of_day, reference_minute_of_hour = excluded.reference_minute_of_hour, restore_window_days = excluded.restore_window_days, policy_id = excluded.policy_id, policy_items = excluded.policy_items, auto_export_enabled = excluded.auto_export_enabled, use_org_and_group_names_in_export_prefix = excluded.use_org_and_group_names_in_export_prefix, auto_copy_settings_enabled = excluded.auto_copy_settings_enabled, copy_policy_items_enabled = excluded.copy_policy_items_enabled, copy_settings = excluded.copy_settings, extra_retention_settings = excluded.extra_retention_settings"
            );
            execute_schedule(connection, &schedule, &sql)
        })
        .await
    }
}
