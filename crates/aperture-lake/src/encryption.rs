//! Encryption at rest: the master key, data keys kept wrapped in the catalog, and rotation.
//!
//! The blob store seals every object with its own data key (`aperture_blob::Encryption`);
//! this module gives it those keys. They live in the catalog's `data_keys` table, wrapped by
//! the master key, which stays outside the catalog and the blob store (`[encryption] key_file`
//! or `APERTURE_MASTER_KEY`). Erasure deletes the data keys in the transaction that deletes
//! the asset (a blob's when its last asset goes), so copies of the objects anywhere, in
//! backups and object-store versions, cannot be read by anyone afterwards.

use std::path::Path;
use std::sync::Arc;

use aperture_blob::{DataKeys, Encryption, KeyRing, SecretKey};
use aperture_catalog::Backend;
use aperture_core::KeyOwner;

use crate::config::Config;
use crate::{Error, Lake, Result};

/// Keys made at once by many writers are recorded together: one transaction (one sync) per
/// batch, so an encrypted ingest of many small files is not one sync per file.
const KEY_BATCH: usize = 256;

/// A new wrapped key to record, answered with the key kept for its owner (`None`: an erased
/// asset's).
type KeepKeys = aperture_ingest::GroupCommit<(KeyOwner, Vec<u8>), Result<Option<Vec<u8>>, String>>;

/// Data keys from the catalog, unwrapped with the master key.
pub(crate) struct CatalogKeys {
    catalog: Arc<dyn Backend>,
    ring: KeyRing,
    /// Records new wrapped keys in batches; answers the key kept for each.
    keep: KeepKeys,
}

impl std::fmt::Debug for CatalogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogKeys")
            .field("master", &self.ring.current().id())
            .finish_non_exhaustive()
    }
}

impl CatalogKeys {
    /// Starts the batch writer on the current Tokio runtime.
    fn start(catalog: Arc<dyn Backend>, ring: KeyRing) -> Self {
        let writer = catalog.clone();
        let keep = aperture_ingest::GroupCommit::start(
            KEY_BATCH,
            Box::new(move |keys: Vec<(KeyOwner, Vec<u8>)>| {
                let catalog = writer.clone();
                Box::pin(async move {
                    let n = keys.len();
                    let kept =
                        tokio::task::spawn_blocking(move || catalog.keep_data_keys(&keys)).await;
                    match kept {
                        Ok(Ok(kept)) => kept.into_iter().map(Ok).collect(),
                        Ok(Err(e)) => vec![Err(e.to_string()); n],
                        Err(e) => vec![Err(e.to_string()); n],
                    }
                })
            }),
        );
        Self {
            catalog,
            ring,
            keep,
        }
    }
}

