//! Text embeddings of what describes an asset, so that search can match meaning and not only
//! words: its name, its image labels, the text read from it by OCR, and its document text.
//!
//! One vector describes the whole asset; a document also gets one vector per passage of its
//! text (with the page it is on), so that a query can land on the page that answers it. The
//! analyzer reads other analyzers' insights, so it runs after them and runs again whenever
//! they store new ones (see [`Analyzer::reads`]).

use std::path::Path;

use aperture_catalog::Asset;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, Vector, value};

use crate::embed::{MAX_TOKENS, TextEmbedder};
use crate::loaded::Loaded;
use crate::{Analyzer, Error, Input, Output, model_insight, models};

/// The embedding space of the offline pack's model; search compares vectors of one space only.
pub const MINILM_SPACE: &str = "all-minilm-l6-v2";
/// The manifest name of that model.
pub const MINILM_MODEL: &str = "minilm";
/// Words per document passage: comfortably under the model's token limit.
const PASSAGE_WORDS: usize = 120;
/// Passages embedded per asset; the description vector still covers a longer document.
const MAX_PASSAGES: usize = 256;
/// Labels below this confidence do not describe the image.
const MIN_LABEL_CONFIDENCE: f32 = 0.10;
/// How much of the embedded text an insight keeps, to show why it matched.
const EXCERPT_CHARS: usize = 200;

/// The analyzer: one vector for a description of the asset (labels, OCR text), and one per
/// passage of a document's text, all in one space.
pub struct TextEmbedding {
    model: Loaded<TextEmbedder>,
    /// ONNX Runtime, when installed: the encoder runs there.
    library: Option<std::path::PathBuf>,
    space: &'static str,
    fingerprint: String,
}

impl TextEmbedding {
    /// The analyzer over the installed MiniLM in the models folder `models_dir`, on ONNX
    /// Runtime when that is installed too, else in candle.
    pub fn new(models_dir: &Path) -> Result<Self, models::Error> {
        let folder = models::require(models_dir, MINILM_MODEL)?;
        let mut analyzer = Self::from_folder(folder, MINILM_SPACE)?;
        analyzer.library = crate::onnx::runtime_library(models_dir).ok();
        Ok(analyzer)
    }

    /// The analyzer over any BERT sentence-transformer folder (config.json, tokenizer.json,
    /// model.safetensors, installed.json), naming its embedding space.
    pub fn from_folder(
        folder: std::path::PathBuf,
        space: &'static str,
    ) -> Result<Self, models::Error> {
        let fingerprint = models::fingerprint(&folder)?;
        Ok(Self {
            model: Loaded::new(folder),
            library: None,
            space,
            fingerprint,
        })
    }

    fn vector_insight(
        &self,
        asset: &Asset,
        source: &str,
        text: &str,
        vector: &[f32],
        place: Place,
        language: Option<String>,
    ) -> Insight {
        let excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        Insight {
            language,
            place,
            ..model_insight(
                self,
                asset,
                (self.space, &self.fingerprint),
                value::TextEmbedding {
                    vector: Vector {
                        space: self.space.to_owned(),
                        data: vector.to_vec(),
                    },
                    source: source.to_owned(),
                    text: excerpt,
                }
                .into(),
            )
        }
    }
}

/// What the `embedding` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "embedding",
    version: "2",
    kinds: &[
        MediaKind::Image,
        MediaKind::Document,
        MediaKind::Video,
        MediaKind::Audio,
    ],
    priority: -10,
    reads: &["labels", "ocr", "text", "video", "speech", "translate"],
    produces: &[InsightValue::TEXT_EMBEDDING],
};

