//! `aperture collection`: collections with their retention and legal hold.

use std::process::ExitCode;

use aperture_lake::{Lake, parse_retention, show_retention};

use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum CollectionCommand {
    /// List collections with their retention and legal hold.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a collection's retention or legal hold (audited).
    Set {
        /// The collection.
        name: String,
        /// Erase assets this long after their ingest into the collection: 90d, 12h, 30m,
        /// 45s, or off (kept for ever).
        #[arg(long)]
        retention: Option<String>,
        /// on: nothing in the collection is erased, by hand or by retention, until the hold
        /// is lifted (off).
        #[arg(long, value_name = "on|off", value_parser = on_off)]
        legal_hold: Option<bool>,
        /// read: OCR reads licence plates on pictures of vehicles (a collection of documents);
        /// suppress (the default): plate-like text on them is neither stored nor indexed.
        #[arg(long, value_name = "read|suppress", value_parser = read_suppress)]
        plates: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Erase now what outlived its collection's retention (servers and workers do it every
    /// `[retention] sweep_every_secs`).
    Sweep {
        #[arg(long)]
        json: bool,
    },
}

fn read_suppress(text: &str) -> Result<bool, String> {
    match text {
        "read" => Ok(true),
        "suppress" => Ok(false),
        _ => Err(format!("{text:?}: say read or suppress")),
    }
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?}: say on or off")),
    }
}

pub async fn collection(lake: &Lake, command: CollectionCommand) -> anyhow::Result<ExitCode> {
    match command {
        CollectionCommand::List { json } => {
            let collections = lake.catalog(|c| c.collections()).await?;
            crate::access::record(
                lake,
                "list_collections",
                None,
                serde_json::json!({ "count": collections.len() }),
            )
            .await?;
            if json {
                output::json(&collections)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<24}  {:>10}  {:<10}  PLATES",
                "COLLECTION", "RETENTION", "LEGAL HOLD"
            );
            for c in &collections {
                println!(
                    "{:<24}  {:>10}  {:<10}  {}",
                    output::clip(&c.name, 24),
                    show_retention(c.retention_secs),
                    if c.legal_hold { "on" } else { "off" },
                    if c.read_plates { "read" } else { "suppressed" }
                );
            }
        }
        CollectionCommand::Set {
            name,
            retention,
            legal_hold,
            plates,
            json,
        } => {
            if retention.is_none() && legal_hold.is_none() && plates.is_none() {
                anyhow::bail!(
                    "say what to set: --retention 90d|off, --legal-hold on|off, --plates read|suppress"
                );
            }
            let retention = retention.as_deref().map(parse_retention).transpose()?;
            let change = aperture_catalog::PolicyChange {
                retention_secs: retention,
                legal_hold,
                read_plates: plates,
            };
            let set = lake
                .change_collection(&crate::access::cli_actor(), &name, change)
                .await?;
            if plates == Some(false) {
                eprintln!(
                    "note: text read before stays until OCR runs again: aperture reindex --analyzer ocr"
                );
            }
            if json {
                output::json(&set)?;
            } else {
                println!(
                    "collection {}: retention {}, legal hold {}, plates {}",
                    set.name,
                    show_retention(set.retention_secs),
                    if set.legal_hold { "on" } else { "off" },
                    if set.read_plates {
                        "read"
                    } else {
                        "suppressed"
                    }
                );
            }
        }
        CollectionCommand::Sweep { json } => {
            let swept = lake.sweep_retention(&crate::access::cli_actor()).await?;
            if swept.erased > 0
                && let Err(e) = lake.update_search().await
            {
                eprintln!(
                    "note: the search index drops the erased assets on its next update: {e:#}"
                );
            }
            if json {
                output::json(&swept)?;
            } else {
                println!(
                    "retention erased {} assets ({} could not be erased)",
                    output::count(swept.erased),
                    output::count(swept.failed)
                );
            }
            if swept.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
