//! First start: an empty store gets an organization, a project and an Organization Owner API
//! key, whose private key is printed once and written to `bootstrap-credentials.json` (0600).

use std::path::Path;

use anyhow::Context;
use rewind_api::auth::secrets::new_api_key;
use rewind_domain::group::{Group, Organization};
use rewind_domain::{ObjectId, Timestamp};
use rewind_store::{MetadataStore, Page};
use serde_json::json;

use crate::durable::write_atomically;

/// Name of the credentials file in the data directory.
pub const CREDENTIALS_FILE: &str = "bootstrap-credentials.json";

/// Creates the first organization, project and key when the store has no organization.
pub async fn ensure(store: &dyn MetadataStore, data_dir: &Path) -> anyhow::Result<()> {
    let (_, organizations) = store
        .list_orgs(Page {
            offset: 0,
            limit: 1,
        })
        .await?;
    if organizations > 0 {
        return Ok(());
    }
    let now = Timestamp::now();
    let org = Organization {
        id: ObjectId::generate(),
        name: "rewind".to_owned(),
        created_at: now,
    };
    let group = Group {
        id: ObjectId::generate(),
        org_id: org.id,
        name: "Project 0".to_owned(),
        created_at: now,
    };
    let (key, private_key) = new_api_key(
        org.id,
        "bootstrap Organization Owner key".to_owned(),
        vec!["ORG_OWNER".to_owned()],
    );
    let credentials = json!({
        "orgId": org.id,
        "groupId": group.id,
        "apiKeyId": key.id,
        "publicKey": key.public_key,
        "privateKey": private_key,
    });
    // The file first: a crash after it but before the inserts leaves a file that a restart
    // overwrites, never keys that nobody can read.
    let path = data_dir.join(CREDENTIALS_FILE);
    write_atomically(
        &path,
        serde_json::to_string_pretty(&credentials)?.as_bytes(),
        0o600,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    store.create_org(&org).await?;
    store.create_group(&group).await?;
    store.create_api_key(&key).await?;
    println!(
        "rewind: first start: created organization {} and project {}",
        org.id, group.id
    );
    println!(
        "rewind: Organization Owner API key (shown once, also in {}):",
        path.display()
    );
    println!("rewind:   public key:  {}", key.public_key);
    println!("rewind:   private key: {private_key}");
    Ok(())
}

/// This replica's id: kept in `<data-dir>/replica-id` so that a restarted replica is the same
/// replica (it hosts the same clusters, whose data lives in its data directory).
pub fn replica_id(data_dir: &Path) -> anyhow::Result<ObjectId> {
    let path = data_dir.join("replica-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{} does not hold a replica id", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let id = ObjectId::generate();
            write_atomically(&path, format!("{id}\n").as_bytes(), 0o644)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!("reading {}", path.display()))),
    }
}
