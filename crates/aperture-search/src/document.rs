//! What search knows of one asset, read from the catalog: the words to index, the vectors to
//! index, and what a hit can point at to say why it matched.

use std::collections::BTreeSet;

use aperture_catalog::{Asset, Source};
use aperture_core::{AssetId, Insight, InsightValue, MediaKind, Place, UnixMillis, value};

use serde::{Deserialize, Serialize};

use crate::query::{Has, capture_day};

/// Labels below this probability are not indexed: they are the model's guesses, not findings.
pub const LABEL_MIN_CONFIDENCE: f32 = 0.1;

/// A label the model gave the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// As the taxonomy names it, e.g. `tabby, tabby cat`.
    pub name: String,
    /// The model's probability, at least [`LABEL_MIN_CONFIDENCE`].
    pub confidence: f32,
    /// Where it was seen, when not in the whole asset: a video's shots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
}

/// A piece of text in the asset: an OCR line, a document's (page) text, what was said, or a
/// translation of one of those.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// The text as the analyzer gave it.
    pub text: String,
    /// Its BCP 47 language, when detected; picks the analyser it is indexed with.
    pub language: Option<String>,
    /// Where in the asset it is, for a hit to point at.
    pub place: Place,
    /// `ocr` (an OCR line), `text` (a document's own text), `transcript` (what was said) or
    /// `translation`.
    pub source: &'static str,
    /// For a translation: the text translated and its language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
}

/// The text a translation was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Original {
    /// The text as the analyzer that found it gave it.
    pub text: String,
    /// Its language.
    pub language: String,
    /// Its kind of passage: `ocr`, `text`, `transcript`.
    pub source: String,
}

/// A passage as stored in the index, whose source is read back into its static name.
#[derive(Deserialize)]
struct StoredPassage {
    text: String,
    language: Option<String>,
    place: Place,
    source: String,
    #[serde(default)]
    original: Option<Original>,
}

impl<'de> Deserialize<'de> for Passage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = StoredPassage::deserialize(d)?;
        Ok(Passage {
            text: p.text,
            language: p.language,
            place: p.place,
            source: match p.source.as_str() {
                "ocr" => "ocr",
                "transcript" => "transcript",
                "translation" => "translation",
                _ => "text",
            },
            original: p.original,
        })
    }
}

/// What a hit is explained from: stored beside the asset's full-text document, so that a
/// search reads no catalog rows (and decodes no vectors) to say why an asset matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    /// The file name.
    pub name: String,
    /// Every path it was ingested from.
    pub paths: Vec<String>,
    /// Camera, codecs, MIME type.
    pub meta: Vec<String>,
    /// The labels that were indexed.
    pub labels: Vec<Label>,
    /// The text that was indexed, with its places.
    pub passages: Vec<Passage>,
    /// Per vector, in the order the vector spaces hold an asset's vectors: its space and what
    /// it embeds (a text embedding's excerpt).
    pub vector_texts: Vec<(String, Option<String>)>,
    /// Per vector, in the same order, where in the asset it applies (a page, a shot).
    #[serde(default)]
    pub vector_places: Vec<Place>,
}

/// One vector of the asset, in the embedding space its model defines.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    /// The embedding space, e.g. `all-minilm-l6-v2`; only vectors of one space are compared.
    pub space: String,
    /// The vector, finite and non-empty.
    pub vector: Vec<f32>,
    /// Where in the asset it applies.
    pub place: Place,
    /// What the vector embeds, for a text embedding (its excerpt).
    pub text: Option<String>,
}

/// Everything search needs of one asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    /// The asset.
    pub asset: AssetId,
    /// The name of its collection, for filtering by what a caller may see.
    pub collection: String,
    /// What it is.
    pub kind: MediaKind,
    /// The capture day when known, else the ingest time.
    pub date: UnixMillis,
    /// The name it was most recently ingested under.
    pub name: String,
    /// Every path it was ingested from.
    pub paths: Vec<String>,
    /// Camera, codecs, MIME type.
    pub meta: Vec<String>,
    /// Labels the model is sure enough of, in the order the analyzer stored them.
    pub labels: Vec<Label>,
    /// Text found in the asset.
    pub passages: Vec<Passage>,
    /// Languages of its text, as BCP 47 tags.
    pub languages: BTreeSet<String>,
    /// Languages its text was translated into.
    pub translated: BTreeSet<String>,
    /// What `has:` finds in it.
    pub has: BTreeSet<Has>,
    /// Its vectors, in every space.
    pub vectors: Vec<Vector>,
    /// A 64-bit perceptual hash of the image, when computed.
    pub phash: Option<u64>,
}

