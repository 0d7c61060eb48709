//! `rewind bench`: measurements that print their figures beside a ceiling or a baseline
//! measured in the same run.

pub mod api;
pub mod jobs;

use rewind_domain::group::{Group, Organization};
use rewind_domain::{ObjectId, Timestamp};
use rewind_store::MetadataStore;

/// An organization and a project named "bench", created in `store`.
async fn org_and_group(
    store: &dyn MetadataStore,
    now: Timestamp,
) -> anyhow::Result<(Organization, Group)> {
    let org = Organization {
        id: ObjectId::generate(),
        name: "bench".into(),
        created_at: now,
    };
    store.create_org(&org).await?;
    let group = Group {
        id: ObjectId::generate(),
        org_id: org.id,
        name: "bench".into(),
        created_at: now,
    };
    store.create_group(&group).await?;
    Ok((org, group))
}