#[async_trait::async_trait]
impl DataKeys for CatalogKeys {
    async fn data_key(
        &self,
        owner: KeyOwner,
        create: bool,
    ) -> aperture_blob::Result<Option<SecretKey>> {
        let keys = |problem: String| aperture_blob::Error::Keys {
            problem: format!("catalog: {problem}"),
        };
        let catalog = self.catalog.clone();
        let found = match tokio::task::spawn_blocking(move || catalog.data_key(owner)).await {
            Ok(found) => found.map_err(|e| keys(e.to_string()))?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let wrapped = match found {
            Some(wrapped) => wrapped,
            None if create => {
                let fresh = self.ring.wrap(owner, &SecretKey::random()?)?;
                let kept = self
                    .keep
                    .submit((owner, fresh))
                    .await
                    .map_err(|e| keys(e.to_string()))?
                    .map_err(keys)?;
                match kept {
                    Some(kept) => kept,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        self.ring.unwrap(owner, &wrapped).map(Some)
    }
}

/// The master key ring of `config`: the key from `APERTURE_MASTER_KEY` or the key file, and
/// the earlier ones. `None` when the lake is not configured to encrypt.
pub(crate) fn key_ring(config: &Config) -> Result<Option<KeyRing>> {
    let current = match (&config.master_key, &config.master_key_file) {
        (Some(key), _) => key.clone(),
        (None, Some(file)) => read_key_file(file)?,
        (None, None) => return Ok(None),
    };
    let previous = config
        .previous_master_key_files
        .iter()
        .map(|f| read_key_file(f))
        .collect::<Result<_>>()?;
    Ok(Some(KeyRing::new(current, previous)))
}

/// The blob store's encryption for a lake whose catalog is `catalog`: the name key (made by
/// `init`; a lake that is only opened must have it) and data keys from the catalog.
pub(crate) async fn encryption(
    ring: KeyRing,
    catalog: Arc<dyn Backend>,
    init: bool,
) -> Result<Encryption> {
    let keys = Arc::new(CatalogKeys::start(catalog, ring));
    let names = keys.data_key(KeyOwner::Names, init).await?.ok_or_else(|| {
        Error::config(
            "a master key is configured, and the catalog keeps no key for blob names: a \
                 lake is encrypted when it is made (aperture init --encrypt); is this the \
                 lake's catalog?",
        )
    })?;
    Ok(Encryption::new(names, keys))
}

/// How many data keys each master key wraps (by key id): a master key may be retired once
/// none does.
pub async fn key_status(lake: &Lake) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut counts = std::collections::BTreeMap::new();
    let mut after = None;
    loop {
        let page = lake.catalog(move |c| c.data_keys_page(after, 1000)).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        for (_, wrapped) in page {
            let id = wrapped
                .get(1..9)
                .map_or_else(|| "unreadable".to_owned(), aperture_core::hex);
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Reads a master key file: 64 hex digits.
pub fn read_key_file(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read master key", path))?;
    SecretKey::from_hex(&text)
        .map_err(|problem| Error::config(format!("master key {}: {problem}", path.display())))
}

/// Writes a new random master key to `path`, readable by its owner only. Refuses to replace
/// an existing file: losing a master key loses every object it protects.
pub fn make_key_file(path: &Path) -> Result<SecretKey> {
    if path.exists() {
        return Err(Error::config(format!(
            "{} exists; a master key is never overwritten",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    let key = SecretKey::random()?;
    crate::audit_key::write_private(path, &format!("{}\n", key.to_hex().as_str()))
        .map_err(Error::io("write", path))?;
    Ok(key)
}

/// What [`Lake::rotate_master_key`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Data keys rewrapped with the new master key.
    pub rewrapped: u64,
    /// Data keys already wrapped by it (a rotation run again).
    pub already: u64,
    /// Data keys erased or changed by another process while the rotation ran.
    pub gone: u64,
    /// Data keys that could not be unwrapped or rewrapped, with why (left as they were).
    pub failed: Vec<String>,
}

impl Lake {
    /// Rewraps every data key with `new`, unwrapping with the configured master key or an
    /// earlier one; no object is read or rewritten. Safe to run again after an interruption
    /// (it skips what is done) and while the lake is in use, as long as every process of the
    /// lake accepts both keys (`previous_key_files`) until all of them use the new one.
    pub async fn rotate_master_key(&self, new: SecretKey, actor: &str) -> Result<Rotation> {
        let Some(old) = key_ring(&self.config)? else {
            return Err(Error::config(
                "this lake is not encrypted: there is no master key to rotate",
            ));
        };
        let mut previous = vec![old.current().clone()];
        previous.extend(
            self.config
                .previous_master_key_files
                .iter()
                .map(|f| read_key_file(f))
                .collect::<Result<Vec<_>>>()?,
        );
        let ring = KeyRing::new(new, previous);
        let mut done = Rotation::default();
        let mut after = None;
        loop {
            let page = self.catalog(move |c| c.data_keys_page(after, 500)).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            for (owner, wrapped) in page {
                if ring.is_current(&wrapped) {
                    done.already += 1;
                    continue;
                }
                // One key that does not unwrap (altered, or wrapped by a key not given) is
                // reported and the rest go on.
                let rewrapped = match ring
                    .unwrap(owner, &wrapped)
                    .and_then(|k| ring.wrap(owner, &k))
                {
                    Ok(rewrapped) => rewrapped,
                    Err(e) => {
                        done.failed.push(e.to_string());
                        continue;
                    }
                };
                if self
                    .catalog(move |c| c.rewrap_data_key(owner, &wrapped, &rewrapped))
                    .await?
                {
                    done.rewrapped += 1;
                } else {
                    done.gone += 1;
                }
            }
        }
        let detail = serde_json::json!({
            "new_key": ring.current().id(),
            "rewrapped": done.rewrapped,
            "already": done.already,
            "gone": done.gone,
            "failed": done.failed.len(),
        });
        self.audit(actor, "key_rotate", None, detail).await?;
        Ok(done)
    }
}