impl Indexed {
    /// What a hit on this asset is explained from.
    pub fn explained(&self) -> Explained {
        Explained {
            name: self.name.clone(),
            paths: self.paths.clone(),
            meta: self.meta.clone(),
            labels: self.labels.clone(),
            passages: self.passages.clone(),
            vector_texts: self
                .vectors
                .iter()
                .map(|v| (v.space.clone(), v.text.clone()))
                .collect(),
            vector_places: self.vectors.iter().map(|v| v.place).collect(),
        }
    }

    /// Builds the searchable view of an asset. Insights that cannot be read (a damaged vector)
    /// are skipped with a warning: one bad insight never keeps the asset out of search.
    pub fn new(asset: &Asset, sources: &[Source], insights: &[Insight]) -> Indexed {
        let meta = &asset.metadata;
        let date = meta
            .captured_at
            .as_deref()
            .and_then(capture_day)
            .unwrap_or(asset.ingested_at);
        let mut indexed = Indexed {
            asset: asset.id,
            collection: asset.collection.clone(),
            kind: asset.kind,
            date,
            name: asset.name.clone(),
            paths: sources.iter().map(|s| s.path.clone()).collect(),
            meta: [
                Some(asset.mime.as_str()),
                meta.camera_make.as_deref(),
                meta.camera_model.as_deref(),
                meta.container.as_deref(),
                meta.video_codec.as_deref(),
                meta.audio_codec.as_deref(),
            ]
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect(),
            labels: Vec::new(),
            passages: Vec::new(),
            languages: BTreeSet::new(),
            translated: BTreeSet::new(),
            has: BTreeSet::new(),
            vectors: Vec::new(),
            phash: None,
        };
        if meta.gps.is_some() {
            indexed.has.insert(Has::Gps);
        }
        for insight in insights {
            indexed.add(insight);
        }
        indexed.find_originals();
        indexed
    }

    /// Each translation's original: the passage of its kind at its place.
    fn find_originals(&mut self) {
        for n in 0..self.passages.len() {
            let Some(Original { source, .. }) = &self.passages[n].original else {
                continue;
            };
            let place = self.passages[n].place;
            let found = self
                .passages
                .iter()
                .find(|p| p.original.is_none() && p.source == source && p.place == place)
                .map(|p| (p.text.clone(), p.language.clone()));
            if let Some((text, language)) = found
                && let Some(original) = self.passages[n].original.as_mut()
            {
                original.text = text;
                if let Some(language) = language {
                    original.language = language;
                }
            }
        }
    }

    fn add(&mut self, insight: &Insight) {
        match &insight.value {
            InsightValue::Label(label) => {
                let confidence = insight.confidence.unwrap_or(0.0);
                if confidence >= LABEL_MIN_CONFIDENCE {
                    self.labels.push(Label {
                        name: label.name.clone(),
                        confidence,
                        place: (insight.place != Place::Whole).then_some(insight.place),
                    });
                    self.has.insert(Has::Labels);
                }
            }
            InsightValue::OcrLine(value::OcrLine { text, .. })
            | InsightValue::Text(value::Text { text, .. })
            | InsightValue::TranscriptSegment(value::TranscriptSegment { text, .. }) => {
                if text.trim().is_empty() {
                    return;
                }
                let source = match insight.value {
                    InsightValue::Text(_) => "text",
                    InsightValue::TranscriptSegment(_) => "transcript",
                    _ => {
                        self.has.insert(Has::Ocr);
                        "ocr"
                    }
                };
                self.has.insert(Has::Text);
                if let Some(lang) = &insight.language {
                    self.languages.insert(lang.clone());
                }
                self.passages.push(Passage {
                    text: text.clone(),
                    language: insight.language.clone(),
                    place: insight.place,
                    source,
                    original: None,
                });
            }
            InsightValue::Translation(t) => {
                if t.text.trim().is_empty() {
                    return;
                }
                self.translated.insert(t.target_language.clone());
                // The translator's judgement of the original's language counts for `lang:`
                // where the text's own analyzer could not tell.
                self.languages.insert(t.source_language.clone());
                self.passages.push(Passage {
                    text: t.text.clone(),
                    language: Some(t.target_language.clone()),
                    place: insight.place,
                    source: "translation",
                    // Its text is filled in once every insight is read.
                    original: Some(Original {
                        text: String::new(),
                        language: t.source_language.clone(),
                        source: match t.source.as_str() {
                            InsightValue::OCR_LINE => "ocr",
                            InsightValue::TRANSCRIPT_SEGMENT => "transcript",
                            _ => "text",
                        }
                        .into(),
                    }),
                });
            }
            InsightValue::PerceptualHash(hash) => self.phash = hash.as_u64(),
            InsightValue::TextEmbedding(value::TextEmbedding { vector, text, .. }) => {
                self.add_vector(insight, vector, Some(text.clone()));
            }
            InsightValue::ImageFeatures(vector) | InsightValue::ClipEmbedding(vector) => {
                self.add_vector(insight, vector, None);
            }
            _ => {}
        }
    }

