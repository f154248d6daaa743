//! `POST /api/v1/assets`: a multipart upload, streamed to a staging file part by part (never
//! held whole in memory), then ingested like any file once the body has ended (so the
//! `collection` field may come before or after the files). One refused file does not stop the
//! others; a body that breaks the protocol or the size limit ends the request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aperture_catalog::{NewAuditEntry, Scope};
use aperture_ingest::{FileErrorKind, FileStatus, Ingester, NoProgress};
use axum::extract::{DefaultBodyLimit, Multipart, State as Shared};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::State;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};

/// Files one request may carry.
const MAX_FILES: usize = 1000;
/// Longest file name accepted, in bytes.
const MAX_NAME: usize = 255;
/// Longest `collection` field read: the catalog's 128 characters, at up to 4 bytes each.
const MAX_COLLECTION_BYTES: usize = 4 * 128;

/// Room for multipart headers and boundaries around the files' bytes.
const OVERHEAD: u64 = 1 << 20;

pub fn routes(max_upload_bytes: u64) -> Router<Arc<State>> {
    // The whole body is bounded (headers of a part included, which the multipart parser
    // holds in memory until they end); the files' bytes are also counted as they arrive,
    // for an error that names the file.
    let limit = usize::try_from(max_upload_bytes.saturating_add(OVERHEAD)).unwrap_or(usize::MAX);
    Router::new().route(
        "/api/v1/assets",
        post(upload).layer(DefaultBodyLimit::max(limit)),
    )
}

#[derive(Debug, Serialize)]
struct Uploaded {
    name: String,
    /// new, duplicate, known or failed.
    status: &'static str,
    asset: Option<String>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl Uploaded {
    fn failed(name: &str, error: String) -> Self {
        Self {
            name: name.to_owned(),
            status: "failed",
            asset: None,
            error: Some(error),
            warnings: Vec::new(),
        }
    }
}

/// A control character, or the line or paragraph separator (not control characters, but
/// they break a line wherever a name is shown or logged).
fn breaks_lines(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// A file name as its sender gave it, if it is a plain name: no folders, no `..`, no control
/// characters.
fn check_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("the file has no name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the file name is {} bytes long; the limit is {MAX_NAME}",
            name.len()
        ));
    }
    if name.chars().any(breaks_lines) {
        return Err(format!("the file name {name:?} holds control characters"));
    }
    // Invisible characters that reorder or hide text make a name lie about itself
    // (`gpj.exe` shown as `exe.jpg`).
    let hiding = |c: char| {
        matches!(
            c,
            '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
    };
    if name.chars().any(hiding) {
        return Err(format!(
            "the file name {name:?} holds invisible formatting characters"
        ));
    }
    if name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return Err(format!(
            "the file name {name:?} is a path; send a plain file name"
        ));
    }
    Ok(name.to_owned())
}

/// Removes a request's staging folder however the request ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let dir = self.0.clone();
        // Not on the async thread: the folder may hold large files.
        let remove = move || {
            let _ = std::fs::remove_dir_all(dir);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

fn too_large(state: &State, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the upload passed the limit of {} MiB at {name}",
            state.limits.max_upload_bytes >> 20
        ),
    )
}

fn malformed(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(
        e.status(),
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_multipart"
        },
        format!(
            "the upload is not a well-formed multipart body: {}",
            e.body_text()
        ),
    )
}

