//! Decoding stored values and the checks both backends share. Bad stored values become
//! `Error::Corrupt`, never panics.

use std::time::Duration;

use aperture_core::{AssetId, ContentHash, Insight, KeyOwner};

use crate::jobs::{Job, MAX_PARTS, Outcome, Part, Stretch};
use crate::{Error, Result};

pub(crate) fn id_from(bytes: &[u8]) -> Result<AssetId> {
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| Error::Corrupt {
        reason: format!("asset id has {} bytes, expected 16", bytes.len()),
    })?;
    Ok(AssetId::from_bytes(bytes))
}

pub(crate) fn hash_from(bytes: &[u8]) -> Result<ContentHash> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| Error::Corrupt {
        reason: format!("content hash has {} bytes, expected 32", bytes.len()),
    })?;
    Ok(ContentHash::from_bytes(bytes))
}

pub(crate) fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|b: Vec<u8>| Error::Corrupt {
        reason: format!("{what} has {} bytes, expected 32", b.len()),
    })
}

/// The insights of rows that read; a damaged one (a value that does not have its kind's
/// shape) is left out with a warning, so one bad row never hides an asset's other insights.
pub(crate) fn readable_insights(
    rows: impl Iterator<Item = Result<Insight>>,
) -> Result<Vec<Insight>> {
    let mut out = Vec::new();
    for row in rows {
        match row {
            Ok(insight) => out.push(insight),
            Err(Error::Corrupt { reason }) => {
                tracing::warn!(%reason, "an insight row is damaged; left out");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

pub(crate) fn validate_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        // Characters, as the message says (and the API's OpenAPI pattern counts).
        && name.chars().count() <= 128
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        && !name.starts_with(' ')
        && !name.ends_with(' ');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            reason: format!(
                "collection name {name:?} must be 1–128 letters, digits, '-', '_', '.' or inner spaces"
            ),
        })
    }
}

/// The byte range `[lo, hi]` of ids whose hex form starts with `prefix` (ids are stored as
/// bytes); [`Error::InvalidInput`] for what is not 1 to 32 hex digits.
pub(crate) fn prefix_bounds(prefix: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let prefix = prefix.to_ascii_lowercase();
    if prefix.is_empty() || prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidInput {
            reason: format!("{prefix:?} is not an asset id or id prefix (hex digits)"),
        });
    }
    Ok((hex_pad(&prefix, b'0'), hex_pad(&prefix, b'f')))
}

fn hex_pad(prefix: &str, fill: u8) -> Vec<u8> {
    let mut hex = prefix.as_bytes().to_vec();
    hex.resize(32, fill);
    hex.chunks_exact(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) << 4 | digit(pair[1])
        })
        .collect()
}

/// Whether `parts` is a split: stretches from 0, each starting where the one before ends,
/// only the last open-ended, none empty, at most [`MAX_PARTS`].
fn is_split(parts: &[Stretch]) -> bool {
    let mut at = 0;
    for (n, &(start, end)) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        match end {
            _ if start != at => return false,
            Some(end) if end > start => at = end,
            None if last => {}
            _ => return false,
        }
    }
    !parts.is_empty() && parts.len() <= MAX_PARTS
}

/// Why `outcome` cannot end the job `held` (id `job`), if it cannot: a part ends only with
/// `PartDone` or a failure, a whole job never with `PartDone`, a split must be one, and only
/// a job with parts can redo them. Nothing is written for a refused outcome.
pub(crate) fn refusal(job: i64, held: &Job, outcome: &Outcome) -> Option<Error> {
    let what = match (outcome, held.part) {
        (Outcome::Succeeded { .. } | Outcome::Split { .. }, Some(_)) => {
            "a part with anything but PartDone or a failure".to_owned()
        }
        (Outcome::PartDone { .. }, None) => "PartDone: it is no part".to_owned(),
        (Outcome::Split { parts }, None) if !is_split(parts) => format!(
            "a split into {} stretches that do not follow one another from 0 \
             (or more than {MAX_PARTS})",
            parts.len()
        ),
        (Outcome::RedoParts { .. }, Some(_)) => "RedoParts: it is a part".to_owned(),
        (Outcome::RedoParts { .. }, None) if held.parts == 0 => {
            "RedoParts: it has no parts".to_owned()
        }
        _ => return None,
    };
    Some(Error::InvalidInput {
        reason: format!("job {job} ({}) cannot finish {what}", held.analyzer),
    })
}

/// The message a split job fails or is skipped with when one of its parts does: it names the
/// part and its stretch.
pub(crate) fn part_failure(part: Part, why: &str) -> String {
    let stretch = match part.end_ms {
        Some(end) => format!(
            "{}–{}",
            aperture_core::human::clock(part.start_ms),
            aperture_core::human::clock(end)
        ),
        None => format!("{} to the end", aperture_core::human::clock(part.start_ms)),
    };
    format!("part {} of {} ({stretch}): {why}", part.index, part.count)
}

