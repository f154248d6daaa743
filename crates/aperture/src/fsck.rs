//! `aperture fsck`: is every blob intact, and does every asset have its blob? (The checks
//! are [`Lake::fsck`]'s.)

use std::process::ExitCode;

use aperture_lake::{FsckOptions, FsckReport, Lake};

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
        println!("{}", FsckReport(&f, args.repair));
    }
    Ok(if f.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
