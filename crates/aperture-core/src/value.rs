//! What an insight says: one typed value per insight kind ([`InsightValue`]).
//!
//! The catalog keeps an insight's kind and value in two columns, the value as JSON text, and the
//! API shows both. Every kind's JSON is exactly what the analyzers wrote before these types
//! existed, so stored rows load as they are: no migration, no reindex.
//!
//! ```
//! use aperture_core::InsightValue;
//! use aperture_core::value::PerceptualHash;
//!
//! let stored = serde_json::json!({"bits": 64, "hash": "f0e1d2c3b4a59687"});
//! let value = InsightValue::from_parts("phash", stored.clone()).unwrap();
//! assert!(matches!(&value, InsightValue::PerceptualHash(PerceptualHash { bits: 64, .. })));
//! assert_eq!(value.kind(), "phash");
//! assert_eq!(value.to_json_value(), stored);
//!
//! // A kind this build does not know (a newer writer's) is kept as it is.
//! let newer = InsightValue::from_parts("scene", serde_json::json!({"name": "beach"})).unwrap();
//! assert_eq!(newer.kind(), "scene");
//! ```
//!
//! Two rules keep the JSON byte for byte what it was. Values go through
//! [`serde_json::Value`] on the way out ([`InsightValue::to_json_value`], and the
//! [`Serialize`] impl uses it too): its maps sort their keys, as the analyzers' `json!` maps
//! did, and it widens an `f32` to the `f64` with the same value (`0.1f32` is written
//! `0.10000000149011612`), as `json!` did. Reading such a number back into an `f32` is exact,
//! so `f32` fields round-trip to the same text.
//!
//! Fields a newer writer added to a known kind are ignored when read: nothing rewrites stored
//! rows from typed values, so they stay in the catalog.

use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{decode_vector, encode_vector};

/// What one insight says, by kind. Serialised with its kind as `{"kind": …, "value": {…}}`,
/// the two fields an [`Insight`](crate::Insight) has always had.
///
/// A kind this build does not know is [`InsightValue::Other`], kind and value verbatim; a
/// known kind whose value does not have its shape is an error ([`InsightValueError`]).
#[derive(Debug, Clone, PartialEq)]
pub enum InsightValue {
    /// `thumbnail`: a small JPEG of an image, stored as a derived object of the asset.
    Thumbnail(Thumbnail),
    /// `phash`: a perceptual hash, for near-duplicate images.
    PerceptualHash(PerceptualHash),
    /// `text`: a document's text layer, or a plain text or HTML file's text, per page.
    Text(Text),
    /// `ocr_line`: one line of text read from an image or a scanned page; its box is in the
    /// insight's place.
    OcrLine(OcrLine),
    /// `label`: a class an image classifier sees, with its probability as the confidence.
    Label(Label),
    /// `sensitive`: how likely an image is explicit, to blur its thumbnail.
    Sensitive(Sensitive),
    /// `image_features`: an image classifier's pooled features, for similar-image search.
    ImageFeatures(Vector),
    /// `clip_embedding`: a CLIP image embedding, comparable with CLIP text embeddings.
    ClipEmbedding(Vector),
    /// `text_embedding`: a sentence embedding of what describes the asset or of a passage.
    TextEmbedding(TextEmbedding),
    /// `shot`: one shot of a video, from one transition to the next; its time range is in
    /// the insight's place.
    Shot(Shot),
    /// `storyboard`: small frames of a video at even intervals in one sprite sheet, with a
    /// WebVTT track naming each tile, for scrubbing.
    Storyboard(Storyboard),
    /// `preview`: a copy of a video that browsers can play, stored as a derived object.
    Preview(Preview),
    /// `transcript_segment`: a stretch of speech as text; its time range is in the insight's
    /// place and its language in the insight's `language`.
    TranscriptSegment(TranscriptSegment),
    /// `translation`: the text of another insight in another language; its place is that
    /// insight's place.
    Translation(Translation),
    /// A kind this build does not know, kept as it was read so that it is shown and stored
    /// unchanged. Never holds a known kind ([`InsightValue::KINDS`]).
    Other {
        /// The kind as written.
        kind: String,
        /// The value as written.
        value: serde_json::Value,
    },
}

