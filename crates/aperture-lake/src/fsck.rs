//! Checking the store against the catalog: is every blob intact, does every asset have its
//! blob, and what did interrupted runs leave behind?

use std::collections::{HashMap, HashSet};

use std::fmt;

use aperture_core::human::{HumanBytes, HumanCount, capped};
use aperture_core::{ContentHash, UnixMillis};
use futures::TryStreamExt;
use serde::Serialize;

use crate::{Lake, Result};

/// What [`Lake::fsck`] does.
#[derive(Debug, Clone)]
pub struct FsckOptions {
    /// Remove what interrupted runs left behind: unreferenced blobs, staged uploads, and
    /// deletions that were started but not finished (all older than `min_age_secs`).
    pub repair: bool,
    /// With `repair`: leave leftovers younger than this (they may belong to an ingest that
    /// is still running).
    pub min_age_secs: i64,
    /// Check sizes only instead of reading and hashing every blob.
    pub quick: bool,
}

/// What [`Lake::fsck`] found.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    /// Blobs in the store.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Blobs whose bytes do not match their hash.
    pub corrupt: Vec<String>,
    /// Assets whose blob is missing.
    pub missing: Vec<ContentHash>,
    /// Blobs no asset uses: left by an interrupted ingest or deletion. Harmless; reclaimable.
    /// Corrupt ones among them are listed in `corrupt` too.
    pub unreferenced: Vec<ContentHash>,
    /// The bytes of the unreferenced blobs.
    pub unreferenced_bytes: u64,
    /// Large files staged by an ingest that did not finish.
    pub staging_leftovers: u64,
    /// Derived objects (thumbnails) of assets that no longer exist: an interrupted `rm`.
    pub orphan_derived: u64,
    /// Deletions started and not finished (older than the minimum age).
    pub unfinished_deletions: u64,
    /// Encrypted blobs whose data key is gone (their content hash is known to nobody): left
    /// by an interrupted deletion or ingest, unreadable by anyone. Reclaimable.
    pub keyless: u64,
    /// Data keys of blobs that were never stored (an ingest that stopped between making the
    /// key and recording its asset), older than the minimum age.
    pub unused_keys: u64,
    /// What `repair` removed.
    pub repaired: u64,
}

