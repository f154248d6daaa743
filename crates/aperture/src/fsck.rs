//! `aperture fsck`: is every blob intact, and does every asset have its blob? (The checks
//! are [`Lake::fsck`]'s.)

use std::process::ExitCode;

use aperture_lake::{Findings, FsckOptions, Lake};

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

pub async fn run(lake: &Lake, args: Args) -> anyhow::Result<ExitCode> {
    let f = lake
        .fsck(&FsckOptions {
            repair: args.repair,
            min_age_secs: args.min_age,
            quick: args.quick,
        })
        .await?;
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
