//! Turning PostgreSQL rows into domain types. Bad stored values become `Error::Corrupt`.

use aperture_core::{Insight, InsightValue, Place, Rect, UnixMillis};
use postgres::Row;

use crate::decode::{hash_from, id_from};
use crate::{Asset, Collection, CollectionId, Error, Result};

pub(super) const ASSET_COLUMNS: &str = "a.id, c.name, a.content_hash, a.size, a.kind, a.mime,
    a.ingested_at, a.captured_at, a.metadata,
    COALESCE((SELECT s.name FROM asset_sources s WHERE s.asset_id = a.id
              ORDER BY s.last_seen DESC LIMIT 1), '')";

pub(super) const INSIGHT_COLUMNS: &str = "asset_id, analyzer, analyzer_version, model,
    model_version, kind, value, confidence, language, page, time_start_ms, time_end_ms,
    region_x, region_y, region_w, region_h, created_at";

pub(super) fn collection(r: &Row) -> Collection {
    Collection {
        id: CollectionId(r.get(0)),
        name: r.get(1),
        created_at: UnixMillis(r.get(2)),
        retention_secs: r.get::<_, Option<i64>>(3).map(|s| s.max(0) as u64),
        legal_hold: r.get(4),
        read_plates: r.get(5),
    }
}

pub(super) fn asset(r: &Row) -> Result<Asset> {
    let kind: String = r.get(4);
    let metadata: String = r.get(8);
    Ok(Asset {
        id: id_from(r.get(0))?,
        collection: r.get(1),
        hash: hash_from(r.get(2))?,
        size: r.get::<_, i64>(3) as u64,
        kind: kind.parse().map_err(|e| Error::Corrupt {
            reason: format!("{e}"),
        })?,
        mime: r.get(5),
        ingested_at: UnixMillis(r.get(6)),
        captured_at: r.get(7),
        name: r.get(9),
        metadata: serde_json::from_str(&metadata).map_err(|e| Error::Corrupt {
            reason: format!("asset metadata: {e}"),
        })?,
    })
}

pub(super) fn insight(r: &Row) -> Result<Insight> {
    let kind: String = r.get(5);
    let value: String = r.get(6);
    let page: Option<i32> = r.get(9);
    let start: Option<i64> = r.get(10);
    let end: Option<i64> = r.get(11);
    let rect = match (r.get(12), r.get(13), r.get(14), r.get(15)) {
        (Some(x), Some(y), Some(w), Some(h)) => Some(Rect { x, y, w, h }),
        _ => None,
    };
    let time = start
        .zip(end)
        .map(|(s, e)| (s.max(0) as u64, e.max(0) as u64));
    Ok(Insight {
        asset: id_from(r.get(0))?,
        analyzer: r.get(1),
        analyzer_version: r.get(2),
        model: r.get(3),
        model_version: r.get(4),
        value: serde_json::from_str(&value)
            .map_err(|e| e.to_string())
            .and_then(|v| InsightValue::from_parts(&kind, v).map_err(|e| e.to_string()))
            .map_err(|reason| Error::Corrupt {
                reason: format!("insight value: {reason}"),
            })?,
        confidence: r.get(7),
        language: r.get(8),
        place: Place::from_columns(page.map(|p| p.max(0) as u32), time, rect),
        created_at: UnixMillis(r.get(16)),
    })
}
