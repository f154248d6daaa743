use serde::{Deserialize, Serialize};

/// What probing an asset's bytes found. Every field is optional: a field is present only when
/// the file carries it. Stored as JSON in the catalog, so new fields need no migration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaMetadata {
    /// Pixel size as stored (before EXIF orientation is applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Pixel height as stored (before EXIF orientation is applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// EXIF orientation, 1–8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// When the picture or recording was made, as the file says: ISO 8601, with an offset
    /// only when the file records one (EXIF times are usually local time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<String>,
    /// Camera maker from EXIF `Make`, as written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    /// Camera model from EXIF `Model`, as written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// Where the picture was taken, when the file records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,
    /// Container format as ffprobe names it (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Codec of the first video stream that is not cover art, as ffprobe names it (`h264`,
    /// `hevc`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// Audio codec of the first audio stream, as ffprobe names it (`aac`, `opus`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// Playing time in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Frames per second of the video stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Samples per second of the audio stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Number of audio channels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// Documents: number of pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// Documents: whether any page has extractable text (no OCR needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_text_layer: Option<bool>,
    /// What was wrong with the file, in words (`truncated JPEG: no end-of-image marker`).
    /// The bytes are stored all the same: an archive keeps damaged files too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A position from EXIF GPS tags, in decimal degrees and metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gps {
    /// Degrees north of the equator (negative in the south).
    pub latitude: f64,
    /// Degrees east of Greenwich (negative in the west).
    pub longitude: f64,
    /// Metres above sea level, when recorded (negative below).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub altitude: Option<f64>,
}