/// Where the keys of blobs lie among the owners stored ([`KeyOwner::to_bytes`]): the owners
/// from `lo` to `hi` that are `len` bytes long, each a tag byte and then the hash. The SQL that
/// finds blob keys and their hashes (`substr(owner, 2)`) relies on that shape.
pub(crate) struct BlobKeys {
    pub(crate) lo: Vec<u8>,
    pub(crate) hi: Vec<u8>,
    pub(crate) len: i64,
}

pub(crate) fn blob_keys() -> BlobKeys {
    let (first, last) = (
        ContentHash::from_bytes([0; 32]),
        ContentHash::from_bytes([0xff; 32]),
    );
    let lo = KeyOwner::Blob(first).to_bytes();
    let hi = KeyOwner::Blob(last).to_bytes();
    debug_assert!(
        lo.len() == 33 && lo.ends_with(first.as_bytes()) && hi.ends_with(last.as_bytes()),
        "a blob key's owner is one tag byte, then the hash"
    );
    BlobKeys {
        len: lo.len() as i64,
        lo,
        hi,
    }
}

/// One page of [`crate::Catalog::data_keys_page`]: `fetch(after, n)` reads up to `n` stored
/// (owner, wrapped) rows in owner order after `after`. A row whose owner does not decode is
/// skipped with a warning and another read in its place, so that a short page still means
/// the end.
pub(crate) fn data_keys_page(
    after: Option<KeyOwner>,
    limit: usize,
    mut fetch: impl FnMut(Option<&[u8]>, i64) -> Result<Vec<(Vec<u8>, Vec<u8>)>>,
) -> Result<Vec<(KeyOwner, Vec<u8>)>> {
    let mut cursor = after.map(|o| o.to_bytes());
    let mut out = Vec::new();
    while out.len() < limit {
        let want = limit - out.len();
        let rows = fetch(cursor.as_deref(), i64::try_from(want).unwrap_or(i64::MAX))?;
        let ended = rows.len() < want;
        for (owner, wrapped) in rows {
            match KeyOwner::from_bytes(&owner) {
                Some(decoded) => out.push((decoded, wrapped)),
                None => tracing::warn!(
                    owner = %aperture_core::hex(&owner),
                    "a data key's owner does not decode; skipped"
                ),
            }
            cursor = Some(owner);
        }
        if ended {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_prefix_bounds() {
        assert_eq!(hex_pad("ab", b'0')[..2], [0xab, 0x00]);
        assert_eq!(hex_pad("abc", b'f')[..2], [0xab, 0xcf]);
        assert_eq!(hex_pad("", b'f').len(), 16);
    }

    /// A page of owners that do not decode is read past, not taken for the end.
    #[test]
    fn data_key_pages_skip_owners_that_do_not_decode() {
        let good = |n: u8| KeyOwner::Blob(ContentHash::from_bytes([n; 32])).to_bytes();
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a-bad".to_vec(), vec![1]),
            (b"a-worse".to_vec(), vec![2]),
            (good(1), vec![3]),
            (good(2), vec![4]),
            (b"zzz".to_vec(), vec![5]),
        ];
        rows.sort();
        let fetch = |after: Option<&[u8]>, n: i64| {
            Ok(rows
                .iter()
                .filter(|(owner, _)| after.is_none_or(|a| owner.as_slice() > a))
                .take(n as usize)
                .cloned()
                .collect())
        };
        let page = data_keys_page(None, 2, fetch).unwrap();
        let owners: Vec<Vec<u8>> = page.iter().map(|(o, _)| o.to_bytes()).collect();
        assert_eq!(owners, [good(1), good(2)]);
        assert_eq!(page[1].1, [4]);
        let after = Some(page[1].0);
        assert_eq!(data_keys_page(after, 2, fetch).unwrap(), []);
        assert_eq!(data_keys_page(None, 0, fetch).unwrap(), []);
    }

    #[test]
    fn blob_keys_cover_blob_owners_only() {
        let range = blob_keys();
        for n in [0u8, 7, 0xff] {
            let owner = KeyOwner::Blob(ContentHash::from_bytes([n; 32])).to_bytes();
            assert!(range.lo <= owner && owner <= range.hi);
            assert_eq!(owner.len() as i64, range.len);
        }
        let asset = KeyOwner::Asset(AssetId::from_bytes([0xff; 16])).to_bytes();
        assert!(asset < range.lo || asset.len() as i64 != range.len);
        assert!(KeyOwner::Names.to_bytes() > range.hi);
    }

    #[test]
    fn collection_names() {
        assert!(validate_collection_name("Field photos 2024").is_ok());
        assert!(validate_collection_name("").is_err());
        assert!(validate_collection_name("../etc").is_err());
        assert!(validate_collection_name(" x").is_err());
        assert!(validate_collection_name(&"é".repeat(128)).is_ok());
        assert!(validate_collection_name(&"é".repeat(129)).is_err());
    }
}
