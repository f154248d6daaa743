//! Bytes: originals (with HTTP range requests), thumbnails, and the web UI's own files.
//! Every read of an original or a thumbnail is in the audit log before its first byte goes out.

use std::sync::Arc;

use aperture_core::InsightValue;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use aperture_lake::captions::{self, CaptionFormat};

use super::State;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::views::{parse_id, readable};

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/assets/{id}/original", get(original))
        .route("/api/v1/assets/{id}/thumbnail", get(thumbnail))
        .route("/api/v1/assets/{id}/derived/{name}", get(derived))
        .route("/api/v1/assets/{id}/preview", get(preview))
        .route("/api/v1/assets/{id}/captions.vtt", get(captions_vtt))
        .route("/api/v1/assets/{id}/captions.srt", get(captions_srt))
        .route("/api/v1/assets/{id}/translations", post(translations))
}

/// The web UI: three files compiled into the binary.
pub fn ui_routes() -> Router<Arc<State>> {
    let file = |mime: &'static str, body: &'static str| {
        move || async move {
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
        }
    };
    Router::new()
        .route(
            "/",
            get(file(
                "text/html; charset=utf-8",
                include_str!("../web/index.html"),
            )),
        )
        .route(
            "/app.js",
            get(file(
                "text/javascript; charset=utf-8",
                include_str!("../web/app.js"),
            )),
        )
        .route(
            "/app.css",
            get(file(
                "text/css; charset=utf-8",
                include_str!("../web/app.css"),
            )),
        )
}

/// A range request's one range, resolved against the size. `None`: serve it all.
/// `Err`: unsatisfiable (416).
fn byte_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    // Several ranges would need a multipart answer; the whole file is an allowed answer.
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    // A range that does not parse is ignored, as RFC 9110 asks: the whole file is sent.
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty();
    let valid = |s: &str| s.is_empty() || number(s);
    if !valid(start) || !valid(end) || (start.is_empty() && end.is_empty()) {
        return Ok(None);
    }
    // All digits, so a parse fails only by overflow: such a number is past any file's end.
    let big = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    let (first, last) = if start.is_empty() {
        // The last N bytes.
        let n = big(end);
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
    } else {
        let first = big(start);
        let last = if end.is_empty() {
            size.checked_sub(1).ok_or(())?
        } else {
            big(end).min(size.saturating_sub(1))
        };
        (first, last)
    };
    if first >= size || first > last {
        return Err(());
    }
    Ok(Some((first, last)))
}

/// `attachment` with the name made safe: an ASCII fallback without quotes, slashes or
/// control characters, and the exact name percent-encoded (RFC 6266 / 8187).
fn disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '/' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let fallback = if fallback.trim().is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Types a browser would run as part of our page are sent as plain bytes.
fn safe_mime(mime: &str) -> &str {
    let lower = mime.to_ascii_lowercase();
    let active = ["html", "svg", "xml", "javascript", "ecmascript", "xhtml"];
    if mime.is_empty() || active.iter().any(|a| lower.contains(a)) {
        "application/octet-stream"
    } else {
        mime
    }
}