impl Analyzer for TextEmbedding {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn version(&self) -> String {
        format!("{}+{}", SPEC.version, self.fingerprint)
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let description = describe(input.asset, input.insights);
        let mut passages = passages(input.insights);
        // A video's shots, each described by what was seen in it.
        let shots = shot_descriptions(input.insights);
        let shot_count = shots.len();
        passages.splice(0..0, shots);
        let library = self.library.as_deref();
        let model = self
            .model
            .get(|folder| TextEmbedder::load_with(folder, library))?;
        let mut texts: Vec<&str> = vec![&description];
        texts.extend(passages.iter().map(|p| p.text.as_str()));
        let vectors = model.embed(&texts)?;
        let mut insights = vec![self.vector_insight(
            input.asset,
            "description",
            &description,
            &vectors[0],
            Place::Whole,
            None,
        )];
        for (n, (passage, vector)) in passages.iter().zip(&vectors[1..]).enumerate() {
            insights.push(self.vector_insight(
                input.asset,
                if n < shot_count {
                    "description"
                } else {
                    "text"
                },
                &passage.text,
                vector,
                passage.place,
                passage.language.clone(),
            ));
        }
        Ok(Output {
            insights,
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}

/// The text that describes an asset as a whole: its name in words, then its labels, the text
/// seen in it, and the start of its document text. The model reads the first
/// [`MAX_TOKENS`] tokens of it.
pub fn describe(asset: &Asset, insights: &[Insight]) -> String {
    let mut parts = vec![name_words(&asset.name)];
    let mut labels: Vec<(&Insight, &str)> = insights
        .iter()
        .filter(|i| i.confidence.unwrap_or(1.0) >= MIN_LABEL_CONFIDENCE)
        .filter_map(|i| match &i.value {
            InsightValue::Label(label) => Some((i, label.name.as_str())),
            _ => None,
        })
        .collect();
    labels.sort_by(|a, b| {
        b.0.confidence
            .partial_cmp(&a.0.confidence)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if !labels.is_empty() {
        let names: Vec<&str> = labels.iter().map(|(_, name)| *name).collect();
        parts.push(format!("a photo of {}", names.join(", ")));
    }
    // The text seen and said, its translations first: the model reads English best, and a
    // long foreign text would otherwise fill its window before any translation got in.
    let seen_translated: Vec<&str> = translations_of(insights, InsightValue::OCR_LINE).collect();
    if !seen_translated.is_empty() {
        parts.push(seen_translated.join(" "));
    }
    let seen: Vec<&str> = text_of(insights, InsightValue::OCR_LINE).collect();
    if !seen.is_empty() {
        parts.push(seen.join(" "));
    }
    // Enough document text (or of what was said) to fill the model's window; the passages
    // carry the rest.
    let mut words = 0;
    let translated = translations_of(insights, InsightValue::TEXT)
        .chain(translations_of(insights, InsightValue::TRANSCRIPT_SEGMENT));
    let said = text_of(insights, InsightValue::TRANSCRIPT_SEGMENT);
    for text in translated
        .chain(text_of(insights, InsightValue::TEXT))
        .chain(said)
    {
        if words > MAX_TOKENS {
            break;
        }
        words += text.split_whitespace().count();
        parts.push(
            text.split_whitespace()
                .take(MAX_TOKENS)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    parts.retain(|p| !p.is_empty());
    parts.join(". ")
}

fn text_of<'a>(
    insights: impl IntoIterator<Item = &'a Insight>,
    kind: &'a str,
) -> impl Iterator<Item = &'a str> {
    insights
        .into_iter()
        .filter(move |i| i.kind() == kind)
        .filter_map(|i| i.value.text())
        .filter(|t| !t.trim().is_empty())
}

/// The translations of the insights of `kind`.
fn translations_of<'a>(insights: &'a [Insight], kind: &'a str) -> impl Iterator<Item = &'a str> {
    insights
        .iter()
        .filter_map(move |i| match &i.value {
            InsightValue::Translation(t) if t.source == kind => Some(t.text.as_str()),
            _ => None,
        })
        .filter(|t| !t.trim().is_empty())
}

/// A file name as words: `eiffel_tower-2019.jpg` → `eiffel tower 2019`.
fn name_words(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 5 => stem,
        _ => name,
    };
    stem.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Passage {
    text: String,
    place: Place,
    language: Option<String>,
}

/// Per shot of a video, what was seen in it (its labels and on-screen text, from the
/// insights whose time range overlaps it), at the shot's place; shots with nothing seen are
/// left out.
fn shot_descriptions(insights: &[Insight]) -> Vec<Passage> {
    let overlaps = |a: Place, b: Place| match (a, b) {
        (
            Place::Time {
                start_ms: s1,
                end_ms: e1,
                ..
            },
            Place::Time {
                start_ms: s2,
                end_ms: e2,
                ..
            },
        ) => s1 < e2 && s2 < e1,
        _ => false,
    };
    insights
        .iter()
        .filter(|i| matches!(i.value, InsightValue::Shot(_)))
        .filter_map(|shot| {
            let seen: Vec<&Insight> = insights
                .iter()
                .filter(|i| !matches!(i.value, InsightValue::Shot(_)))
                .filter(|i| overlaps(i.place, shot.place))
                .collect();
            let mut parts = Vec::new();
            let mut labels: Vec<&Insight> = seen
                .iter()
                .copied()
                .filter(|i| i.kind() == InsightValue::LABEL)
                .filter(|i| i.confidence.unwrap_or(1.0) >= MIN_LABEL_CONFIDENCE)
                .collect();
            labels.sort_by(|a, b| {
                b.confidence
                    .unwrap_or(0.0)
                    .total_cmp(&a.confidence.unwrap_or(0.0))
            });
            let names: Vec<&str> = labels
                .iter()
                .filter_map(|i| match &i.value {
                    InsightValue::Label(l) => Some(l.name.as_str()),
                    _ => None,
                })
                .collect();
            if !names.is_empty() {
                parts.push(format!("a video frame of {}", names.join(", ")));
            }
            let text: Vec<&str> = text_of(seen.iter().copied(), InsightValue::OCR_LINE).collect();
            if !text.is_empty() {
                parts.push(text.join(" "));
            }
            (!parts.is_empty()).then(|| Passage {
                text: parts.join(". "),
                place: shot.place,
                language: None,
            })
        })
        .take(MAX_PASSAGES)
        .collect()
}

/// Document text, what was said and their translations (first: the model reads English
/// best), cut into passages of about [`PASSAGE_WORDS`] words, each at its place.
fn passages(insights: &[Insight]) -> Vec<Passage> {
    let mut out = Vec::new();
    let (translations, others): (Vec<&Insight>, Vec<&Insight>) = insights
        .iter()
        .partition(|i| matches!(i.value, InsightValue::Translation(_)));
    for insight in translations.into_iter().chain(others) {
        let text = match &insight.value {
            InsightValue::Text(value::Text { text, .. })
            | InsightValue::TranscriptSegment(value::TranscriptSegment { text, .. }) => text,
            InsightValue::Translation(t) if t.source != InsightValue::OCR_LINE => &t.text,
            _ => continue,
        };
        // Only the words the passages take are split off: a long text is not listed whole.
        let mut words = text.split_whitespace().peekable();
        while words.peek().is_some() {
            if out.len() == MAX_PASSAGES {
                return out;
            }
            let chunk: Vec<&str> = words.by_ref().take(PASSAGE_WORDS).collect();
            out.push(Passage {
                text: chunk.join(" "),
                place: insight.place,
                language: insight.language.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(words: usize, language: &str) -> Insight {
        let text: Vec<String> = (0..words).map(|n| format!("w{n}")).collect();
        let text = value::Text::whole(text.join(" \n "));
        Insight {
            language: Some(language.into()),
            ..Insight::by_hand(aperture_core::AssetId::new(), "text", text)
        }
    }

    #[test]
    fn a_text_is_cut_into_passages_of_whole_words_up_to_the_most_kept() {
        let out = passages(&[text(300, "de"), text(10, "fr")]);
        let lens: Vec<usize> = out.iter().map(|p| p.text.split(' ').count()).collect();
        assert_eq!(lens, [PASSAGE_WORDS, PASSAGE_WORDS, 60, 10]);
        assert!(out[0].text.starts_with("w0 w1 "), "{}", &out[0].text[..20]);
        assert!(out[2].text.ends_with(" w299"));
        assert_eq!(out[2].language.as_deref(), Some("de"));
        assert_eq!(out[3].language.as_deref(), Some("fr"));
        // A text longer than the passages kept gives the most kept, in order.
        let out = passages(&[text(PASSAGE_WORDS * (MAX_PASSAGES + 5), "en")]);
        assert_eq!(out.len(), MAX_PASSAGES);
        let last = PASSAGE_WORDS * MAX_PASSAGES - 1;
        assert!(out[MAX_PASSAGES - 1].text.ends_with(&format!(" w{last}")));
    }

    #[test]
    fn names_become_words() {
        assert_eq!(name_words("eiffel_tower-2019.jpg"), "eiffel tower 2019");
        assert_eq!(name_words(".hidden"), "hidden");
        assert_eq!(name_words("no extension here"), "no extension here");
        assert_eq!(name_words("Café crème.pdf"), "Café crème");
    }
}