impl InsightValue {
    /// The kind of [`InsightValue::Thumbnail`].
    pub const THUMBNAIL: &'static str = "thumbnail";
    /// The kind of [`InsightValue::PerceptualHash`].
    pub const PERCEPTUAL_HASH: &'static str = "phash";
    /// The kind of [`InsightValue::Text`].
    pub const TEXT: &'static str = "text";
    /// The kind of [`InsightValue::OcrLine`].
    pub const OCR_LINE: &'static str = "ocr_line";
    /// The kind of [`InsightValue::Label`].
    pub const LABEL: &'static str = "label";
    /// The kind of [`InsightValue::Sensitive`].
    pub const SENSITIVE: &'static str = "sensitive";
    /// The kind of [`InsightValue::ImageFeatures`].
    pub const IMAGE_FEATURES: &'static str = "image_features";
    /// The kind of [`InsightValue::ClipEmbedding`].
    pub const CLIP_EMBEDDING: &'static str = "clip_embedding";
    /// The kind of [`InsightValue::TextEmbedding`].
    pub const TEXT_EMBEDDING: &'static str = "text_embedding";
    /// The kind of [`InsightValue::Shot`].
    pub const SHOT: &'static str = "shot";
    /// The kind of [`InsightValue::Storyboard`].
    pub const STORYBOARD: &'static str = "storyboard";
    /// The kind of [`InsightValue::Preview`].
    pub const PREVIEW: &'static str = "preview";
    /// The kind of [`InsightValue::TranscriptSegment`].
    pub const TRANSCRIPT_SEGMENT: &'static str = "transcript_segment";
    /// The kind of [`InsightValue::Translation`].
    pub const TRANSLATION: &'static str = "translation";