async fn upload(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Scope::Ingest)?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send files as multipart/form-data: {}", e.body_text()),
        )
    })?;
    let idle = state.limits.idle_timeout;
    let stalled = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the upload stalled: nothing arrived for {} s",
                idle.as_secs()
            ),
        )
    };
    let staging = Staging(
        state
            .upload_dir
            .join(uuid::Uuid::now_v7().simple().to_string()),
    );
    tokio::fs::create_dir_all(&staging.0)
        .await
        .map_err(ApiError::internal)?;

    let mut collection: Option<String> = None;
    let mut results: Vec<Uploaded> = Vec::new();
    let mut staged: Vec<(usize, PathBuf)> = Vec::new();
    let mut total: u64 = 0;
    loop {
        let field = tokio::time::timeout(idle, multipart.next_field())
            .await
            .map_err(|_| stalled())?
            .map_err(malformed)?;
        let Some(mut field) = field else { break };
        match field.name().unwrap_or_default() {
            // Before or after the files: nothing is stored until the body has ended.
            "collection" => {
                if collection.is_some() {
                    return Err(ApiError::bad_request("send at most one 'collection' field"));
                }
                let mut text = Vec::new();
                while let Some(chunk) = tokio::time::timeout(idle, field.chunk())
                    .await
                    .map_err(|_| stalled())?
                    .map_err(malformed)?
                {
                    text.extend_from_slice(&chunk);
                    if text.len() > MAX_COLLECTION_BYTES {
                        return Err(ApiError::bad_request(
                            "the collection name is longer than 128 characters",
                        ));
                    }
                }
                // Not trimmed: the name is the one the catalog checks, and the document's
                // pattern describes.
                let name = String::from_utf8(text)
                    .map_err(|_| ApiError::bad_request("the collection name is not UTF-8"))?;
                // Refused as soon as it is read: a client that names the collection first
                // (as the web UI does) sends no file bytes for a collection it may not use.
                let effective = if name.is_empty() {
                    state.lake.config.ingest.default_collection.clone()
                } else {
                    name.clone()
                };
                caller.require_collection(&effective)?;
                collection = Some(name);
            }
            "file" => {
                if results.len() == MAX_FILES {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_files",
                        format!("one upload may carry at most {MAX_FILES} files"),
                    ));
                }
                // A part without a filename is a form field, not a file: the client is
                // wrong about the protocol, not about one file (an empty name is refused
                // below, as that file's failure).
                let Some(raw) = field.file_name() else {
                    return Err(ApiError::bad_request(format!(
                        "the 'file' field #{} is not a file: its part has no filename",
                        results.len() + 1
                    )));
                };
                // Names are checked below; what is logged is bounded either way.
                let raw: String = raw.chars().take(2 * MAX_NAME).collect();
                // A refused file's bytes are read past to reach the next part; they count
                // towards the limit all the same (the limit is on the whole request).
                let mut sink = match check_name(&raw) {
                    Ok(name) => {
                        let dir = staging.0.join(results.len().to_string());
                        tokio::fs::create_dir(&dir)
                            .await
                            .map_err(ApiError::internal)?;
                        let path = dir.join(&name);
                        let file = tokio::fs::File::create(&path)
                            .await
                            .map_err(ApiError::internal)?;
                        Ok((name, path, file))
                    }
                    Err(error) => Err(error),
                };
                let shown = sink
                    .as_ref()
                    .map_or(raw.clone(), |(name, _, _)| name.clone());
                while let Some(chunk) = tokio::time::timeout(idle, field.chunk())
                    .await
                    .map_err(|_| stalled())?
                    .map_err(malformed)?
                {
                    total += chunk.len() as u64;
                    if total > state.limits.max_upload_bytes {
                        return Err(too_large(&state, &shown));
                    }
                    if let Ok((_, _, file)) = sink.as_mut() {
                        file.write_all(&chunk).await.map_err(ApiError::internal)?;
                    }
                }
                let (name, path, mut file) = match sink {
                    Ok(staged) => staged,
                    Err(error) => {
                        results.push(Uploaded::failed(&raw, format!("refused: {error}")));
                        continue;
                    }
                };
                file.flush().await.map_err(ApiError::internal)?;
                drop(file);
                results.push(Uploaded {
                    name,
                    status: "failed",
                    asset: None,
                    error: None,
                    warnings: Vec::new(),
                });
                staged.push((results.len() - 1, path));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form field '{other}': send 'collection' and 'file' fields"
                )));
            }
        }
    }
    if results.is_empty() {
        return Err(ApiError::bad_request("the upload holds no 'file' field"));
    }
    // An empty name is no name, as an empty query parameter is none.
    let collection = collection
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| state.lake.config.ingest.default_collection.clone());
    caller.require_collection(&collection)?;
    // A name the catalog refuses is the request's fault (400), found before anything is
    // recorded; ingesting makes the collection anyway.
    let name = collection.clone();
    state
        .lake
        .catalog(move |c| c.ensure_collection(&name))
        .await?;
    // Every file the request carried, refused ones too, is in the log before any is stored.
    // The name is private, erased with the asset ingested from it (its source path).
    for file in &results {
        state
            .record(
                NewAuditEntry::new(
                    caller.actor(),
                    "upload",
                    Some(collection.clone()),
                    json!({}),
                )
                .naming_path(
                    &format!("upload/{}/{}", caller.token.name, file.name),
                    json!({ "name": file.name }),
                ),
            )
            .await?;
    }

    let mut options = state.lake.ingest_options(collection.clone());
    options.report_every_file = true;
    let ingester = Ingester::new(state.lake.blobs.clone(), state.lake.catalog.clone());
    let data_dir = &state.lake.config.data_dir;
    for (n, path) in staged {
        let name = results[n].name.clone();
        if let Err(e) = refuse_bombs(&path, &name).await {
            results[n] = Uploaded::failed(&name, e);
            continue;
        }
        let size = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        options.record_under = Some((
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            PathBuf::from(format!("upload/{}", caller.token.name)),
        ));
        let report = ingester
            .ingest(std::slice::from_ref(&path), &options, &NoProgress)
            .await
            .map_err(|e| ApiError::from(aperture_lake::Error::from(e)))?;
        let Some(file) = report.files.into_iter().next() else {
            results[n] = Uploaded::failed(&name, "the upload vanished before ingest".into());
            continue;
        };
        let status = match file.status {
            FileStatus::Stored => "new",
            FileStatus::Duplicate => "duplicate",
            FileStatus::Known => "known",
            FileStatus::Failed => "failed",
        };
        if status != "failed" {
            state
                .metrics
                .bytes_ingested
                .fetch_add(size, Ordering::Relaxed);
            state.metrics.files_ingested.fetch_add(1, Ordering::Relaxed);
        }
        results[n] = Uploaded {
            status,
            asset: file.asset.map(|a| a.to_string()),
            error: file.error.map(|e| match e.kind {
                // The server's own failures: it staged the file, so reading it (or finding
                // it gone) is one of them too.
                FileErrorKind::Store
                | FileErrorKind::Catalog
                | FileErrorKind::Read
                | FileErrorKind::Walk => server_failure(&name, &e.message),
                FileErrorKind::TooLarge | FileErrorKind::DeletionInProgress => {
                    as_sent(&e.message, &name, &file.path, data_dir)
                        .unwrap_or_else(|| server_failure(&name, &e.message))
                }
            }),
            warnings: file
                .warnings
                .iter()
                .map(|w| {
                    as_sent(w, &name, &file.path, data_dir)
                        .unwrap_or_else(|| logged_warning(&name, w))
                })
                .collect(),
            name,
        };
    }
    state.status_changed().await;
    // Each file's name and outcome is private, erased with its asset (or with the asset later
    // ingested from its path, when this one failed).
    let mut entry = NewAuditEntry::new(
        caller.actor(),
        "ingest",
        Some(collection.clone()),
        json!({ "files": results.len() }),
    );
    for r in &results {
        let detail = json!({ "name": r.name, "status": r.status, "asset": r.asset });
        entry = match r.asset.as_deref().and_then(|a| a.parse().ok()) {
            Some(asset) => entry.naming(asset, detail),
            None => entry.naming_path(&format!("upload/{}/{}", caller.token.name, r.name), detail),
        };
    }
    state.record(entry).await?;
    Ok(Json(json!({ "collection": collection, "files": results })))
}

