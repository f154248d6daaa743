use serde::{Deserialize, Serialize};

use crate::{AssetId, InsightValue, UnixMillis};

/// One thing an analyzer found in an asset, with who found it and where.
///
/// Serialised as it always was: the value's kind and JSON are the fields `kind` and `value`
/// (see [`InsightValue`]).
///
/// ```
/// use aperture_core::{AssetId, Insight, InsightValue, Place, UnixMillis};
/// use aperture_core::value::PerceptualHash;
///
/// let insight = Insight {
///     asset: AssetId::new(),
///     analyzer: "phash".into(),
///     analyzer_version: "1-dct-8x8".into(),
///     model: None,
///     model_version: None,
///     value: PerceptualHash { hash: "00000000000000ff".into(), bits: 64 }.into(),
///     confidence: None,
///     language: None,
///     place: Place::Whole,
///     created_at: UnixMillis(0),
/// };
/// let json = serde_json::to_value(&insight).unwrap();
/// assert_eq!(json["kind"], "phash");
/// assert_eq!(json["value"], serde_json::json!({"bits": 64, "hash": "00000000000000ff"}));
/// assert_eq!(serde_json::from_value::<Insight>(json).unwrap(), insight);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// The asset it is about.
    pub asset: AssetId,
    /// The analyzer's name, e.g. `labels`, `ocr`.
    pub analyzer: String,
    /// The analyzer's full version when it ran (with its model's fingerprint, if any).
    pub analyzer_version: String,
    /// The model, when a model produced this.
    pub model: Option<String>,
    /// The model's version (the fingerprint of its files, or the languages it had).
    pub model_version: Option<String>,
    /// What was found, by kind: written as the fields `kind` and `value`.
    #[serde(flatten)]
    pub value: InsightValue,
    /// How sure the analyzer is, 0–1, when it says.
    pub confidence: Option<f32>,
    /// BCP 47 tag of the text in `value`, when it is text.
    pub language: Option<String>,
    /// Where in the asset it applies.
    pub place: Place,
    /// When it was found.
    pub created_at: UnixMillis,
}

impl Insight {
    /// `value` about the whole of `asset`, by `analyzer` version 1 with no model, no
    /// confidence and no language, made now: for tests and tools that make insights by hand,
    /// which set the fields they need on top (`Insight { place, ..Insight::by_hand(…) }`).
    pub fn by_hand(asset: AssetId, analyzer: &str, value: impl Into<InsightValue>) -> Self {
        Self {
            asset,
            analyzer: analyzer.into(),
            analyzer_version: "1".into(),
            model: None,
            model_version: None,
            value: value.into(),
            confidence: None,
            language: None,
            place: Place::Whole,
            created_at: UnixMillis::now(),
        }
    }

    /// The value's kind: `label`, `ocr_line`, `text`, `phash`, ...
    pub fn kind(&self) -> &str {
        self.value.kind()
    }
}

/// Where in the asset an insight applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Place {
    /// The asset as a whole.
    Whole,
    /// A region of an image.
    Region {
        /// The region.
        rect: Rect,
    },
    /// A page of a document, optionally a region of it.
    Page {
        /// The page, from 1.
        page: u32,
        /// The region of the page, if not all of it.
        rect: Option<Rect>,
    },
    /// A time range of audio or video, optionally a region of the frames.
    Time {
        /// Start, in milliseconds from the start of the asset.
        start_ms: u64,
        /// End, likewise.
        end_ms: u64,
        /// The region of the frames, if not all of them.
        rect: Option<Rect>,
    },
}