    /// Every kind this build reads into a typed value.
    pub const KINDS: &'static [&'static str] = &[
        Self::THUMBNAIL,
        Self::PERCEPTUAL_HASH,
        Self::TEXT,
        Self::OCR_LINE,
        Self::LABEL,
        Self::SENSITIVE,
        Self::IMAGE_FEATURES,
        Self::CLIP_EMBEDDING,
        Self::TEXT_EMBEDDING,
        Self::SHOT,
        Self::STORYBOARD,
        Self::PREVIEW,
        Self::TRANSCRIPT_SEGMENT,
        Self::TRANSLATION,
    ];

    /// The insight kind: `label`, `ocr_line`, ..., or an unknown kind as written.
    pub fn kind(&self) -> &str {
        match self {
            Self::Thumbnail(_) => Self::THUMBNAIL,
            Self::PerceptualHash(_) => Self::PERCEPTUAL_HASH,
            Self::Text(_) => Self::TEXT,
            Self::OcrLine(_) => Self::OCR_LINE,
            Self::Label(_) => Self::LABEL,
            Self::Sensitive(_) => Self::SENSITIVE,
            Self::ImageFeatures(_) => Self::IMAGE_FEATURES,
            Self::ClipEmbedding(_) => Self::CLIP_EMBEDDING,
            Self::TextEmbedding(_) => Self::TEXT_EMBEDDING,
            Self::Shot(_) => Self::SHOT,
            Self::Storyboard(_) => Self::STORYBOARD,
            Self::Preview(_) => Self::PREVIEW,
            Self::TranscriptSegment(_) => Self::TRANSCRIPT_SEGMENT,
            Self::Translation(_) => Self::TRANSLATION,
            Self::Other { kind, .. } => kind,
        }
    }

    /// The value of kind `kind` from its JSON, as the catalog stores the two: an unknown kind
    /// becomes [`InsightValue::Other`]; a known kind must have its shape.
    pub fn from_parts(kind: &str, value: serde_json::Value) -> Result<Self, InsightValueError> {
        fn parse<T: DeserializeOwned>(
            kind: &str,
            value: serde_json::Value,
        ) -> Result<T, InsightValueError> {
            T::deserialize(value).map_err(|e| InsightValueError {
                kind: kind.to_owned(),
                reason: e.to_string(),
            })
        }
        Ok(match kind {
            Self::THUMBNAIL => Self::Thumbnail(parse(kind, value)?),
            Self::PERCEPTUAL_HASH => Self::PerceptualHash(parse(kind, value)?),
            Self::TEXT => Self::Text(parse(kind, value)?),
            Self::OCR_LINE => Self::OcrLine(parse(kind, value)?),
            Self::LABEL => Self::Label(parse(kind, value)?),
            Self::SENSITIVE => Self::Sensitive(parse(kind, value)?),
            Self::IMAGE_FEATURES => Self::ImageFeatures(parse(kind, value)?),
            Self::CLIP_EMBEDDING => Self::ClipEmbedding(parse(kind, value)?),
            Self::TEXT_EMBEDDING => Self::TextEmbedding(parse(kind, value)?),
            Self::SHOT => Self::Shot(parse(kind, value)?),
            Self::STORYBOARD => Self::Storyboard(parse(kind, value)?),
            Self::PREVIEW => Self::Preview(parse(kind, value)?),
            Self::TRANSCRIPT_SEGMENT => Self::TranscriptSegment(parse(kind, value)?),
            Self::TRANSLATION => Self::Translation(parse(kind, value)?),
            _ => Self::Other {
                kind: kind.to_owned(),
                value,
            },
        })
    }

    /// The value as JSON, without its kind: what the catalog stores in its `value` column
    /// (`to_json_value().to_string()`) and what the API shows as `value`.
    pub fn to_json_value(&self) -> serde_json::Value {
        // Infallible for these types: string keys only, and no Serialize impl of theirs fails
        // (`json!`, which the analyzers used, makes the same assumption).
        fn json<T: Serialize>(value: &T) -> serde_json::Value {
            serde_json::to_value(value).expect("insight values serialise to JSON")
        }
        match self {
            Self::Thumbnail(v) => json(v),
            Self::PerceptualHash(v) => json(v),
            Self::Text(v) => json(v),
            Self::OcrLine(v) => json(v),
            Self::Label(v) => json(v),
            Self::Sensitive(v) => json(v),
            Self::ImageFeatures(v) | Self::ClipEmbedding(v) => json(v),
            Self::TextEmbedding(v) => json(v),
            Self::Shot(v) => json(v),
            Self::Storyboard(v) => json(v),
            Self::Preview(v) => json(v),
            Self::TranscriptSegment(v) => json(v),
            Self::Translation(v) => json(v),
            Self::Other { kind, value } => {
                // An `Other` holding a known kind would be stored and then fail to read back.
                debug_assert!(
                    !Self::KINDS.contains(&kind.as_str()),
                    "InsightValue::Other holds the known kind {kind}"
                );
                value.clone()
            }
        }
    }

    /// The words the insight read or heard in the asset, for search: a document's text, an
    /// OCR line, a transcript segment, a translation. Not label names, nor the excerpt a text
    /// embedding keeps (a copy of text held elsewhere).
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(v) => Some(&v.text),
            Self::OcrLine(v) => Some(&v.text),
            Self::TranscriptSegment(v) => Some(&v.text),
            Self::Translation(v) => Some(&v.text),
            _ => None,
        }
    }

    /// The feature vector of `image_features`, `clip_embedding` and `text_embedding`.
    pub fn as_vector(&self) -> Option<&Vector> {
        match self {
            Self::ImageFeatures(v) | Self::ClipEmbedding(v) => Some(v),
            Self::TextEmbedding(v) => Some(&v.vector),
            _ => None,
        }
    }
}

impl Serialize for InsightValue {
    /// `{"kind": …, "value": …}`; flattened into an [`Insight`](crate::Insight), its two
    /// fields.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("InsightValue", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("value", &self.to_json_value())?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for InsightValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Parts {
            kind: String,
            value: serde_json::Value,
        }
        let Parts { kind, value } = Parts::deserialize(deserializer)?;
        Self::from_parts(&kind, value).map_err(serde::de::Error::custom)
    }
}

impl From<Thumbnail> for InsightValue {
    fn from(v: Thumbnail) -> Self {
        Self::Thumbnail(v)
    }
}

impl From<PerceptualHash> for InsightValue {
    fn from(v: PerceptualHash) -> Self {
        Self::PerceptualHash(v)
    }
}

impl From<Text> for InsightValue {
    fn from(v: Text) -> Self {
        Self::Text(v)
    }
}

impl From<OcrLine> for InsightValue {
    fn from(v: OcrLine) -> Self {
        Self::OcrLine(v)
    }
}

impl From<Label> for InsightValue {
    fn from(v: Label) -> Self {
        Self::Label(v)
    }
}

impl From<Sensitive> for InsightValue {
    fn from(v: Sensitive) -> Self {
        Self::Sensitive(v)
    }
}

impl From<TextEmbedding> for InsightValue {
    fn from(v: TextEmbedding) -> Self {
        Self::TextEmbedding(v)
    }
}