/// Refuses an image whose header promises more pixels than the analyzers will ever decode:
/// a decompression bomb is not stored at all. A staged file that cannot be read, or a check
/// that fails, is the server's failure, not a refusal ([`server_failure`]).
async fn refuse_bombs(path: &Path, name: &str) -> Result<(), String> {
    let (staged, shown) = (path.to_path_buf(), name.to_owned());
    match tokio::task::spawn_blocking(move || aperture_media::check_image_size(&staged, &shown))
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ aperture_media::TooLarge::Io { .. })) => Err(server_failure(name, &e)),
        Ok(Err(refused)) => Err(format!("refused: {refused}")),
        Err(e) => Err(server_failure(name, &e)),
    }
}

/// A failure of the server's own with one uploaded file (storing it, recording it, reading
/// back what it staged): logged in full with an id, answered with the id alone, since its
/// message names the server's folders.
fn server_failure(name: &str, error: &dyn std::fmt::Display) -> String {
    let id = super::error::log_id();
    tracing::error!(file = name, %error, %id, "an uploaded file could not be taken");
    format!("the server could not take {name} (logged as {id}); the file was not added")
}

/// A warning about a stored file that names the server's folders: logged, answered with
/// its id.
fn logged_warning(name: &str, warning: &str) -> String {
    let id = super::error::log_id();
    tracing::warn!(file = name, %warning, %id, "a warning about an uploaded file");
    format!("a problem with {name} was noted in the server's log (logged as {id})")
}