/// A box in relative coordinates (0–1 of width and height), so it survives thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Place {
    /// The page, time range and box as separate columns, for storage and filtering.
    pub fn columns(&self) -> (Option<u32>, Option<(u64, u64)>, Option<Rect>) {
        match *self {
            Place::Whole => (None, None, None),
            Place::Region { rect } => (None, None, Some(rect)),
            Place::Page { page, rect } => (Some(page), None, rect),
            Place::Time {
                start_ms,
                end_ms,
                rect,
            } => (None, Some((start_ms, end_ms)), rect),
        }
    }

    /// The inverse of [`Place::columns`].
    pub fn from_columns(page: Option<u32>, time: Option<(u64, u64)>, rect: Option<Rect>) -> Self {
        match (page, time, rect) {
            (Some(page), _, rect) => Place::Page { page, rect },
            (None, Some((start_ms, end_ms)), rect) => Place::Time {
                start_ms,
                end_ms,
                rect,
            },
            (None, None, Some(rect)) => Place::Region { rect },
            (None, None, None) => Place::Whole,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Label, OcrLine};

    /// An OCR line as the analyzer stored and the API showed it before values were typed.
    const OCR_LINE: &str = r#"{"asset":"0194c2a87a8e7cc08b4c0f0a51e0e0a1","analyzer":"ocr","analyzer_version":"1+3f2a","model":"pp-ocrv6","model_version":"3f2a","kind":"ocr_line","value":{"engine":"pp-ocrv6","quad":[[0.10000000149011612,0.20000000298023224],[0.8999999761581421,0.20000000298023224],[0.8999999761581421,0.30000001192092896],[0.10000000149011612,0.30000001192092896]],"text":"NO PARKING"},"confidence":0.97,"language":"en","place":{"type":"region","rect":{"x":0.1,"y":0.2,"w":0.8,"h":0.1}},"created_at":1767225600000}"#;

    #[test]
    fn insight_json_is_unchanged() {
        let insight: Insight = serde_json::from_str(OCR_LINE).unwrap();
        assert_eq!(insight.kind(), "ocr_line");
        assert!(matches!(
            &insight.value,
            InsightValue::OcrLine(OcrLine { text, engine, .. })
                if text == "NO PARKING" && engine == "pp-ocrv6"
        ));
        assert_eq!(serde_json::to_string(&insight).unwrap(), OCR_LINE);
        // The server builds its answers with `json!`, through serde_json::Value.
        let literal: serde_json::Value = serde_json::from_str(OCR_LINE).unwrap();
        let built = serde_json::to_value(&insight).unwrap();
        assert_eq!(built["kind"], literal["kind"]);
        assert_eq!(built["value"], literal["value"]);
    }

    #[test]
    fn insight_of_an_unknown_kind_loads() {
        let newer = OCR_LINE
            .replace(r#""kind":"ocr_line""#, r#""kind":"scene""#)
            .replace(r#""engine":"pp-ocrv6","#, r#""engine":{"name":"x"},"#);
        let insight: Insight = serde_json::from_str(&newer).unwrap();
        assert_eq!(insight.kind(), "scene");
        assert_eq!(serde_json::to_string(&insight).unwrap(), newer);
    }

    #[test]
    fn insight_of_a_malformed_value_is_an_error() {
        let bad = OCR_LINE.replace(r#""text":"NO PARKING""#, r#""words":"NO PARKING""#);
        let e = serde_json::from_str::<Insight>(&bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid ocr_line insight value: missing field `text`"),
            "{e}"
        );
        let missing = OCR_LINE.replace(r#""kind":"ocr_line","#, "");
        assert!(serde_json::from_str::<Insight>(&missing).is_err());
    }

    #[test]
    fn label_insight_round_trips() {
        let insight = Insight {
            asset: AssetId::new(),
            analyzer: "labels".into(),
            analyzer_version: "1+abc".into(),
            model: Some("efficientnet-lite0".into()),
            model_version: Some("abc".into()),
            value: Label {
                name: "tabby, tabby cat".into(),
                class: 281,
                rank: 1,
                taxonomy: "imagenet-1k".into(),
            }
            .into(),
            confidence: Some(0.61),
            language: None,
            place: Place::Whole,
            created_at: UnixMillis(1),
        };
        let text = serde_json::to_string(&insight).unwrap();
        assert!(
            text.contains(r#""model_version":"abc","kind":"label","value":{"class":281,"name":"tabby, tabby cat","rank":1,"taxonomy":"imagenet-1k"},"confidence":0.61,"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Insight>(&text).unwrap(), insight);
    }

    #[test]
    fn place_columns_round_trip() {
        let rect = Rect {
            x: 0.1,
            y: 0.2,
            w: 0.3,
            h: 0.4,
        };
        for place in [
            Place::Whole,
            Place::Region { rect },
            Place::Page {
                page: 3,
                rect: None,
            },
            Place::Page {
                page: 1,
                rect: Some(rect),
            },
            Place::Time {
                start_ms: 1000,
                end_ms: 2500,
                rect: None,
            },
            Place::Time {
                start_ms: 0,
                end_ms: 40,
                rect: Some(rect),
            },
        ] {
            let (page, time, r) = place.columns();
            assert_eq!(Place::from_columns(page, time, r), place);
        }
    }
}
