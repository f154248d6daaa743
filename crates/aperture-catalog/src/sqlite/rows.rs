//! Turning rows into domain types. Bad stored values become `Error::Corrupt`, never panics.

use aperture_core::{ContentHash, Insight, InsightValue, Place, Rect, UnixMillis};
use rusqlite::Row;

use crate::decode::{hash_from, id_from};
use crate::{Asset, Collection, CollectionId, Error, Result};

pub(super) fn blob(hash: &ContentHash) -> &[u8] {
    hash.as_bytes().as_slice()
}

pub(super) fn collection_from_row(r: &Row<'_>) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: CollectionId(r.get(0)?),
        name: r.get(1)?,
        created_at: UnixMillis(r.get(2)?),
        retention_secs: r.get::<_, Option<i64>>(3)?.map(|s| s.max(0) as u64),
        legal_hold: r.get(4)?,
        read_plates: r.get(5)?,
    })
}

/// Reads the columns of `ASSET_COLUMNS`. The outer `rusqlite::Result` is SQLite's; the inner
/// one is ours, for values SQLite stored fine but that do not parse.
pub(super) fn asset_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Asset>> {
    let id: Vec<u8> = r.get(0)?;
    let hash: Vec<u8> = r.get(2)?;
    let kind: String = r.get(4)?;
    let metadata: String = r.get(8)?;
    let (collection, size, mime, ingested_at, captured_at, name) = (
        r.get(1)?,
        r.get::<_, i64>(3)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(9)?,
    );
    Ok((|| {
        Ok(Asset {
            id: id_from(&id)?,
            collection,
            hash: hash_from(&hash)?,
            size: size as u64,
            kind: kind.parse().map_err(|e| Error::Corrupt {
                reason: format!("{e}"),
            })?,
            mime,
            ingested_at: UnixMillis(ingested_at),
            captured_at,
            name,
            metadata: serde_json::from_str(&metadata).map_err(|e| Error::Corrupt {
                reason: format!("asset metadata: {e}"),
            })?,
        })
    })())
}

pub(super) fn insight_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Insight>> {
    let asset: Vec<u8> = r.get(0)?;
    let value: String = r.get(6)?;
    let page: Option<u32> = r.get(9)?;
    let start: Option<i64> = r.get(10)?;
    let end: Option<i64> = r.get(11)?;
    let rect = match (r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?) {
        (Some(x), Some(y), Some(w), Some(h)) => Some(Rect { x, y, w, h }),
        _ => None,
    };
    let time = start.zip(end).map(|(s, e)| (s as u64, e as u64));
    let (analyzer, analyzer_version, model, model_version, kind, confidence, language, created) = (
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get::<_, String>(5)?,
        r.get(7)?,
        r.get(8)?,
        r.get(16)?,
    );
    Ok((|| {
        Ok(Insight {
            asset: id_from(&asset)?,
            analyzer,
            analyzer_version,
            model,
            model_version,
            value: serde_json::from_str(&value)
                .map_err(|e| e.to_string())
                .and_then(|v| InsightValue::from_parts(&kind, v).map_err(|e| e.to_string()))
                .map_err(|reason| Error::Corrupt {
                    reason: format!("insight value: {reason}"),
                })?,
            confidence,
            language,
            place: Place::from_columns(page, time, rect),
            created_at: UnixMillis(created),
        })
    })())
}
