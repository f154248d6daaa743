//! What the API says of assets, and the checks every asset route makes: ids, limits,
//! visibility.

use aperture_catalog::{Asset, Scope};
use aperture_core::{AssetId, Insight, InsightValue, MediaKind};
use serde::Serialize;
use serde_json::{Value, json};

use super::State;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};

/// The most hits or assets one request returns. A `limit` above it is refused, not cut down:
/// the OpenAPI document says `maximum: 200`, and a client asking for more has a bug to hear of.
pub const MAX_LIMIT: usize = 200;

/// An asset id as the API writes it: 32 hex digits, the pattern the OpenAPI document
/// declares. (A UUID parser would also take hyphens, braces and `urn:uuid:`; one spelling
/// keeps the document exact.) Prefixes are for `similar:` in a query only.
pub fn parse_id(text: &str) -> ApiResult<AssetId> {
    let hex = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    let id = hex.then(|| text.parse().ok()).flatten();
    id.ok_or_else(|| {
        ApiError::bad_request(format!(
            "'{text}' is not an asset id: expected 32 hex digits"
        ))
    })
}

/// `limit` of a list or search: `default` when absent, refused outside 1..=[`MAX_LIMIT`].
pub fn page_limit(limit: Option<usize>, default: usize) -> ApiResult<usize> {
    match limit {
        None => Ok(default),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit={n}: give a number from 1 to {MAX_LIMIT}"
        ))),
    }
}

/// An asset of a collection the caller may see, or 404: an asset it has no grant for is
/// not told apart from one that does not exist.
pub async fn visible(caller: &Caller, id: AssetId) -> ApiResult<Asset> {
    caller.view.asset(id).await.map_err(|e| match e {
        aperture_lake::Error::NoSuchAsset { .. } => {
            ApiError::not_found(format!("asset {id} not found"))
        }
        e => e.into(),
    })
}

/// An asset the caller may read (scope `read`, and a grant for its collection).
pub async fn readable(caller: &Caller, id: AssetId) -> ApiResult<Asset> {
    caller.require(Scope::Read)?;
    visible(caller, id).await
}

/// What the API says of an asset in lists and hits.
#[derive(Serialize)]
pub struct AssetView {
    id: AssetId,
    collection: String,
    name: String,
    kind: MediaKind,
    mime: String,
    size: u64,
    ingested_at: i64,
    captured_at: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sensitive: Option<Value>,
    thumbnail: Option<String>,
    original: String,
}

impl AssetView {
    pub fn new(asset: &Asset, insights: &[Insight]) -> Self {
        let sensitive = insights.iter().find_map(|i| match &i.value {
            InsightValue::Sensitive(s) => Some(json!({ "score": s.score, "blur": s.blur })),
            _ => None,
        });
        let thumbnail = insights
            .iter()
            .any(|i| matches!(i.value, InsightValue::Thumbnail(_)))
            .then(|| format!("/api/v1/assets/{}/thumbnail", asset.id));
        let m = &asset.metadata;
        // Sideways EXIF orientations swap what people see as width and height.
        let (width, height) = match m.orientation {
            Some(5..=8) => (m.height, m.width),
            _ => (m.width, m.height),
        };
        Self {
            id: asset.id,
            collection: asset.collection.clone(),
            name: asset.name.clone(),
            kind: asset.kind,
            mime: asset.mime.clone(),
            size: asset.size,
            ingested_at: asset.ingested_at.0,
            captured_at: asset.captured_at.clone(),
            width,
            height,
            sensitive,
            thumbnail,
            original: format!("/api/v1/assets/{}/original", asset.id),
        }
    }
}

/// Views of many assets, reading the insights a view shows (not the large ones).
pub async fn views(state: &State, assets: Vec<Asset>) -> ApiResult<Vec<AssetView>> {
    let views = state
        .lake
        .catalog(move |c| {
            let ids: Vec<AssetId> = assets.iter().map(|a| a.id).collect();
            let shown = c.insights_of_kinds(&ids, &["thumbnail", "sensitive"])?;
            Ok(assets
                .iter()
                .map(|a| {
                    let own: Vec<Insight> =
                        shown.iter().filter(|i| i.asset == a.id).cloned().collect();
                    AssetView::new(a, &own)
                })
                .collect())
        })
        .await?;
    Ok(views)
}
