//! `aperture fsck`: is every blob intact, and does every asset have its blob?

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use aperture_catalog::BlobClaim;
use aperture_core::{ContentHash, UnixMillis};
use futures::TryStreamExt;
use serde::Serialize;

use crate::app::App;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove what interrupted runs left behind: unreferenced blobs, staged uploads, and
    /// deletions that were started but not finished (all older than --min-age).
    #[arg(long)]
    repair: bool,
    /// With --repair: leave leftovers younger than this many seconds (they may belong to an
    /// ingest that is still running).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    min_age: i64,
    /// Check sizes only instead of reading and hashing every blob.
    #[arg(long)]
    quick: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default, Serialize)]
struct Findings {
    blobs: u64,
    blob_bytes: u64,
    /// Blobs whose bytes do not match their hash.
    corrupt: Vec<String>,
    /// Assets whose blob is missing.
    missing: Vec<ContentHash>,
    /// Blobs no asset uses: left by an interrupted ingest or deletion. Harmless; reclaimable.
    /// Corrupt ones among them are listed in `corrupt` too.
    unreferenced: Vec<ContentHash>,
    unreferenced_bytes: u64,
    staging_leftovers: u64,
    /// Derived objects (thumbnails) of assets that no longer exist: an interrupted `rm`.
    orphan_derived: u64,
    unfinished_deletions: u64,
    repaired: u64,
}

impl Findings {
    fn healthy(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

pub async fn run(app: &App, args: Args) -> anyhow::Result<ExitCode> {
    let mut f = Findings::default();
    let cutoff = UnixMillis::now().0 - args.min_age.max(0) * 1000;

    // Deletions first, so that their blobs are not counted as unreferenced below. Only those
    // older than --min-age: a younger one may belong to an `rm` that is still running.
    let unfinished = app
        .catalog(move |c| c.unfinished_blob_deletions(UnixMillis(cutoff)))
        .await?;
    f.unfinished_deletions = unfinished.len() as u64;
    if args.repair {
        for hash in unfinished {
            if let Some(claim) = app.catalog(move |c| c.claim_blob_deletion(hash)).await?
                && delete_claimed(app, claim).await?
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
        let page = app
            .catalog(move |c| c.referenced_blobs(after, 10_000))
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        referenced.extend(page);
    }

    let mut present = HashSet::new();
    let mut listing = app.blobs.list();
    while let Some(entry) = listing.try_next().await? {
        f.blobs += 1;
        f.blob_bytes += entry.size;
        present.insert(entry.hash);
        match referenced.get(&entry.hash) {
            Some(&size) if size != entry.size => {
                f.corrupt.push(format!(
                    "{}: {} bytes stored, the catalog says {size}",
                    entry.hash, entry.size
                ));
                continue;
            }
            Some(_) => {}
            None => {
                f.unreferenced.push(entry.hash);
                f.unreferenced_bytes += entry.size;
                // Claimed through the catalog first, so that an ingest that just found this
                // blob present retries rather than recording a row without its bytes.
                let hash = entry.hash;
                if args.repair
                    && entry.last_modified.0 < cutoff
                    && let Some(claim) = app.catalog(move |c| c.claim_blob_deletion(hash)).await?
                    && delete_claimed(app, claim).await?
                {
                    f.repaired += 1;
                    continue;
                }
            }
        }
        // Every blob is read and hashed, used or not.
        if !args.quick
            && let Err(e) = app.blobs.verify(entry.hash).await
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

    for owner in app.blobs.derived_owners().await? {
        let exists = match app.catalog(move |c| c.asset(owner)).await {
            Ok(_) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(e),
        };
        if !exists {
            f.orphan_derived += 1;
            // The asset is gone for good (ids are never reused): no age limit needed.
            if args.repair {
                app.blobs.delete_derived(owner).await?;
                f.repaired += 1;
            }
        }
    }

    for entry in app.blobs.list_staging().await? {
        f.staging_leftovers += 1;
        if args.repair && entry.last_modified.0 < cutoff {
            app.blobs.delete_staging(&entry).await?;
            f.repaired += 1;
        }
    }

    if args.json {
        output::json(&serde_json::json!({ "healthy": f.healthy(), "findings": f }))?;
    } else {
        report(&f, args.repair);
    }
    Ok(if f.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report(f: &Findings, repair: bool) {
    println!(
        "checked {} blobs ({})",
        output::count(f.blobs),
        output::bytes(f.blob_bytes)
    );
    if !f.corrupt.is_empty() {
        println!("CORRUPT blobs ({}):", f.corrupt.len());
        output::capped(f.corrupt.iter().cloned(), 20, "--json lists them all");
    }
    if !f.missing.is_empty() {
        println!("MISSING blobs of assets ({}):", f.missing.len());
        output::capped(
            f.missing.iter().map(|h| h.to_string()),
            20,
            "--json lists them all",
        );
    }
    println!(
        "{} unreferenced blobs ({}), {} staged uploads left over, {} unfinished deletions, \
         derived objects of {} erased assets",
        f.unreferenced.len(),
        output::bytes(f.unreferenced_bytes),
        f.staging_leftovers,
        f.unfinished_deletions,
        f.orphan_derived
    );
    if repair {
        println!("repaired {}", f.repaired);
    } else if !f.unreferenced.is_empty() || f.staging_leftovers > 0 || f.unfinished_deletions > 0 {
        println!("(aperture fsck --repair removes leftovers older than an hour)");
    }
    println!(
        "{}",
        if f.healthy() {
            "ok: every asset's blob is present and intact"
        } else {
            "NOT OK"
        }
    );
}

/// Deletes a claimed blob, unless the claim was taken over in the meantime (this deleter
/// stalled and `fsck --repair` finished the work). True when this call deleted it.
pub async fn delete_claimed(app: &App, claim: BlobClaim) -> anyhow::Result<bool> {
    if !app.catalog(move |c| c.still_claimed(claim)).await? {
        return Ok(false);
    }
    app.blobs.delete(claim.hash).await?;
    app.catalog(move |c| c.blob_deleted(claim)).await?;
    Ok(true)
}

fn is_not_found(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<aperture_catalog::Error>(),
        Some(aperture_catalog::Error::NotFound { .. })
    )
}