#[derive(Deserialize)]
struct OriginalQuery {
    blur: Option<Blur>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Blur {
    Faces,
}

async fn original(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<OriginalQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let asset = readable(&caller, parse_id(&id)?).await?;
    if let Some(Blur::Faces) = query.blur {
        return blurred(&state, &caller, &asset, &headers).await;
    }
    let etag = format!("\"{}\"", asset.hash);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let Ok(range) = byte_range(&headers, asset.size) else {
        return Ok(unsatisfiable("file", asset.size));
    };
    audit_range(&state, &caller, &asset, "read_original", range).await?;
    let mut response = match range {
        None => {
            // Verified as it streams, the last chunk held until the hash matches: corrupt
            // bytes end the body short of its length, so the client sees a broken download,
            // never a wrong file that looks complete.
            let stream = state
                .lake
                .blobs
                .get(asset.hash)
                .await
                .map_err(|e| stored_bytes_error(&asset, e))?;
            // A stored object longer than the catalog says would be cut at the announced
            // length before its hash is checked: the whole of it would go out, wrong.
            if stream.size() != asset.size {
                return Err(stored_bytes_error(
                    &asset,
                    aperture_blob::Error::Corrupt {
                        hash: asset.hash,
                        reason: format!(
                            "the store holds {} bytes where the catalog records {}",
                            stream.size(),
                            asset.size
                        ),
                    },
                ));
            }
            let body = Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
            let mut r = Response::new(body);
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(asset.size));
            r
        }
        Some((first, last)) => {
            let stream = state
                .lake
                .blobs
                .get_range(asset.hash, first..last + 1)
                .await
                .map_err(|e| stored_bytes_error(&asset, e))?;
            let body = Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = r.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(last - first + 1));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{}", asset.size)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            r
        }
    };
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(safe_mime(&asset.mime)) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(&asset.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

/// `?blur=faces`: the image with its faces blurred, whole (no ranges: it is made for this
/// answer), audited as a read of the original.
async fn blurred(
    state: &State,
    caller: &Caller,
    asset: &aperture_catalog::Asset,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    // The blur is the same for the same bytes, detector and fill: a tag of its own, with the
    // fill's version.
    let etag = format!("\"{}.blur-faces-2\"", asset.hash);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    state
        .audit_asset(
            caller,
            "read_original",
            asset,
            json!({ "collection": asset.collection, "blur": "faces" }),
        )
        .await?;
    let blurred = state.lake.blur_faces(asset.id).await?;
    let mime = blurred.mime();
    let mut response = Response::new(Body::from(blurred.bytes));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&disposition(&asset.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-faces-blurred", HeaderValue::from(blurred.faces));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

/// The asset `id` if the caller may read it, and its insights of `kinds`.
async fn readable_with(
    state: &State,
    caller: &Caller,
    id: &str,
    kinds: &'static [&'static str],
) -> ApiResult<(aperture_catalog::Asset, Vec<aperture_core::Insight>)> {
    let asset = readable(caller, parse_id(id)?).await?;
    let asset_id = asset.id;
    let insights = state
        .lake
        .catalog(move |c| c.insights_of_kinds(&[asset_id], kinds))
        .await?;
    Ok((asset, insights))
}

async fn thumbnail(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (asset, insights) = readable_with(&state, &caller, &id, &["thumbnail"]).await?;
    let Some(thumb) = insights.iter().find_map(|i| match &i.value {
        InsightValue::Thumbnail(t) => Some(t),
        _ => None,
    }) else {
        return Err(ApiError::not_found(format!(
            "asset {} has no thumbnail (yet)",
            asset.id
        )));
    };
    let name = thumb.name.clone();
    send_derived(&state, &caller, &asset, &name, "read_thumbnail").await
}

/// A video's keyframes (`shot-N.jpg`) and storyboard (`storyboard.jpg`, `storyboard.vtt`):
/// only the objects the asset's insights name are served.
async fn derived(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (asset, insights) =
        readable_with(&state, &caller, &id, &["shot", "storyboard", "thumbnail"]).await?;
    let named = insights.iter().any(|i| match &i.value {
        InsightValue::Shot(s) => s.keyframe.as_deref() == Some(name.as_str()),
        InsightValue::Storyboard(b) => b.sprite == name || b.vtt == name,
        InsightValue::Thumbnail(t) => t.name == name,
        _ => false,
    });
    if !named {
        return Err(ApiError::not_found(format!(
            "asset {} has no derived object {name:?}",
            asset.id
        )));
    }
    send_derived(&state, &caller, &asset, &name, "read_derived").await
}

/// `?lang=` of the captions routes.
#[derive(Debug, serde::Deserialize)]
struct CaptionsQuery {
    /// Only the segments spoken in this language.
    lang: Option<String>,
}

async fn captions_vtt(
    state: Shared<Arc<State>>,
    caller: Caller,
    id: Path<String>,
    query: Query<CaptionsQuery>,
) -> ApiResult<Response> {
    captions(state, caller, id, query, CaptionFormat::Vtt).await
}

async fn captions_srt(
    state: Shared<Arc<State>>,
    caller: Caller,
    id: Path<String>,
    query: Query<CaptionsQuery>,
) -> ApiResult<Response> {
    captions(state, caller, id, query, CaptionFormat::Srt).await
}

/// An audio or video file's transcript as captions (WebVTT for the player's track, or
/// SubRip), all of it or one language's segments; the read audited first.
async fn captions(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<CaptionsQuery>,
    format: CaptionFormat,
) -> ApiResult<Response> {
    if let Some(lang) = &query.lang
        && (!(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return Err(ApiError::bad_request(format!(
            "lang {lang:?} is not a language code such as en, es, ru"
        )));
    }
    let (asset, insights) =
        readable_with(&state, &caller, &id, &["transcript_segment", "translation"]).await?;
    let text = captions::captions(&insights, format, query.lang.as_deref()).map_err(|e| {
        let code = match e {
            captions::NoCaptions::NoTranscript => "no_transcript",
            captions::NoCaptions::NotInLanguage { .. } => "not_spoken",
        };
        ApiError::new(StatusCode::NOT_FOUND, code, format!("{}: {e}", asset.name))
    })?;
    state
        .audit_asset(
            &caller,
            "read_captions",
            &asset,
            json!({ "collection": asset.collection, "lang": query.lang }),
        )
        .await?;
    let mime = match format {
        CaptionFormat::Vtt => "text/vtt; charset=utf-8",
        CaptionFormat::Srt => "application/x-subrip; charset=utf-8",
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        text,
    )
        .into_response())
}

/// `?to=` of the translations route.
#[derive(Debug, serde::Deserialize)]
struct TranslationsQuery {
    /// The language to translate into, two letters.
    to: String,
}

/// The asset's text translated into `?to=` on demand (nothing stored), as `translation`
/// insights; text no engine translates is said, not skipped. Audited before it runs.
async fn translations(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<TranslationsQuery>,
) -> ApiResult<Response> {
    let asset = readable(&caller, parse_id(&id)?).await?;
    aperture_lake::check_language(&query.to)?;
    state
        .audit_asset(
            &caller,
            "translate",
            &asset,
            json!({ "collection": asset.collection, "to": query.to }),
        )
        .await?;
    let translations = state.lake.translate(asset.id, &query.to).await?;
    Ok(axum::Json(json!({
        "asset": asset.id,
        "to": query.to,
        "translations": translations,
    }))
    .into_response())
}

/// The browser-playable copy of a video whose original browsers cannot play, with ranges.
async fn preview(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (asset, insights) = readable_with(&state, &caller, &id, &["preview"]).await?;
    let Some(name) = insights.iter().find_map(|i| match &i.value {
        InsightValue::Preview(p) => Some(p.name.clone()),
        _ => None,
    }) else {
        return Err(ApiError::not_found(format!(
            "asset {} has no preview: browsers play its original as it is, or it is not made yet",
            asset.id
        )));
    };
    let blobs = &state.lake.blobs;
    let not_found = |e: aperture_blob::Error| match e {
        aperture_blob::Error::DerivedNotFound { .. } => ApiError::not_found(e.to_string()),
        e => ApiError::internal(e),
    };
    let size = blobs
        .derived_size(asset.id, &name)
        .await
        .map_err(not_found)?;
    let Ok(range) = byte_range(&headers, size) else {
        return Ok(unsatisfiable("preview", size));
    };
    audit_range(&state, &caller, &asset, "read_preview", range).await?;
    let (first, last) = range.unwrap_or((0, size.saturating_sub(1)));
    let stream = blobs
        .get_derived_range(asset.id, &name, first..last + 1)
        .await
        .map_err(not_found)?;
    let body = Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(last + 1 - first));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{size}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// 416 for a range past the end of `what` (`size` bytes), with the size in `Content-Range`.
fn unsatisfiable(what: &str, size: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "bad_range",
        format!("the range is outside the {what}'s {size} bytes"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

/// Audits a read of (a range of) an asset's bytes before they go out.
/// The answer when an original's bytes cannot be read: a damaged blob says so (500 `damaged`,
/// logged for the administrator), other failures are internal errors.
fn stored_bytes_error(asset: &aperture_catalog::Asset, e: aperture_blob::Error) -> ApiError {
    if let aperture_blob::Error::Corrupt { .. } = e {
        tracing::error!(asset = %asset.id, error = %e, "a stored original is damaged");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "damaged",
            format!(
                "asset {}: its stored bytes are damaged (they do not match its content hash); \
                 nothing was sent. An administrator can find it with `aperture fsck` and restore \
                 it from a copy",
                asset.id
            ),
        );
    }
    ApiError::internal(format!("asset {}: {e}", asset.id))
}

async fn audit_range(
    state: &State,
    caller: &Caller,
    asset: &aperture_catalog::Asset,
    action: &str,
    range: Option<(u64, u64)>,
) -> ApiResult<()> {
    state
        .audit_asset(
            caller,
            action,
            asset,
            json!({
                "collection": asset.collection,
                "range": range.map(|(a, b)| format!("{a}-{b}")),
            }),
        )
        .await
}

/// Sends a derived object of `asset`, the read audited first.
async fn send_derived(
    state: &State,
    caller: &Caller,
    asset: &aperture_catalog::Asset,
    name: &str,
    action: &str,
) -> ApiResult<Response> {
    state
        .audit_asset(
            caller,
            action,
            asset,
            json!({ "collection": asset.collection, "object": name }),
        )
        .await?;
    let bytes = state
        .lake
        .blobs
        .get_derived(asset.id, name)
        .await
        .map_err(|e| match e {
            aperture_blob::Error::DerivedNotFound { .. } => ApiError::not_found(e.to_string()),
            e => ApiError::internal(e),
        })?;
    let mime = if name.ends_with(".vtt") {
        "text/vtt; charset=utf-8"
    } else {
        "image/jpeg"
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        byte_range(&h, size)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-500", 100), Ok(Some((0, 99))));
        assert_eq!(range("bytes=50-1000", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=9-3", 100), Err(()));
        assert_eq!(range("bytes=0-0", 0), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("bytes=x-y", 100), Ok(None));
        assert_eq!(range("bytes=-", 100), Ok(None));
        assert_eq!(range("bytes=-0", 100), Err(()));
        assert_eq!(
            range("bytes=0-99999999999999999999999", 100),
            Ok(Some((0, 99)))
        );
        assert_eq!(
            range("bytes=-99999999999999999999999", 100),
            Ok(Some((0, 99)))
        );
        assert_eq!(range("items=0-1", 100), Ok(None));
    }

    proptest::proptest! {
        /// Whatever the header says, a range is inside the file or refused.
        #[test]
        fn ranges_stay_inside_the_file(spec in "[ -~]{0,40}", size in 0u64..10_000) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes={spec}")) {
                h.insert(header::RANGE, v);
            }
            if let Ok(Some((first, last))) = byte_range(&h, size) {
                proptest::prop_assert!(first <= last && last < size);
            }
        }

        /// Any name makes a header value with no line breaks, quotes or slashes in the
        /// fallback name.
        #[test]
        fn any_name_makes_a_safe_disposition(name in "\\PC{0,60}") {
            let d = disposition(&name);
            proptest::prop_assert!(HeaderValue::from_str(&d).is_ok(), "{d}");
            let fallback = d.split('"').nth(1).unwrap();
            proptest::prop_assert!(!fallback.contains(['/', '\\', '\r', '\n']));
        }
    }

    #[test]
    fn dispositions_are_safe() {
        assert_eq!(
            disposition("a.jpg"),
            "attachment; filename=\"a.jpg\"; filename*=UTF-8''a.jpg"
        );
        let d = disposition("../\"evil\"\r\n.html");
        assert!(!d.contains('\r') && !d.contains('\n') && !d.contains("../"));
        assert!(d.contains("filename*=UTF-8''..%2F%22evil%22%0D%0A.html"));
        assert!(disposition("Ünïcode 東京.png").contains("filename=\"_n_code __.png\""));
        assert_eq!(safe_mime("text/html"), "application/octet-stream");
        assert_eq!(safe_mime("image/svg+xml"), "application/octet-stream");
        assert_eq!(safe_mime("image/jpeg"), "image/jpeg");
    }
}
