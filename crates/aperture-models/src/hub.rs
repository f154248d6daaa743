//! Pulling models from the Hugging Face hub: plain HTTPS GETs of
//! `{endpoint}/{id}/resolve/{revision}/{file}`, into `<models>/hf/<id>/`.
//!
//! The hub answers a large (LFS) file with a redirect to its storage that carries the file's
//! sha256 (`X-Linked-Etag`) and size (`X-Linked-Size`); redirects are followed by hand so
//! those headers are seen and the download is checked against them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{
    Error, FileRecord, Lock, RECORD, RECORD_VERSION, Record, Result, SourceRecord, Staging,
    copy_hashed, create_parent, valid_relative, valid_segment,
};

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The files pulled when none are named: what a transformer loader reads.
pub const DEFAULT_FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];

/// The files pulled of an OPUS-MT translation model (`Helsinki-NLP/opus-mt-ru-en`) when none
/// are named: its repositories have SentencePiece models and a vocabulary, no
/// `tokenizer.json`.
pub const OPUS_MT_FILES: &[&str] = &[
    "config.json",
    "model.safetensors",
    "source.spm",
    "target.spm",
    "vocab.json",
];

/// The files pulled of model `id` when none are named.
pub fn default_files(id: &str) -> &'static [&'static str] {
    if id
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with("opus-mt-"))
    {
        OPUS_MT_FILES
    } else {
        DEFAULT_FILES
    }
}

const MAX_REDIRECTS: usize = 5;

/// A client for one hub endpoint.
pub struct Hub {
    endpoint: Url,
    token: Option<String>,
    agent: ureq::Agent,
}

/// What [`Hub::pull`] put where.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub path: PathBuf,
    pub record: Record,
}

impl Hub {
    /// A client for `endpoint` (`https://huggingface.co`, or a mirror), sending `token` (for
    /// gated and private models) to that endpoint only.
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Self> {
        let invalid = |reason| Error::InvalidInput {
            what: "hub endpoint",
            value: endpoint.to_owned(),
            reason,
        };
        let mut url = Url::parse(endpoint).map_err(|_| invalid("not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("must be an http or https URL"));
        }
        // `join` replaces the last segment unless the path ends with a slash.
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent(concat!("aperture/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Hub {
            endpoint: url,
            token: token.filter(|t| !t.is_empty()),
            agent,
        })
    }

    /// The endpoint, without a trailing slash.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str().trim_end_matches('/')
    }

    /// Downloads `files` (default [`DEFAULT_FILES`]) of model `id` at `revision` into
    /// `<dir>/hf/<id>/`, replacing what was there only once every file has arrived.
    pub fn pull(&self, dir: &Path, id: &str, revision: &str, files: &[String]) -> Result<Pulled> {
        let dest = folder(dir, id)?;
        check_revision(revision)?;
        let files: Vec<&str> = if files.is_empty() {
            default_files(id).to_vec()
        } else {
            files.iter().map(String::as_str).collect()
        };
        for file in &files {
            if !valid_relative(file) || *file == RECORD {
                return Err(Error::InvalidInput {
                    what: "file name",
                    value: (*file).to_owned(),
                    reason: "use a relative path of letters, digits, `.`, `_`, `-` and `/`",
                });
            }
        }
        let lock = Lock::acquire(dir)?;
        let staging = Staging::new(&dir.join("hf"), &lock)?;
        let mut records = Vec::with_capacity(files.len());
        let mut commit = None;
        for file in files {
            let out = staging.model().join(file);
            create_parent(&out)?;
            let (record, file_commit) = self.fetch(id, revision, file, &out)?;
            commit = commit.or(file_commit);
            records.push(record);
        }
        let record = Record {
            format_version: RECORD_VERSION,
            name: id.to_owned(),
            format: "hub".to_owned(),
            licence: "see the model card".to_owned(),
            sources: vec![SourceRecord::HuggingFace {
                endpoint: self.endpoint().to_owned(),
                id: id.to_owned(),
                revision: revision.to_owned(),
                commit,
            }],
            files: records,
        };
        record.write(&staging.model())?;
        staging.commit(&dest)?;
        tracing::info!(id, revision, path = %dest.display(), "pulled from the hub");
        Ok(Pulled { path: dest, record })
    }