impl From<Preview> for InsightValue {
    fn from(v: Preview) -> Self {
        Self::Preview(v)
    }
}

impl From<Storyboard> for InsightValue {
    fn from(v: Storyboard) -> Self {
        Self::Storyboard(v)
    }
}

impl From<Shot> for InsightValue {
    fn from(v: Shot) -> Self {
        Self::Shot(v)
    }
}

impl From<TranscriptSegment> for InsightValue {
    fn from(v: TranscriptSegment) -> Self {
        Self::TranscriptSegment(v)
    }
}

impl From<Translation> for InsightValue {
    fn from(v: Translation) -> Self {
        Self::Translation(v)
    }
}

/// An insight value that does not have the shape its kind requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} insight value: {reason}")]
pub struct InsightValueError {
    /// The insight kind, e.g. `label`.
    pub kind: String,
    /// What is wrong, e.g. ``missing field `name` ``.
    pub reason: String,
}

/// `thumbnail`. `{"bytes": 5120, "height": 192, "mime": "image/jpeg", "name":
/// "thumbnail-256.jpg", "width": 256}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// The derived object's name under the asset, e.g. `thumbnail-256.jpg`.
    pub name: String,
    /// Its media type, `image/jpeg`.
    pub mime: String,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// Its size in bytes.
    pub bytes: u64,
}

/// `phash`. `{"bits": 64, "hash": "f0e1d2c3b4a59687"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerceptualHash {
    /// The hash in lowercase hex, most significant byte first.
    pub hash: String,
    /// How many bits it has (64).
    pub bits: u32,
}

impl PerceptualHash {
    /// The hash as a number, when it is 64 bits of hex.
    pub fn as_u64(&self) -> Option<u64> {
        if self.bits != 64 || self.hash.len() != 16 {
            return None;
        }
        u64::from_str_radix(&self.hash, 16).ok()
    }
}

/// `text`. `{"chars": 11, "text": "Hello world"}`, and when text was left out
/// `{"chars": …, "note": "only the first 8 MiB are kept", "text": …, "truncated": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// The text, tidied.
    pub text: String,
    /// Its length in characters (Unicode scalar values).
    pub chars: u64,
    /// Whether some of the text was left out; [`Text::note`] says what.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// What was left out, in words, when [`Text::truncated`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Text {
    /// `text` whole, with its length counted.
    pub fn whole(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            chars: text.chars().count() as u64,
            text,
            truncated: false,
            note: None,
        }
    }
}

/// `ocr_line`. `{"engine": "pp-ocrv6", "quad": [[0.1, 0.2], …], "text": "NO PARKING"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrLine {
    /// The line's text.
    pub text: String,
    /// Its corners clockwise from the top left, as (x, y) in 0–1 of the image's width and
    /// height; the insight's place holds their bounding box.
    pub quad: [[f32; 2]; 4],
    /// The OCR engine that read it: `pp-ocrv6` or `tesseract`.
    pub engine: String,
}

/// `label`. `{"class": 281, "name": "tabby, tabby cat", "rank": 1, "taxonomy":
/// "imagenet-1k"}`; the probability is the insight's confidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The class's name; synonyms are separated by commas (`tabby, tabby cat`).
    pub name: String,
    /// The class's index in its taxonomy.
    pub class: u32,
    /// 1 for the most likely class of the image, 2 for the next, ...
    pub rank: u32,
    /// The set of classes, e.g. `imagenet-1k`.
    pub taxonomy: String,
}

/// `sensitive`. `{"blur": false, "score": 0.012345678918063641}`; the score is also the
/// insight's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sensitive {
    /// The probability that the image is explicit, 0–1.
    pub score: f32,
    /// Whether the UI blurs the thumbnail until it is clicked.
    pub blur: bool,
}

/// A feature vector and the space it lives in: `{"dims": 1280, "space":
/// "efficientnet-lite0", "vector": "<base64>"}`, the vector as
/// [`encode_vector`] writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    /// The embedding space: vectors are compared within one space only.
    pub space: String,
    /// The components.
    pub data: Vec<f32>,
}

impl Vector {
    /// The number of components, written as `dims`.
    pub fn dims(&self) -> usize {
        self.data.len()
    }
}

