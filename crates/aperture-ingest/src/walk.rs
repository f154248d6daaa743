//! Finding files: a blocking thread walks the given paths and streams what it finds.

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::{FileError, FileErrorKind};

pub(crate) enum Found {
    File {
        path: PathBuf,
        size: u64,
        modified_ns: Option<i64>,
    },
    /// A path that could not be walked: unreadable folder, symlink loop, vanished file.
    Error { path: PathBuf, error: FileError },
}

/// Walks `roots` and sends what it finds; returns how many hidden entries it left out.
pub(crate) fn spawn(
    roots: Vec<PathBuf>,
    follow_symlinks: bool,
    include_hidden: bool,
    tx: mpsc::Sender<Found>,
) -> tokio::task::JoinHandle<u64> {
    tokio::task::spawn_blocking(move || {
        let mut hidden = 0u64;
        for root in roots {
            // Record absolute paths, so that a later run from another folder knows the files.
            // Not canonicalised: the names the user gave (symbolic links included) are kept.
            let root = std::path::absolute(&root).unwrap_or(root);
            // A path given by name is always taken, hidden or not; inside folders, names
            // starting with a dot (.git, .DS_Store, .Trash) are left out unless asked for.
            let entries = walkdir::WalkDir::new(&root)
                .follow_links(follow_symlinks)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    let skip = !include_hidden
                        && e.depth() > 0
                        && e.file_name().as_encoded_bytes().starts_with(b".");
                    hidden += u64::from(skip);
                    !skip
                });
            for entry in entries {
                let found = match entry {
                    Ok(entry) if entry.file_type().is_dir() => continue,
                    Ok(entry) => file(entry),
                    Err(e) => {
                        let path = e.path().map_or_else(|| root.clone(), |p| p.to_path_buf());
                        Some(Found::Error {
                            error: FileError::new(FileErrorKind::Walk, walk_error(&e)),
                            path,
                        })
                    }
                };
                if let Some(found) = found
                    && tx.blocking_send(found).is_err()
                {
                    return hidden; // the ingest was dropped
                }
            }
        }
        hidden
    })
}

fn file(entry: walkdir::DirEntry) -> Option<Found> {
    let path = entry.path().to_path_buf();
    let meta = match entry.metadata() {
        Ok(meta) => meta,
        Err(e) => {
            return Some(Found::Error {
                error: FileError::new(FileErrorKind::Walk, walk_error(&e)),
                path,
            });
        }
    };
    if !meta.is_file() {
        // Symlinks we do not follow, sockets, fifos, devices: not files to keep.
        let what = if meta.file_type().is_symlink() {
            "a symbolic link (not followed)"
        } else {
            "not a regular file"
        };
        tracing::debug!(path = %path.display(), "skipped: {what}");
        return Some(Found::Error {
            error: FileError::new(
                FileErrorKind::Walk,
                format!("skipped {}: {what}", path.display()),
            ),
            path,
        });
    }
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    Some(Found::File {
        path,
        size: meta.len(),
        modified_ns,
    })
}

fn walk_error(e: &walkdir::Error) -> String {
    let path = e
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if let Some(ancestor) = e.loop_ancestor() {
        return format!(
            "cannot read {path}: symbolic link loop back to {}",
            ancestor.display()
        );
    }
    match e.io_error() {
        Some(io) => format!("cannot read {path}: {io}"),
        None => format!("cannot read {path}: {e}"),
    }
}