/// A message about an uploaded file as its sender may see it: `walked` (the path ingest read
/// the staged file by, which its messages name) shown as the name it was sent as. `None`
/// when it still names the lake's data folder some other way.
fn as_sent(message: &str, name: &str, walked: &str, data_dir: &Path) -> Option<String> {
    let shown = if walked.is_empty() {
        message.to_owned()
    } else {
        message.replace(walked, name)
    };
    (!shown.contains(data_dir.to_string_lossy().as_ref())).then_some(shown)
}

#[cfg(test)]
mod tests {
    use super::{MAX_NAME, as_sent, breaks_lines, check_name};

    #[test]
    fn messages_name_the_file_as_sent_not_where_it_was_staged() {
        let data = std::path::Path::new("/srv/aperture");
        let staged = "/srv/aperture/uploads/0191a2b3c4/0/cat.jpg";
        let message = format!("cannot ingest {staged}: the same content is being deleted");
        assert_eq!(
            as_sent(&message, "cat.jpg", staged, data).as_deref(),
            Some("cannot ingest cat.jpg: the same content is being deleted")
        );
        // A message that does not name the staged file is left as it is.
        assert_eq!(
            as_sent("refused: too big", "cat.jpg", staged, data).as_deref(),
            Some("refused: too big")
        );
        // One that names another of the server's paths is not shown (made up: ingest's
        // messages name the file by the path it read).
        let other = "cannot write /srv/aperture/blobs/blobs/fed/fed898: Not a directory";
        assert_eq!(as_sent(other, "cat.jpg", staged, data), None);
    }

    proptest::proptest! {
        /// A name that passes is a plain name: never a path, never hidden characters.
        #[test]
        fn accepted_names_are_plain(raw in "\\PC{0,40}|\\.\\./[a-z]{1,5}|[a-z]{1,5}/[a-z]{1,5}") {
            if let Ok(name) = check_name(&raw) {
                proptest::prop_assert!(!name.contains(['/', '\\']) && name != ".." && name != ".");
                proptest::prop_assert!(!name.chars().any(breaks_lines));
                proptest::prop_assert!(!name.is_empty() && name.len() <= MAX_NAME);
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(check_name(" cat.jpg ").unwrap(), "cat.jpg");
        assert_eq!(check_name("東京 2024.png").unwrap(), "東京 2024.png");
        for bad in [
            "",
            "../etc/passwd",
            "a/b.jpg",
            "a\\b.jpg",
            "..",
            "a\nb",
            "a\u{7}b",
            "photo\u{202E}gpj.exe",
            "zero\u{200B}width.jpg",
            "arabic\u{061C}mark.jpg",
            "line\u{2028}break.jpg",
            "paragraph\u{2029}break.jpg",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(300)).is_err());
    }
}
