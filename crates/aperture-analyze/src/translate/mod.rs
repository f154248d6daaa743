//! The `translate` analyzer: the text of an asset (document pages, OCR lines, what was said)
//! in languages other than the lake's target languages, translated into each target, at the
//! same place, with the engine, model and version that did it.
//!
//! Engines sit behind one trait ([`Pair`]); [`Translators`] holds the pairs installed and
//! routes through them, chaining through a third language where no pair is direct. Text no
//! engine can translate gets an empty translation with engine `none` and a note saying so;
//! text past [`DEFAULT_MAX_BYTES`] per asset is not translated, and the last translation says
//! it was cut.

pub mod apertium;
pub mod engine;
pub mod marian;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aperture_catalog::Asset;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis, value};

pub use apertium::Apertium;
pub use engine::{Pair, Route, Translators};
pub use marian::Marian;

use crate::{Analyzer, Error, Input, Output, language};

/// The language of text whose language nothing tells (BCP 47's "undetermined").
pub const UNDETERMINED: &str = "und";

/// Text translated per asset at most, in bytes of the original: the first megabyte.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// Time an engine is allowed per text, besides its share by size.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the `translate` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "translate",
    version: "1",
    kinds: &[
        MediaKind::Image,
        MediaKind::Document,
        MediaKind::Video,
        MediaKind::Audio,
    ],
    // After the analyzers it reads, before the embeddings that read it.
    priority: -5,
    reads: &["text", "ocr", "speech"],
    produces: &[InsightValue::TRANSLATION],
};

/// Translates an asset's text into the target languages with the pairs installed.
#[derive(Debug, Clone)]
pub struct Translate {
    /// The pairs installed.
    pub translators: Translators,
    /// The languages everything is translated into, two letters.
    pub targets: Vec<String>,
    /// Text translated per asset at most, in bytes.
    pub max_bytes: usize,
}

impl Translate {
    /// Translates into `targets` with `translators`.
    pub fn new(translators: Translators, targets: Vec<String>) -> Translate {
        Translate {
            translators,
            targets,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Translates into `targets` with every engine installed: the OPUS-MT models pulled into
    /// `models_dir` (first: where one translates the same languages as an Apertium pair, it
    /// is used), then the Apertium pairs of `apertium_modes`, each allowed `timeout` per text
    /// besides its share by size.
    pub fn installed(
        models_dir: Option<&std::path::Path>,
        apertium_modes: &std::path::Path,
        timeout: std::time::Duration,
        targets: Vec<String>,
    ) -> Translate {
        let neural = models_dir
            .map(Marian::discover)
            .unwrap_or_default()
            .into_iter()
            .map(|p| Arc::new(p) as Arc<dyn Pair>);
        let rules = Apertium::discover(apertium_modes, timeout)
            .into_iter()
            .map(|p| Arc::new(p) as Arc<dyn Pair>);
        Translate::new(Translators::new(neural.chain(rules).collect()), targets)
    }

    /// The text of `insights` that is not in a target language, in order, each with its
    /// language (detected here for OCR lines too short for the OCR analyzer to tell, from
    /// the lines of the same picture together or, failing that, from each line alone); text
    /// whose language nothing tells has [`UNDETERMINED`].
    pub fn sources<'a>(&self, insights: &'a [Insight]) -> Vec<Source<'a>> {
        // OCR lines without a language: detected per picture (an image, a page, a shot).
        let mut pictures: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for i in insights {
            if let (InsightValue::OcrLine(line), None) = (&i.value, &i.language) {
                pictures
                    .entry(picture_key(i.place))
                    .or_default()
                    .push(&line.text);
            }
        }
        let picture_language: BTreeMap<String, Option<String>> = pictures
            .into_iter()
            .map(|(key, lines)| (key, language::detect_short(&lines.join("\n"))))
            .collect();
        insights
            .iter()
            .filter_map(|i| {
                let (kind, text) = match &i.value {
                    InsightValue::Text(t) => (InsightValue::TEXT, t.text.as_str()),
                    InsightValue::OcrLine(l) => (InsightValue::OCR_LINE, l.text.as_str()),
                    InsightValue::TranscriptSegment(s) => {
                        (InsightValue::TRANSCRIPT_SEGMENT, s.text.as_str())
                    }
                    _ => return None,
                };
                if text.trim().is_empty() {
                    return None;
                }
                let language = i
                    .language
                    .clone()
                    .or_else(|| picture_language.get(&picture_key(i.place)).cloned()?)
                    .or_else(|| language::detect_short(text))
                    .map_or_else(|| UNDETERMINED.to_owned(), |l| base_language(&l).to_owned());
                (!self.targets.contains(&language)).then_some(Source {
                    kind,
                    text,
                    language,
                    place: i.place,
                })
            })
            .collect()
    }