impl Serialize for Vector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Vector", 3)?;
        s.serialize_field("dims", &self.dims())?;
        s.serialize_field("space", &self.space)?;
        s.serialize_field("vector", &encode_vector(&self.data))?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Vector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Stored {
            dims: usize,
            space: String,
            vector: String,
        }
        let Stored {
            dims,
            space,
            vector,
        } = Stored::deserialize(deserializer)?;
        let data = decode_vector(&vector).map_err(serde::de::Error::custom)?;
        if data.len() != dims {
            return Err(serde::de::Error::custom(format_args!(
                "dims is {dims} but the vector has {} floats",
                data.len()
            )));
        }
        Ok(Self { space, data })
    }
}

/// `text_embedding`: `{"dims": 384, "source": "description", "space": "all-minilm-l6-v2",
/// "text": "cat. a photo of tabby, tabby cat", "vector": "<base64>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEmbedding {
    /// The vector (its `dims`, `space` and `vector` fields).
    #[serde(flatten)]
    pub vector: Vector,
    /// What was embedded: `description` (what describes the whole asset: name, labels, OCR
    /// lines, the start of its text) or `text` (a passage of its text, on the insight's page).
    pub source: String,
    /// The start of the embedded text, to show why a search matched.
    pub text: String,
}

/// `shot`: `{"index": 3, "keyframe": "shot-3.jpg", "transition": "cut"}`, and
/// `"content": "black"` or `"static"` for a segment with nothing moving in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shot {
    /// The shot's position in the video, from 0.
    pub index: u32,
    /// How the shot begins.
    pub transition: Transition,
    /// What is special about the segment, if anything: black, or nothing moving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ShotContent>,
    /// The derived object under the asset holding a frame that stands for the shot (a JPEG),
    /// when one was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe: Option<String>,
}

/// `storyboard`: `{"columns": 10, "interval_ms": 1000, "sprite": "storyboard.jpg", "tile_height":
/// 90, "tile_width": 160, "tiles": 55, "vtt": "storyboard.vtt"}`: tile `n` (row-major in the
/// sprite) shows the moment `n × interval_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storyboard {
    /// The derived object holding the sprite sheet (a JPEG).
    pub sprite: String,
    /// The derived object holding the WebVTT track whose cues point at the tiles
    /// (`storyboard.jpg#xywh=x,y,w,h`).
    pub vtt: String,
    /// Width of a tile in pixels.
    pub tile_width: u32,
    /// Height of a tile in pixels.
    pub tile_height: u32,
    /// Tiles per row.
    pub columns: u32,
    /// How many tiles there are.
    pub tiles: u32,
    /// Time between tiles.
    pub interval_ms: u64,
}

/// `preview`: `{"bytes": 5242880, "height": 720, "mime": "video/mp4", "name":
/// "preview-720.mp4", "width": 1280}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// The derived object under the asset.
    pub name: String,
    /// Its MIME type.
    pub mime: String,
    /// Width in pixels (0 when unknown).
    pub width: u32,
    /// Height in pixels (0 when unknown).
    pub height: u32,
    /// Its size.
    pub bytes: u64,
}

/// A [`Shot`] that is not really one: a black stretch, or a still picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShotContent {
    /// Black (or nearly) from start to end.
    Black,
    /// Nothing moves: a title card, a slide, a paused picture.
    Static,
}

/// How a [`Shot`] begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The video's first shot.
    Start,
    /// A hard cut from the previous shot.
    Cut,
    /// A fade from or through black or white.
    Fade,
    /// A dissolve: the previous shot blends into this one.
    Dissolve,
}

/// `transcript_segment`: `{"avg_logprob": -0.25, "no_speech_prob": 0.01, "text": "Hello
/// there.", "words": [{"end_ms": 1400, "probability": 0.98, "start_ms": 1000, "text":
/// "Hello"}, …]}`, with the scores a Whisper-like recogniser gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    /// What was said.
    pub text: String,
    /// The recogniser's probability that the segment holds no speech, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_speech_prob: Option<f32>,
    /// The mean log-probability of the segment's tokens (closer to 0 is surer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_logprob: Option<f32>,
    /// How sure the recogniser was of the segment's language (the insight's `language`),
    /// 0–1, when it detected it rather than being told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_prob: Option<f32>,
    /// The words with their times, when the recogniser gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

/// One word of a [`TranscriptSegment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word as recognised, with any punctuation attached to it.
    pub text: String,
    /// When it starts, in milliseconds from the start of the asset (not of the segment).
    pub start_ms: u64,
    /// When it ends, likewise.
    pub end_ms: u64,
    /// The recogniser's probability for it, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
}

