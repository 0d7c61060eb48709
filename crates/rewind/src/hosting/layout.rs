//! Where a cluster's data lives, and how a restore swaps it atomically.
//!
//! `<data-dir>/clusters/<cluster id>/<replica set>` is a symbolic link to
//! `generations/<generation id>`, the engine directory in use. A restore builds a new
//! generation beside it and replaces the link with `rename(2)`, which is atomic: after a crash
//! at any moment the link names the old generation or the new one, never a mix. Generations no
//! link names are leftovers of interrupted restores (or swapped-out data) and are removed.

use std::path::{Path, PathBuf};

use rewind_domain::ObjectId;

/// The directory of one cluster's data.
pub fn cluster_dir(data_dir: &Path, cluster: ObjectId) -> PathBuf {
    data_dir.join("clusters").join(cluster.to_string())
}

/// The engine directory (a link) of one replica set.
pub fn engine_dir(data_dir: &Path, cluster: ObjectId, set_name: &str) -> PathBuf {
    cluster_dir(data_dir, cluster).join(set_name)
}

/// A fresh generation directory for a new engine (a first start or a restore).
pub fn new_generation(data_dir: &Path, cluster: ObjectId) -> PathBuf {
    cluster_dir(data_dir, cluster)
        .join("generations")
        .join(ObjectId::generate().to_string())
}

/// Makes sure the replica set's link exists, pointing at an empty generation on first use.
pub fn ensure_engine_dir(
    data_dir: &Path,
    cluster: ObjectId,
    set_name: &str,
) -> std::io::Result<PathBuf> {
    let link = engine_dir(data_dir, cluster, set_name);
    if std::fs::symlink_metadata(&link).is_err() {
        let generation = new_generation(data_dir, cluster);
        std::fs::create_dir_all(&generation)?;
        point(&link, &generation)?;
    }
    Ok(link)
}

/// Points the replica set's link at `generation` atomically and durably; returns the
/// generation it pointed at before.
pub fn swap(
    data_dir: &Path,
    cluster: ObjectId,
    set_name: &str,
    generation: &Path,
) -> std::io::Result<Option<PathBuf>> {
    let link = engine_dir(data_dir, cluster, set_name);
    let previous = std::fs::read_link(&link)
        .ok()
        .map(|target| resolve(&link, &target));
    point(&link, generation)?;
    Ok(previous)
}

/// Removes the generations no replica set's link points at.
pub fn remove_unlinked_generations(data_dir: &Path, cluster: ObjectId) -> std::io::Result<()> {
    let directory = cluster_dir(data_dir, cluster);
    let mut linked = Vec::new();
    for entry in std::fs::read_dir(&directory)? {
        let path = entry?.path();
        if let Ok(target) = std::fs::read_link(&path) {
            linked.push(resolve(&path, &target));
        }
    }
    let generations = directory.join("generations");
    let Ok(entries) = std::fs::read_dir(&generations) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if !linked.iter().any(|target| target == &path) {
            std::fs::remove_dir_all(&path)?;
            tracing::info!(generation = %path.display(), "removed a generation no replica set uses");
        }
    }
    Ok(())
}

fn resolve(link: &Path, target: &Path) -> PathBuf {
    match link.parent() {
        Some(parent) if target.is_relative() => parent.join(target),
        _ => target.to_owned(),
    }
}

/// Creates `link.next` → `generation` (relative) and renames it over `link`, then fsyncs the
/// directory so the new link survives a crash.
fn point(link: &Path, generation: &Path) -> std::io::Result<()> {
    let parent = link.parent().unwrap_or(Path::new("."));
    let relative = generation.strip_prefix(parent).unwrap_or(generation);
    let staged = link.with_extension("next");
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(relative, &staged)?;
    std::fs::rename(&staged, link)?;
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_generations_and_removes_the_unlinked() {
        let data_dir = std::env::temp_dir().join(format!("rewind-layout-{}", ObjectId::generate()));
        let cluster = ObjectId::generate();
        let link = ensure_engine_dir(&data_dir, cluster, "rs0").unwrap();
        std::fs::write(link.join("old"), b"old").unwrap();
        let first = std::fs::read_link(&link).unwrap();
        assert_eq!(
            ensure_engine_dir(&data_dir, cluster, "rs0").unwrap(),
            link,
            "idempotent"
        );
        assert_eq!(std::fs::read_link(&link).unwrap(), first);

        let next = new_generation(&data_dir, cluster);
        std::fs::create_dir_all(&next).unwrap();
        std::fs::write(next.join("new"), b"new").unwrap();
        let previous = swap(&data_dir, cluster, "rs0", &next).unwrap().unwrap();
        assert!(link.join("new").exists() && !link.join("old").exists());
        assert!(
            previous.join("old").exists(),
            "the old generation is still there"
        );
        let abandoned = new_generation(&data_dir, cluster);
        std::fs::create_dir_all(&abandoned).unwrap();
        remove_unlinked_generations(&data_dir, cluster).unwrap();
        assert!(!previous.exists() && !abandoned.exists());
        assert!(link.join("new").exists());
        std::fs::remove_dir_all(&data_dir).unwrap();
    }
}