    /// Translates `sources` into `target`: one insight per source translated (the first
    /// [`Translate::max_bytes`] of text, the last one cut where the limit falls), then one
    /// with an empty text and a note per language (and kind of source) no engine translates.
    /// The texts of one language go to their engines in one call.
    pub fn translate(
        &self,
        asset: &Asset,
        sources: &[Source<'_>],
        target: &str,
    ) -> Result<Vec<Insight>, Error> {
        // Each insight records it; worked out once (it hashes every pair's name).
        let version = self.version();
        let mut routes: BTreeMap<&str, Option<Route>> = BTreeMap::new();
        let mut unrouted: Vec<Insight> = Vec::new();
        let mut said: BTreeSet<(&str, &str)> = BTreeSet::new();
        // What is translated: (source, its text within the budget, whether it was cut).
        let mut planned: Vec<(&Source<'_>, &str, bool)> = Vec::new();
        let mut budget = self.max_bytes;
        for source in sources {
            if source.language == target {
                continue;
            }
            let route = routes
                .entry(&source.language)
                .or_insert_with(|| self.translators.route(&source.language, target));
            if route.is_none() {
                if said.insert((&source.language, source.kind)) {
                    unrouted.push(self.untranslated(asset, source, target, &version));
                }
                continue;
            }
            if budget == 0 {
                // Past the limit: the last text translated says the rest was not.
                if let Some(last) = planned.last_mut() {
                    last.2 = true;
                }
                continue;
            }
            let cut = source.text.len() > budget;
            let text = if cut {
                cut_at(source.text, budget)
            } else {
                source.text
            };
            budget = if cut { 0 } else { budget - text.len() };
            planned.push((source, text, cut));
        }
        let mut translated: Vec<Option<String>> = vec![None; planned.len()];
        for (language, route) in &routes {
            let Some(route) = route else { continue };
            let of_language: Vec<usize> = (0..planned.len())
                .filter(|&n| planned[n].0.language == *language)
                .collect();
            if of_language.is_empty() {
                continue;
            }
            let texts: Vec<&str> = of_language.iter().map(|&n| planned[n].1).collect();
            let out = route.translate(&texts).map_err(|e| Error::BadInput {
                reason: format!(
                    "translating {} from {language} into {target}: {e}",
                    asset.name
                ),
            })?;
            for (n, text) in of_language.into_iter().zip(out) {
                translated[n] = Some(text);
            }
        }
        let mut out = Vec::with_capacity(planned.len() + unrouted.len());
        for ((source, _, cut), text) in planned.into_iter().zip(translated) {
            let route = routes[source.language.as_str()]
                .as_ref()
                .expect("planned only with a route");
            let note = cut.then(|| {
                format!(
                    "only the first {} of text of an asset is translated; the rest is not",
                    aperture_core::human::HumanBytes(self.max_bytes as u64)
                )
            });
            let translated = Translated {
                text: text.unwrap_or_default(),
                engine: route.engine(),
                pivot: route.pivot(),
                model: Some((route.model(), route.version())),
                cut,
                note,
            };
            out.push(insight(
                asset,
                source,
                target,
                translated,
                source.place,
                &version,
            ));
        }
        out.extend(unrouted);
        Ok(out)
    }

    /// The empty translation of text no engine takes, saying why, about the whole asset.
    fn untranslated(
        &self,
        asset: &Asset,
        source: &Source<'_>,
        target: &str,
        version: &str,
    ) -> Insight {
        let note = if source.language == UNDETERMINED {
            "the language of this text could not be identified".to_owned()
        } else {
            format!(
                "no engine installed translates {} into {target}, directly or through other \
                 languages",
                source.language
            )
        };
        let translated = Translated {
            text: String::new(),
            engine: "none".into(),
            pivot: None,
            model: None,
            cut: false,
            note: Some(note),
        };
        insight(asset, source, target, translated, Place::Whole, version)
    }
}

/// A `translation` insight of `source` into `target`, at `place`, by the analyzer of version
/// `version`.
fn insight(
    asset: &Asset,
    source: &Source<'_>,
    target: &str,
    translated: Translated,
    place: Place,
    version: &str,
) -> Insight {
    let (model, model_version) = translated.model.unzip();
    Insight {
        asset: asset.id,
        analyzer: SPEC.name.into(),
        analyzer_version: version.into(),
        model,
        model_version,
        value: value::Translation {
            text: translated.text,
            source: source.kind.into(),
            source_language: source.language.clone(),
            target_language: target.into(),
            engine: translated.engine,
            pivot_language: translated.pivot,
            truncated: translated.cut,
            note: translated.note,
        }
        .into(),
        confidence: None,
        language: Some(target.into()),
        place,
        created_at: UnixMillis::now(),
    }
}

/// What became of one text: its translation (empty when none), the engine and route, and a
/// note when it was cut or not translated.
struct Translated {
    text: String,
    engine: String,
    pivot: Option<String>,
    /// The model and its version; `None` when no engine ran.
    model: Option<(String, String)>,
    /// Whether only the start of the text was translated.
    cut: bool,
    note: Option<String>,
}

/// Text to translate: an insight's text and its language.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The kind of the insight: `text`, `ocr_line`, `transcript_segment`.
    pub kind: &'static str,
    /// Its text.
    pub text: &'a str,
    /// Its language, two letters.
    pub language: String,
    /// Its place.
    pub place: Place,
}

impl Analyzer for Translate {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn version(&self) -> String {
        let what = format!(
            "{}|{}|{}|{}",
            self.targets.join(","),
            self.max_bytes,
            language::SHORT_DETECTOR,
            self.translators.fingerprint()
        );
        let hash = aperture_core::ContentHash::of(what.as_bytes()).to_hex();
        format!("{}+{}", SPEC.version, &hash[..12])
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let sources = self.sources(input.insights);
        if sources.is_empty() {
            return Err(Error::NotApplicable {
                reason: format!(
                    "{} has no text outside {}",
                    input.asset.name,
                    self.targets.join(", ")
                ),
            });
        }
        let mut insights = Vec::new();
        for target in &self.targets {
            insights.extend(self.translate(input.asset, &sources, target)?);
        }
        Ok(Output {
            insights,
            ..Output::default()
        })
    }
}

/// What an OCR line's picture is: the image, the page, or the shot it was read in.
fn picture_key(place: Place) -> String {
    match place {
        Place::Whole | Place::Region { .. } => "whole".into(),
        Place::Page { page, .. } => format!("page {page}"),
        Place::Time {
            start_ms, end_ms, ..
        } => format!("time {start_ms}-{end_ms}"),
    }
}

/// `pt` of `pt-BR`.
fn base_language(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

/// The start of `text` within `limit` bytes, cut after a whitespace where there is one in the
/// last tenth.
fn cut_at(text: &str, limit: usize) -> &str {
    let end = text.floor_char_boundary(limit);
    let head = &text[..end];
    match head.rfind(char::is_whitespace) {
        Some(space) if space >= end - end / 10 => &head[..space],
        _ => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::engine::tests::Marker;

    fn asset() -> Asset {
        Asset {
            id: aperture_core::AssetId::new(),
            collection: "default".into(),
            hash: aperture_core::ContentHash::of(b"sign"),
            size: 4,
            kind: MediaKind::Image,
            mime: "image/jpeg".into(),
            ingested_at: UnixMillis(0),
            captured_at: None,
            name: "sign.jpg".into(),
            metadata: Default::default(),
        }
    }

    fn ocr(text: &str, language: Option<&str>) -> Insight {
        Insight {
            asset: aperture_core::AssetId::new(),
            analyzer: "ocr".into(),
            analyzer_version: "1".into(),
            model: None,
            model_version: None,
            value: value::OcrLine {
                text: text.into(),
                quad: [[0.0; 2]; 4],
                engine: "tesseract".into(),
            }
            .into(),
            confidence: None,
            language: language.map(Into::into),
            place: Place::Whole,
            created_at: UnixMillis(0),
        }
    }

    fn translate() -> Translate {
        Translate::new(
            Translators::new(vec![
                Arc::new(Marker("es", "en")),
                Arc::new(Marker("fr", "es")),
            ]),
            vec!["en".into()],
        )
    }

    #[test]
    fn text_in_other_languages_is_translated_and_the_rest_is_said() {
        let t = translate();
        let insights = [
            ocr("Farmacia de guardia", Some("es")),
            ocr("Already English", Some("en")),
            ocr("Pharmacie de garde", Some("fr")),
            ocr("Аптека", Some("ru")),
            ocr("Ещё", Some("ru")),
        ];
        let sources = t.sources(&insights);
        assert_eq!(sources.len(), 4);
        let out = t.translate(&asset(), &sources, "en").unwrap();
        let values: Vec<&value::Translation> = out
            .iter()
            .map(|i| match &i.value {
                InsightValue::Translation(t) => t,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(values[0].text, "Farmacia de guardia [es>en]");
        assert_eq!(values[0].pivot_language, None);
        assert_eq!(values[1].text, "Pharmacie de garde [fr>es] [es>en]");
        assert_eq!(values[1].pivot_language.as_deref(), Some("es"));
        assert_eq!(out[1].model.as_deref(), Some("fr-es → es-en"));
        // Russian: no engine; said once, not per line.
        assert_eq!(values.len(), 3);
        assert_eq!(values[2].engine, "none");
        assert!(values[2].text.is_empty());
        assert!(values[2].note.as_deref().unwrap().contains("ru into en"));
    }

    #[test]
    fn only_the_first_bytes_are_translated_and_the_cut_is_said() {
        let mut t = translate();
        t.max_bytes = 40;
        let long = "uno dos tres cuatro cinco seis siete ocho nueve diez once doce";
        let insights = [ocr(long, Some("es")), ocr("más texto", Some("es"))];
        let out = t.translate(&asset(), &t.sources(&insights), "en").unwrap();
        assert_eq!(out.len(), 1);
        let InsightValue::Translation(v) = &out[0].value else {
            unreachable!()
        };
        assert!(v.truncated);
        assert_eq!(v.text, "uno dos tres cuatro cinco seis siete [es>en]");
        assert!(v.note.as_deref().unwrap().contains("first 40 B"));
    }

    #[test]
    fn cuts_fall_on_spaces_and_char_boundaries() {
        // A space in the last tenth is where a cut falls; none there, the limit is.
        let words = "word ".repeat(30);
        assert_eq!(cut_at(&words, 52), words[..49].to_owned());
        assert_eq!(cut_at("abc def", 5), "abc d");
        assert_eq!(cut_at("ééé", 3), "é");
        assert_eq!(cut_at("abcdefgh", 4), "abcd");
    }
}