    fn add_vector(
        &mut self,
        insight: &Insight,
        vector: &aperture_core::Vector,
        text: Option<String>,
    ) {
        if vector.data.is_empty() || !vector.data.iter().all(|x| x.is_finite()) {
            tracing::warn!(
                asset = %self.asset,
                analyzer = insight.analyzer,
                "skipping an unusable vector"
            );
            return;
        }
        self.vectors.push(Vector {
            space: vector.space.clone(),
            vector: vector.data.clone(),
            place: insight.place,
            text,
        });
    }

    /// The label names, each synonym on its own (`tabby, tabby cat` → `tabby`, `tabby cat`).
    pub fn label_names(&self) -> impl Iterator<Item = (&str, &Label)> {
        self.labels
            .iter()
            .flat_map(|l| l.name.split(',').map(move |n| (n.trim(), l)))
            .filter(|(n, _)| !n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use aperture_core::{MediaMetadata, Vector};

    use super::*;

    fn insight(value: InsightValue, confidence: Option<f32>) -> Insight {
        Insight {
            asset: AssetId::from_bytes([1; 16]),
            analyzer: "a".into(),
            analyzer_version: "1".into(),
            model: None,
            model_version: None,
            value,
            confidence,
            language: Some("en".into()),
            place: Place::Whole,
            created_at: UnixMillis(0),
        }
    }

    #[test]
    fn reads_what_search_needs_and_skips_the_unreadable() {
        let asset = Asset {
            id: AssetId::from_bytes([1; 16]),
            collection: "c".into(),
            hash: aperture_core::ContentHash::of(b"x"),
            size: 1,
            kind: MediaKind::Image,
            mime: "image/jpeg".into(),
            ingested_at: UnixMillis(5),
            captured_at: None,
            name: "cat.jpg".into(),
            metadata: MediaMetadata {
                captured_at: Some("2021:07:04 10:00:00".into()),
                ..MediaMetadata::default()
            },
        };
        let label = |name: &str| -> InsightValue {
            value::Label {
                name: name.into(),
                class: 281,
                rank: 1,
                taxonomy: "imagenet-1k".into(),
            }
            .into()
        };
        let features = |data: Vec<f32>| {
            InsightValue::ImageFeatures(Vector {
                space: "s".into(),
                data,
            })
        };
        let insights = [
            insight(label("tabby, tabby cat"), Some(0.8)),
            insight(label("guess"), Some(0.01)),
            insight(
                value::OcrLine {
                    text: "NO PARKING".into(),
                    quad: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
                    engine: "ppocr".into(),
                }
                .into(),
                Some(0.9),
            ),
            insight(
                value::PerceptualHash {
                    hash: "00000000000000ff".into(),
                    bits: 64,
                }
                .into(),
                None,
            ),
            insight(features(vec![0.6, 0.8]), None),
            insight(features(vec![f32::NAN, 0.8]), None),
        ];
        let indexed = Indexed::new(&asset, &[], &insights);
        assert_eq!(indexed.date, capture_day("2021:07:04").unwrap());
        assert_eq!(
            indexed.label_names().map(|(n, _)| n).collect::<Vec<_>>(),
            ["tabby", "tabby cat"]
        );
        assert_eq!(indexed.passages.len(), 1);
        assert_eq!(indexed.phash, Some(0xff));
        assert_eq!(indexed.vectors.len(), 1);
        assert_eq!(indexed.vectors[0].vector, [0.6, 0.8]);
        assert!(indexed.has.contains(&Has::Ocr) && indexed.has.contains(&Has::Labels));
        assert!(indexed.languages.contains("en"));
    }
}