/// `translation`: `{"engine": "opus-mt", "source": "ocr_line", "source_language": "es",
/// "target_language": "en", "text": "No parking"}`, and `"pivot_language"` when there was
/// no direct model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// The translated text.
    pub text: String,
    /// The kind of the insight translated: `text`, `ocr_line`, `transcript_segment`.
    pub source: String,
    /// BCP 47 tag of the original text.
    pub source_language: String,
    /// BCP 47 tag of [`Translation::text`]; also the insight's `language`.
    pub target_language: String,
    /// The translation engine or model, e.g. `opus-mt`.
    pub engine: String,
    /// The language the text went through when no model translates directly (`ru` → `en`
    /// → `de` has `en`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pivot_language: Option<String>,
    /// Whether only the start of the original was translated (the rest is past the limit on
    /// text translated per asset).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Why the text is incomplete or empty: cut at the limit, or no engine installed
    /// translates its language (`text` is then empty and `engine` is `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Reads `literal` (compact, keys sorted, as the catalog stores values) as `kind` and
    /// checks that it writes back the same bytes.
    ///
    /// Bytes, not `serde_json::Value`s: without its `float_roundtrip` feature serde_json may
    /// parse a number one unit in the last place off (`0.9800000190734863` reads as
    /// `0.9800000190734864`), so the parsed literal is not the reference; an `f32` field still
    /// gets its exact value back, as rounding to `f32` removes that error.
    fn round_trip(kind: &str, literal: &str) -> InsightValue {
        let value = InsightValue::from_parts(kind, serde_json::from_str(literal).unwrap())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(value.kind(), kind);
        assert_eq!(value.to_json_value().to_string(), literal, "{kind}");
        let again = InsightValue::from_parts(kind, value.to_json_value()).unwrap();
        assert_eq!(again, value, "{kind}");
        value
    }

    /// Each literal is what the analyzer's `json!` call (copied beside it) makes.
    #[test]
    fn every_kind_round_trips_byte_for_byte() {
        // thumbnail.rs
        let (name, width, height, bytes) = ("thumbnail-256.jpg", 256u32, 171u32, 9034usize);
        let written = json!({
            "name": name,
            "mime": "image/jpeg",
            "width": width,
            "height": height,
            "bytes": bytes,
        });
        let literal = r#"{"bytes":9034,"height":171,"mime":"image/jpeg","name":"thumbnail-256.jpg","width":256}"#;
        assert_eq!(written.to_string(), literal);
        let value = round_trip("thumbnail", literal);
        assert_eq!(
            value,
            InsightValue::Thumbnail(Thumbnail {
                name: name.into(),
                mime: "image/jpeg".into(),
                width,
                height,
                bytes: 9034,
            })
        );

        // phash.rs
        let hex = "f0e1d2c3b4a59687";
        let literal = r#"{"bits":64,"hash":"f0e1d2c3b4a59687"}"#;
        assert_eq!(json!({ "hash": hex, "bits": 64 }).to_string(), literal);
        let InsightValue::PerceptualHash(hash) = round_trip("phash", literal) else {
            panic!("not a perceptual hash")
        };
        assert_eq!(hash.as_u64(), Some(0xf0e1_d2c3_b4a5_9687));

        // text.rs, whole and truncated
        let text = "Las estaciones de tren cierran.";
        let mut written = json!({ "text": text, "chars": text.chars().count() });
        let literal = r#"{"chars":31,"text":"Las estaciones de tren cierran."}"#;
        assert_eq!(written.to_string(), literal);
        let value = round_trip("text", literal);
        assert_eq!(value.text(), Some(text));
        written["truncated"] = true.into();
        written["note"] = "only the first 8 MiB are kept".into();
        let literal = r#"{"chars":31,"note":"only the first 8 MiB are kept","text":"Las estaciones de tren cierran.","truncated":true}"#;
        assert_eq!(written.to_string(), literal);
        let InsightValue::Text(cut) = round_trip("text", literal) else {
            panic!("not text")
        };
        assert!(cut.truncated);

        // ocr/mod.rs: f32 corners, widened by json! as they were
        let quad: Vec<[f32; 2]> = vec![[0.1, 0.2], [0.9, 0.2], [0.9, 0.3], [0.1, 0.3]];
        let written = json!({ "text": "NO PARKING", "quad": quad, "engine": "pp-ocrv6" });
        let literal = r#"{"engine":"pp-ocrv6","quad":[[0.10000000149011612,0.20000000298023224],[0.8999999761581421,0.20000000298023224],[0.8999999761581421,0.30000001192092896],[0.10000000149011612,0.30000001192092896]],"text":"NO PARKING"}"#;
        assert_eq!(written.to_string(), literal);
        let InsightValue::OcrLine(line) = round_trip("ocr_line", literal) else {
            panic!("not an OCR line")
        };
        assert_eq!(line.quad[2], [0.9, 0.3]);

        // labels.rs
        let (class, rank) = (281usize, 0usize);
        let written = json!({
            "name": "tabby, tabby cat",
            "class": class,
            "rank": rank + 1,
            "taxonomy": "imagenet-1k",
        });
        let literal =
            r#"{"class":281,"name":"tabby, tabby cat","rank":1,"taxonomy":"imagenet-1k"}"#;
        assert_eq!(written.to_string(), literal);
        round_trip("label", literal);

        // sensitive.rs
        let score = 0.012_345_679_f32;
        let written = json!({ "score": score, "blur": score >= 0.5 });
        let literal = r#"{"blur":false,"score":0.012345679104328156}"#;
        assert_eq!(written.to_string(), literal);
        let InsightValue::Sensitive(sensitive) = round_trip("sensitive", literal) else {
            panic!("not a score")
        };
        assert_eq!(sensitive.score, score);

        // labels.rs (features) and clip.rs
        let features = [0.6f32, -0.8, 0.0];
        for (kind, space) in [
            ("image_features", "efficientnet-lite0"),
            ("clip_embedding", "clip:openai/clip-vit-base-patch32"),
        ] {
            let written = json!({
                "space": space,
                "dims": features.len(),
                "vector": encode_vector(&features),
            });
            let literal = format!(r#"{{"dims":3,"space":"{space}","vector":"mpkZP83MTL8AAAAA"}}"#);
            assert_eq!(written.to_string(), literal);
            let value = round_trip(kind, &literal);
            let vector = value.as_vector().unwrap();
            assert_eq!(
                (vector.space.as_str(), &vector.data[..]),
                (space, &features[..])
            );
        }

        // embedding.rs
        let written = json!({
            "space": "all-minilm-l6-v2",
            "dims": features.len(),
            "vector": encode_vector(&features),
            "source": "description",
            "text": "cat. a photo of tabby, tabby cat",
        });
        let literal = r#"{"dims":3,"source":"description","space":"all-minilm-l6-v2","text":"cat. a photo of tabby, tabby cat","vector":"mpkZP83MTL8AAAAA"}"#;
        assert_eq!(written.to_string(), literal);
        let value = round_trip("text_embedding", literal);
        assert_eq!(value.as_vector().unwrap().data, features);
        assert_eq!(value.text(), None, "an excerpt is not the asset's text");
    }

    #[test]
    fn coming_kinds_round_trip() {
        let shot = round_trip(
            "shot",
            r#"{"index":3,"keyframe":"shot-3.jpg","transition":"cut"}"#,
        );
        assert!(matches!(
            shot,
            InsightValue::Shot(Shot {
                transition: Transition::Cut,
                ..
            })
        ));
        round_trip("shot", r#"{"index":0,"transition":"start"}"#);
        round_trip(
            "preview",
            r#"{"bytes":5242880,"height":720,"mime":"video/mp4","name":"preview-720.mp4","width":1280}"#,
        );
        round_trip(
            "storyboard",
            r#"{"columns":10,"interval_ms":1000,"sprite":"storyboard.jpg","tile_height":90,"tile_width":160,"tiles":55,"vtt":"storyboard.vtt"}"#,
        );
        round_trip(
            "shot",
            r#"{"content":"black","index":1,"transition":"fade"}"#,
        );

        let segment = round_trip(
            "transcript_segment",
            r#"{"avg_logprob":-0.25,"no_speech_prob":0.009999999776482582,"text":"Hello there.","words":[{"end_ms":1400,"probability":0.9800000190734863,"start_ms":1000,"text":"Hello"},{"end_ms":1900,"start_ms":1450,"text":"there."}]}"#,
        );
        assert_eq!(segment.text(), Some("Hello there."));
        round_trip("transcript_segment", r#"{"text":"Hello there."}"#);

        let translation = round_trip(
            "translation",
            r#"{"engine":"opus-mt","pivot_language":"en","source":"ocr_line","source_language":"ru","target_language":"de","text":"Parken verboten"}"#,
        );
        assert_eq!(translation.text(), Some("Parken verboten"));
    }

    #[test]
    fn untranslated_text_says_why() {
        round_trip(
            "translation",
            r#"{"engine":"none","note":"no engine installed translates ru into en","source":"ocr_line","source_language":"ru","target_language":"en","text":""}"#,
        );
        round_trip(
            "translation",
            r#"{"engine":"apertium","note":"only the first 1 MiB of text is translated","source":"text","source_language":"es","target_language":"en","text":"The","truncated":true}"#,
        );
    }

    #[test]
    fn unknown_kinds_are_kept_verbatim() {
        let literal = r#"{"code":"es","note":{"nested":[1,2.5,null]}}"#;
        let value = round_trip("language", literal);
        assert!(matches!(&value, InsightValue::Other { kind, .. } if kind == "language"));
        assert_eq!(value.text(), None);
        assert_eq!(value.as_vector(), None);
        // Not even an object.
        round_trip("count", "3");
    }

    #[test]
    fn malformed_known_kinds_are_errors_naming_the_kind() {
        for (kind, value, reason) in [
            ("phash", json!({"hash": "ff"}), "missing field `bits`"),
            ("label", json!({"label": "bald eagle", "class": 22}), "name"),
            (
                "sensitive",
                json!({"score": "high", "blur": true}),
                "expected f32",
            ),
            (
                "ocr_line",
                json!({"text": "x", "quad": [[0, 0]], "engine": "t"}),
                "4",
            ),
            ("thumbnail", json!("thumbnail-256.jpg"), "struct Thumbnail"),
            (
                "image_features",
                json!({"space": "s", "dims": 2, "vector": "not base64!"}),
                "not base64",
            ),
            (
                "clip_embedding",
                json!({"space": "s", "dims": 2, "vector": encode_vector(&[1.0])}),
                "dims is 2 but the vector has 1 floats",
            ),
            ("shot", json!({"index": 1, "transition": "wipe"}), "wipe"),
        ] {
            let e = InsightValue::from_parts(kind, value).unwrap_err();
            assert_eq!(e.kind, kind);
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("invalid {kind} insight value: ")),
                "{message}"
            );
            assert!(message.contains(reason), "{kind}: {message}");
        }
    }

    #[test]
    fn serialises_as_kind_and_value() {
        let value = InsightValue::PerceptualHash(PerceptualHash {
            hash: "00000000000000ff".into(),
            bits: 64,
        });
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"phash","value":{"bits":64,"hash":"00000000000000ff"}}"#
        );
        assert_eq!(serde_json::from_str::<InsightValue>(&text).unwrap(), value);
        let e = serde_json::from_str::<InsightValue>(r#"{"kind":"phash","value":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid phash insight value"), "{e}");
    }

    #[test]
    fn perceptual_hash_numbers() {
        let hash = |hash: &str, bits| PerceptualHash {
            hash: hash.into(),
            bits,
        };
        assert_eq!(hash("00000000000000ff", 64).as_u64(), Some(255));
        assert_eq!(hash("ff", 64).as_u64(), None);
        assert_eq!(hash("000000000000000g", 64).as_u64(), None);
        assert_eq!(hash("00000000000000ff", 32).as_u64(), None);
    }

    proptest! {
        #[test]
        fn vectors_round_trip(data in proptest::collection::vec(any::<f32>(), 0..64)) {
            let value = InsightValue::ImageFeatures(Vector { space: "s".into(), data });
            let stored = value.to_json_value().to_string();
            let back = InsightValue::from_parts(
                "image_features",
                serde_json::from_str(&stored).unwrap(),
            )
            .unwrap();
            prop_assert_eq!(back.to_json_value().to_string(), stored);
        }

        #[test]
        fn f32_fields_round_trip(score in any::<f32>().prop_filter("finite", |x| x.is_finite())) {
            let value = InsightValue::Sensitive(Sensitive { score, blur: false });
            let stored = value.to_json_value().to_string();
            let back = InsightValue::from_parts("sensitive", serde_json::from_str(&stored).unwrap())
                .unwrap();
            prop_assert_eq!(back.to_json_value().to_string(), stored);
            prop_assert_eq!(back, value);
        }
    }
}
