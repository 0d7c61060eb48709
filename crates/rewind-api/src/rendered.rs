//! Restore jobs' JSON as last rendered, served again while the job is unchanged.
//!
//! Polling a job (`GET .../restoreJobs/{id}`) is the hottest request clients make: the Atlas
//! CLI's `watch` and Terraform's waiters ask every few seconds. The store serves the job
//! itself from memory when it can; this keeps the rendered body too, keyed by the job's id and
//! checked against the whole job, so a changed job is always rendered afresh.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use axum::body::Bytes;
use rewind_domain::ObjectId;
use rewind_domain::restore_job::RestoreJob;

use crate::views::{self, Links};

/// Jobs kept; past it the memo starts over.
const CAPACITY: usize = 4096;

/// The memo of rendered restore jobs.
#[derive(Default)]
pub struct RenderedJobs {
    /// Read-mostly: hits share the lock.
    entries: RwLock<HashMap<ObjectId, (RestoreJob, Bytes)>>,
}

impl RenderedJobs {
    /// The compact JSON of `job` as Atlas renders it.
    pub fn render(&self, links: &Links, job: &RestoreJob) -> Result<Bytes, serde_json::Error> {
        // The map holds no invariant a panic could break: a poisoned lock is still usable.
        if let Some((rendered_job, bytes)) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&job.id)
            && rendered_job == job
        {
            return Ok(bytes.clone());
        }
        let bytes = Bytes::from(serde_json::to_vec(&views::restore_job(links, job))?);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(job.id, (job.clone(), bytes.clone()));
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use rewind_domain::restore_job::RestoreJobState;
    use rewind_domain::restore_request::DeliveryType;
    use rewind_domain::{ClusterName, Timestamp};

    use super::*;

    fn job() -> RestoreJob {
        RestoreJob {
            id: ObjectId::generate(),
            group_id: ObjectId::generate(),
            cluster_name: ClusterName::parse("Cluster0").unwrap(),
            delivery_type: DeliveryType::Download,
            snapshot_id: Some(ObjectId::generate()),
            target_group_id: None,
            target_cluster_name: None,
            pit: None,
            state: RestoreJobState::Queued,
            created_at: Timestamp::now(),
            snapshot_taken_at: None,
            finished_at: None,
            expires_at: None,
            delivery_urls: Vec::new(),
            failure_reason: None,
            progress: None,
        }
    }

    #[test]
    fn a_changed_job_is_rendered_afresh() {
        let links = Links::new("http://127.0.0.1:8080");
        let memo = RenderedJobs::default();
        let queued = job();
        let first = memo.render(&links, &queued).unwrap();
        assert_eq!(
            first,
            serde_json::to_vec(&views::restore_job(&links, &queued)).unwrap()
        );
        assert_eq!(memo.render(&links, &queued).unwrap(), first);
        let failed = RestoreJob {
            state: RestoreJobState::Failed,
            failure_reason: Some("blob missing".into()),
            ..queued.clone()
        };
        let second = memo.render(&links, &failed).unwrap();
        assert_ne!(second, first);
        let text = String::from_utf8(second.to_vec()).unwrap();
        assert!(text.contains("\"failed\":true"), "{text}");
        assert!(text.contains("blob missing"), "{text}");
    }
}