    /// Downloads one file to `out`; returns its record and the commit the hub named.
    fn fetch(
        &self,
        id: &str,
        revision: &str,
        file: &str,
        out: &Path,
    ) -> Result<(FileRecord, Option<String>)> {
        // A revision such as `refs/pr/1` is one path segment to the hub.
        let path = format!("{id}/resolve/{}/{file}", revision.replace('/', "%2F"));
        let mut url = self.endpoint.join(&path).map_err(|_| Error::InvalidInput {
            what: "model id",
            value: id.to_owned(),
            reason: "does not make a URL",
        })?;
        let mut linked_sha256 = None;
        let mut linked_size = None;
        let mut commit = None;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.agent.get(url.as_str());
            if let Some(token) = &self.token
                && url.origin() == self.endpoint.origin()
            {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let response = request.call().map_err(|e| Error::Unreachable {
                endpoint: url.origin().ascii_serialization(),
                reason: e.to_string(),
            })?;
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_owned())
            };
            commit = commit.or_else(|| header("x-repo-commit"));
            linked_sha256 = linked_sha256.or_else(|| header("x-linked-etag").and_then(sha256_etag));
            linked_size =
                linked_size.or_else(|| header("x-linked-size").and_then(|s| s.parse().ok()));
            let status = response.status();
            if status.is_redirection() {
                let location = header("location").ok_or_else(|| Error::Transfer {
                    url: url.to_string(),
                    reason: format!("HTTP {} without a Location", status.as_u16()),
                })?;
                url = url.join(&location).map_err(|_| Error::Transfer {
                    url: url.to_string(),
                    reason: format!("bad redirect to {location}"),
                })?;
                continue;
            }
            if !status.is_success() {
                return Err(Error::HubStatus {
                    id: id.to_owned(),
                    revision: revision.to_owned(),
                    file: file.to_owned(),
                    status: status.as_u16(),
                });
            }
            let mut body = response.into_body().into_reader();
            let limit = linked_size.map_or(u64::MAX, |n: u64| n.saturating_add(1));
            let (sha256, size) =
                copy_hashed(&mut body, out, limit).map_err(|e| Error::Transfer {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
            let name = format!("{file} of {id}");
            if let Some(expected) = linked_size
                && expected != size
            {
                return Err(Error::Size {
                    file: name,
                    expected,
                    actual: size,
                });
            }
            if let Some(expected) = linked_sha256
                && expected != sha256
            {
                return Err(Error::Checksum {
                    file: name,
                    expected,
                    actual: sha256,
                });
            }
            let record = FileRecord {
                name: file.to_owned(),
                sha256,
                size,
            };
            return Ok((record, commit));
        }
        Err(Error::Transfer {
            url: url.to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

/// The folder of hub model `id` under the models folder `dir`.
pub(crate) fn folder(dir: &Path, id: &str) -> Result<PathBuf> {
    let segments: Vec<&str> = id.split('/').collect();
    if segments.len() > 2 || !segments.iter().all(|s| valid_segment(s)) {
        return Err(Error::InvalidInput {
            what: "model id",
            value: id.to_owned(),
            reason: "expected NAME or ORG/NAME of letters, digits, `.`, `_` and `-`",
        });
    }
    Ok(segments
        .iter()
        .fold(dir.join("hf"), |path, segment| path.join(segment)))
}

fn check_revision(revision: &str) -> Result<()> {
    let ok =
        !revision.is_empty() && revision.len() <= 200 && revision.split('/').all(valid_segment);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            what: "revision",
            value: revision.to_owned(),
            reason: "expected a branch, tag or commit",
        })
    }
}

/// The sha256 in an `X-Linked-Etag`, which the hub sends for LFS files (quoted hex). Other
/// etags (a git blob id for small files) are not sha256 and are ignored.
fn sha256_etag(etag: String) -> Option<String> {
    let value = etag.trim_start_matches("W/").trim_matches('"');
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

/// The message for a refusal from the hub, with what usually fixes it.
pub(crate) fn status_message(id: &str, revision: &str, file: &str, status: u16) -> String {
    let what = format!("{file} of {id} at revision {revision}");
    match status {
        401 | 403 => format!(
            "the hub refused {what} (HTTP {status}): the model does not exist, or is private or \
             gated; check the id, accept its terms on the hub and set HF_TOKEN"
        ),
        404 => format!("the hub has no {what} (HTTP 404)"),
        _ => format!("the hub answered HTTP {status} for {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_hub_ids_and_revisions_stay_inside_the_folder() {
        let dir = Path::new("/m");
        assert_eq!(
            folder(dir, "sentence-transformers/all-MiniLM-L6-v2").unwrap(),
            Path::new("/m/hf/sentence-transformers/all-MiniLM-L6-v2")
        );
        assert_eq!(folder(dir, "gpt2").unwrap(), Path::new("/m/hf/gpt2"));
        for bad in [
            "",
            "../x",
            "a/../b",
            "a/b/c",
            ".hidden/x",
            "a//b",
            "/abs",
            "a b",
        ] {
            assert!(folder(dir, bad).is_err(), "{bad}");
        }
        for good in ["main", "v1.0", "refs/pr/1", "0123abcd"] {
            assert!(check_revision(good).is_ok(), "{good}");
        }
        for bad in ["", "..", "a/../b", "x y"] {
            assert!(check_revision(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn models_hub_linked_etags_give_sha256() {
        let sha = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
        assert_eq!(sha256_etag(format!("\"{sha}\"")).as_deref(), Some(sha));
        assert_eq!(
            sha256_etag(format!("W/\"{}\"", sha.to_uppercase())).as_deref(),
            Some(sha)
        );
        assert_eq!(
            sha256_etag("\"a3f1c0de9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49\"".into()),
            None
        );
    }

    #[test]
    fn models_hub_refusals_say_what_to_do() {
        let m = status_message("org/m", "main", "model.safetensors", 401);
        assert!(m.contains("HF_TOKEN") && m.contains("org/m"), "{m}");
        let m = status_message("org/m", "main", "x.json", 404);
        assert_eq!(
            m,
            "the hub has no x.json of org/m at revision main (HTTP 404)"
        );
    }
}
