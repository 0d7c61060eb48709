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

/// Runs `start(item)` for every item with at most 512 in flight, so that the store's writes
/// share group commits (one at a time, each would wait for its own sync); fails on the first
/// error.
async fn in_flight<I, T, O, E>(
    items: impl IntoIterator<Item = I>,
    mut start: impl FnMut(I) -> anyhow::Result<T>,
) -> anyhow::Result<()>
where
    T: Future<Output = Result<O, E>> + Send + 'static,
    O: Send + 'static,
    E: Into<anyhow::Error> + Send + 'static,
{
    let mut running: tokio::task::JoinSet<Result<O, E>> = tokio::task::JoinSet::new();
    for item in items {
        if running.len() >= 512
            && let Some(done) = running.join_next().await
        {
            done?.map_err(Into::into)?;
        }
        running.spawn(start(item)?);
    }
    while let Some(done) = running.join_next().await {
        done?.map_err(Into::into)?;
    }
    Ok(())
}