impl Findings {
    /// True when every asset's blob is present and intact.
    pub fn healthy(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

impl Lake {
    /// Checks every blob and every asset's blob; with `options.repair`, tidies what
    /// interrupted runs left behind.
    pub async fn fsck(&self, options: &FsckOptions) -> Result<Findings> {
        let mut f = Findings::default();
        let cutoff = UnixMillis::now().0 - options.min_age_secs.max(0) * 1000;

        // Deletions first, so that their blobs are not counted as unreferenced below. Only those
        // older than --min-age: a younger one may belong to an `rm` that is still running.
        let unfinished = self
            .catalog(move |c| c.unfinished_blob_deletions(UnixMillis(cutoff)))
            .await?;
        f.unfinished_deletions = unfinished.len() as u64;
        if options.repair {
            for hash in unfinished {
                if let Some(claim) = self.catalog(move |c| c.claim_blob_deletion(hash)).await?
                    && self.delete_claimed(claim).await?
                {
                    f.repaired += 1;
                }
            }
        }

        // Held in memory: fine for millions of blobs. At hundreds of millions this wants a merge
        // of the two hash-ordered listings instead.
        let mut referenced = HashMap::new();
        let mut after = None;
        loop {
            let page = self
                .catalog(move |c| c.referenced_blobs(after, 10_000))
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            referenced.extend(page);
        }

        // An encrypted store names blobs by keyed hashes: the lake knows the hashes behind the
        // names of referenced blobs and of those that still have a data key.
        let mut by_name = HashMap::new();
        if self.blobs.is_encrypted() {
            for hash in referenced.keys() {
                by_name.insert(self.blobs.blob_name(*hash), *hash);
            }
            let mut after = None;
            loop {
                let page = self
                    .catalog(move |c| c.data_keys_page(after, 10_000))
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.0);
                for (owner, _) in page {
                    if let aperture_core::KeyOwner::Blob(hash) = owner {
                        by_name.insert(self.blobs.blob_name(hash), hash);
                    }
                }
            }
        }

        let mut present = HashSet::new();
        let mut listing = self.blobs.list();
        while let Some(entry) = listing.try_next().await? {
            f.blobs += 1;
            f.blob_bytes += entry.size;
            let Some(hash) = entry.hash.or_else(|| by_name.get(&entry.name).copied()) else {
                f.keyless += 1;
                f.unreferenced_bytes += entry.size;
                // Checked again right before: an ingest may have sealed the same content anew
                // under this name since the listing.
                if options.repair
                    && entry.last_modified.0 < cutoff
                    && self
                        .blobs
                        .delete_named_if_unchanged(&entry.name, entry.last_modified)
                        .await?
                {
                    f.repaired += 1;
                }
                continue;
            };
            present.insert(hash);
            match referenced.get(&hash) {
                Some(&size) if size != entry.size => {
                    f.corrupt.push(format!(
                        "{hash}: {} bytes stored, the catalog says {size}",
                        entry.size
                    ));
                    continue;
                }
                Some(_) => {}
                None => {
                    f.unreferenced.push(hash);
                    f.unreferenced_bytes += entry.size;
                    // Claimed through the catalog first, so that an ingest that just found this
                    // blob present retries rather than recording a row without its bytes.
                    if options.repair
                        && entry.last_modified.0 < cutoff
                        && let Some(claim) =
                            self.catalog(move |c| c.claim_blob_deletion(hash)).await?
                        && self.delete_claimed(claim).await?
                    {
                        f.repaired += 1;
                        continue;
                    }
                }
            }
            // Every blob is read and hashed, used or not.
            if !options.quick
                && let Err(e) = self.blobs.verify(hash).await
            {
                f.corrupt.push(e.to_string());
            }
        }
        f.missing = referenced
            .keys()
            .filter(|h| !present.contains(*h))
            .copied()
            .collect();
        f.missing.sort();

        for owner in self.blobs.derived_owners().await? {
            let exists = match self.catalog(move |c| c.asset(owner)).await {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e),
            };
            if !exists {
                f.orphan_derived += 1;
                // The asset is gone for good (ids are never reused): no age limit needed.
                if options.repair {
                    self.blobs.delete_derived(owner).await?;
                    f.repaired += 1;
                }
            }
        }

        if self.blobs.is_encrypted() && options.repair {
            f.unused_keys = self
                .catalog(move |c| c.drop_unused_blob_keys(UnixMillis(cutoff)))
                .await?;
            f.repaired += f.unused_keys;
        }

        for entry in self.blobs.list_staging().await? {
            f.staging_leftovers += 1;
            if options.repair && entry.last_modified.0 < cutoff {
                self.blobs.delete_staging(&entry).await?;
                f.repaired += 1;
            }
        }

        Ok(f)
    }
}

/// The findings as `aperture fsck` prints them (`repair`: whether leftovers were removed).
pub struct FsckReport<'a>(pub &'a Findings, pub bool);

impl fmt::Display for FsckReport<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (f, repair) = (self.0, self.1);
        writeln!(
            out,
            "checked {} blobs ({})",
            HumanCount(f.blobs),
            HumanBytes(f.blob_bytes)
        )?;
        if !f.corrupt.is_empty() {
            writeln!(out, "CORRUPT blobs ({}):", f.corrupt.len())?;
            write!(out, "{}", capped(&f.corrupt, 20, "--json lists them all"))?;
        }
        if !f.missing.is_empty() {
            writeln!(out, "MISSING blobs of assets ({}):", f.missing.len())?;
            let missing: Vec<String> = f.missing.iter().map(|h| h.to_string()).collect();
            write!(out, "{}", capped(&missing, 20, "--json lists them all"))?;
        }
        writeln!(
            out,
            "{} unreferenced blobs ({}), {} staged uploads left over, {} unfinished deletions, \
             derived objects of {} erased assets",
            f.unreferenced.len() as u64 + f.keyless,
            HumanBytes(f.unreferenced_bytes),
            f.staging_leftovers,
            f.unfinished_deletions,
            f.orphan_derived
        )?;
        if repair {
            writeln!(out, "repaired {}", f.repaired)?;
        } else if !f.unreferenced.is_empty()
            || f.staging_leftovers > 0
            || f.unfinished_deletions > 0
        {
            writeln!(
                out,
                "(aperture fsck --repair removes leftovers older than an hour)"
            )?;
        }
        write!(
            out,
            "{}",
            if f.healthy() {
                "ok: every asset's blob is present and intact"
            } else {
                "NOT OK"
            }
        )
    }
}
