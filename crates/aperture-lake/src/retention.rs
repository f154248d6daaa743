//! Retention and legal hold per collection: what is erased when, and what may not be.

use std::time::Duration;

use aperture_catalog::Collection;
use aperture_core::UnixMillis;

use crate::{Error, Lake, Result};

/// Assets erased per sweep page.
const SWEEP_PAGE: usize = 256;

/// Reads a retention as `aperture collection set --retention` takes it: a whole number with a
/// unit (`90d`, `12h`, `30m`, `45s`), or `off` (kept for ever). Seconds, or `None` for off.
pub fn parse_retention(text: &str) -> Result<Option<u64>> {
    let text = text.trim();
    if matches!(text, "off" | "none" | "forever") {
        return Ok(None);
    }
    let bad = || Error::InvalidInput {
        what: format!("retention {text:?}"),
        reason: "give a whole number and a unit (90d, 12h, 30m, 45s), or off".into(),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    // At least a second, and no more than a thousand years: anything else is a typing slip.
    match number.checked_mul(unit) {
        Some(secs) if (1..=1_000 * 365 * 86_400).contains(&secs) => Ok(Some(secs)),
        _ => Err(bad()),
    }
}

/// A retention as people read it: `90d`, `12h`, `30m`, `45s`, or `off`.
pub fn show_retention(secs: Option<u64>) -> String {
    match secs {
        None => "off".into(),
        Some(s) if s % 86_400 == 0 => format!("{}d", s / 86_400),
        Some(s) if s % 3_600 == 0 => format!("{}h", s / 3_600),
        Some(s) if s % 60 == 0 => format!("{}m", s / 60),
        Some(s) => format!("{s}s"),
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Assets erased because their retention ran out.
    pub erased: u64,
    /// Assets that could not be erased (said in the log); the next sweep tries again.
    pub failed: u64,
}

impl Lake {
    /// Changes a collection's retention, legal hold or plate reading (what is `None` stays as
    /// it is), audited first as done by `actor` with the change asked for. Only admins call
    /// this (the API checks the scope; the CLI is the machine's own). The change is one
    /// statement, so a hold set meanwhile by another admin is never written back.
    pub async fn change_collection(
        &self,
        actor: &str,
        name: &str,
        change: aperture_catalog::PolicyChange,
    ) -> Result<Collection> {
        let owned = name.to_owned();
        self.catalog(move |c| c.collection(&owned)).await?;
        // The entry first: a hold lifted that is not in the log must not happen.
        let mut asked = serde_json::Map::new();
        if let Some(retention) = change.retention_secs {
            asked.insert("retention".into(), show_retention(retention).into());
        }
        if let Some(hold) = change.legal_hold {
            asked.insert("legal_hold".into(), hold.into());
        }
        if let Some(read) = change.read_plates {
            asked.insert("read_plates".into(), read.into());
        }
        self.audit(
            actor,
            "collection_set",
            Some(name.to_owned()),
            serde_json::Value::Object(asked),
        )
        .await?;
        let owned = name.to_owned();
        self.catalog(move |c| c.change_collection(&owned, &change))
            .await
    }

    /// Erases every asset whose collection's retention has run out (counted from its ingest
    /// into the collection), unless the collection is under legal hold; each erasure is in the
    /// audit log first (`retention_erase`, by `actor`). Safe to run in many processes at once:
    /// an asset another sweep erased first is skipped.
    pub async fn sweep_retention(&self, actor: &str) -> Result<Swept> {
        let mut swept = Swept::default();
        loop {
            let now = UnixMillis::now();
            let due = self
                .catalog(move |c| c.expired_assets(now, SWEEP_PAGE))
                .await?;
            let mut progressed = false;
            for id in &due {
                let id = *id;
                self.audit(
                    actor,
                    "retention_erase",
                    Some(id.to_string()),
                    serde_json::json!({}),
                )
                .await?;
                match self.erase(id).await {
                    Ok(_) => {
                        swept.erased += 1;
                        progressed = true;
                    }
                    // Erased by another sweep meanwhile, or held since it was listed.
                    Err(Error::Catalog(
                        aperture_catalog::Error::NotFound { .. }
                        | aperture_catalog::Error::LegalHold { .. },
                    )) => {}
                    Err(e) => {
                        tracing::warn!(asset = %id, error = %e, "retention could not erase an asset");
                        swept.failed += 1;
                    }
                }
            }
            if due.len() < SWEEP_PAGE || !progressed {
                return Ok(swept);
            }
        }
    }

    /// Sweeps every `every` until `stop` completes (servers and workers run this); failures
    /// are logged and tried again at the next sweep.
    pub async fn run_retention(
        &self,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            match self.sweep_retention("aperture:retention").await {
                Ok(swept) if swept.erased > 0 || swept.failed > 0 => {
                    tracing::info!(
                        erased = swept.erased,
                        failed = swept.failed,
                        "retention sweep"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; trying again later"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_read_and_print() {
        for (text, secs) in [
            ("90d", Some(90 * 86_400)),
            ("12h", Some(43_200)),
            ("30m", Some(1_800)),
            ("45s", Some(45)),
            ("off", None),
        ] {
            assert_eq!(parse_retention(text).unwrap(), secs, "{text}");
            assert_eq!(show_retention(secs), text);
        }
        for bad in [
            "",
            "d",
            "90",
            "90w",
            "-1d",
            "0s",
            "1.5d",
            "99999999999999999999d",
        ] {
            let e = parse_retention(bad).unwrap_err().to_string();
            assert!(e.contains("whole number and a unit"), "{bad}: {e}");
        }
    }
}
