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

impl Lake {
    /// The text of asset `id` (document pages, OCR lines, what was said) translated into
    /// `to` (two letters), as `translation` insights at the places of the originals; text no
    /// installed engine reaches `to` from gets an empty one with a note. Text already in `to`
    /// is left out.
    pub async fn translate(&self, id: AssetId, to: &str) -> Result<Vec<Insight>> {
        if to.len() != 2 || !to.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Error::InvalidInput {
                what: format!("language {to:?}"),
                reason: "give a two-letter language code such as en, es, ru".into(),
            });
        }
        let (asset, insights) = self
            .catalog(move |c| Ok((c.asset(id)?, c.insights_of_kinds(&[id], &TRANSLATED_KINDS)?)))
            .await?;
        let lake = self.clone();
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut analyzer = lake.translator().clone();
            analyzer.targets = vec![to.clone()];
            let sources = analyzer.sources(&insights);
            if sources.is_empty() {
                return Err(Error::InvalidInput {
                    what: asset.name.clone(),
                    reason: format!(
                        "it has no text outside {to} (yet: text, OCR and speech analysis run \
                         with `aperture index`)"
                    ),
                });
            }
            analyzer
                .translate(&asset, &sources, &to)
                .map_err(|e| Error::InvalidInput {
                    what: asset.name.clone(),
                    reason: e.to_string(),
                })
        })
        .await?
    }
}
