//! Translating an asset's text on demand, into any language an engine reaches: what
//! `aperture translate` and `POST /api/v1/assets/{id}/translations` run. Nothing is stored:
//! the `translate` analyzer keeps the translations into the lake's target languages.

use aperture_core::{AssetId, Insight, InsightValue};

use crate::{Error, Lake, Result};

/// The insight kinds whose text is translated.
const TRANSLATED_KINDS: [&str; 3] = [
    InsightValue::TEXT,
    InsightValue::OCR_LINE,
    InsightValue::TRANSCRIPT_SEGMENT,
];

/// Whether `code` is a language to translate into: two lower-case letters. Callers check it
/// before they audit the request.
pub fn check_language(code: &str) -> Result<()> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()) {
        return Ok(());
    }
    Err(Error::InvalidInput {
        what: format!("language {code:?}"),
        reason: "give a two-letter language code such as en, es, ru".into(),
    })
}

/// Text translated on demand per call at most, in bytes: the start of a long document.
pub const ON_DEMAND_MAX_BYTES: usize = 256 << 10;

impl Lake {
    /// The text of asset `id` (document pages, OCR lines, what was said) translated into
    /// `to` (two letters), as `translation` insights at the places of the originals (the first
    /// [`ON_DEMAND_MAX_BYTES`], the last one marked cut); text no installed engine reaches
    /// `to` from gets an empty one with a note. Text already in `to` is left out (an asset
    /// with no other text, or none analysed yet, gives an empty list). One call
    /// runs at a time: another gets [`Error::Translation`] with `busy`.
    pub async fn translate(&self, id: AssetId, to: &str) -> Result<Vec<Insight>> {
        check_language(to)?;
        let (asset, insights) = self
            .catalog(move |c| Ok((c.asset(id)?, c.insights_of_kinds(&[id], &TRANSLATED_KINDS)?)))
            .await?;
        // One at a time per lake, the rest refused rather than queued: each holds a blocking
        // thread and its engines for as long as its text takes.
        let Ok(permit) = self.on_demand.clone().try_acquire_owned() else {
            return Err(Error::Translation {
                message: "another translation is running; try again shortly".into(),
                busy: true,
            });
        };
        let lake = self.clone();
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut analyzer = lake.translator().clone();
            analyzer.targets = vec![to.clone()];
            analyzer.max_bytes = analyzer.max_bytes.min(ON_DEMAND_MAX_BYTES);
            let sources = analyzer.sources(&insights);
            analyzer
                .translate(&asset, &sources, &to)
                .map_err(|e| Error::Translation {
                    message: e.to_string(),
                    busy: false,
                })
        })
        .await?
    }
}
