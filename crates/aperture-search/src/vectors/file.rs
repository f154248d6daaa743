//! A space on disk: the graph as USearch saves it, and beside it the entries and full
//! vectors in our own format (`APVECS04`), each read back with every length checked.

use std::io::{Read, Write};
use std::path::Path;

use aperture_core::{AssetId, MediaKind};

use super::*;

impl Space {
    /// Writes the index and its entries as `<stem>.usearch` and `<stem>.entries`, each
    /// through a temporary file and a rename.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<()> {
        let index_path = dir.join(format!("{stem}.usearch"));
        let tmp = dir.join(format!("{stem}.usearch.tmp"));
        let tmp_str = tmp
            .to_str()
            .ok_or_else(|| Error::Index(format!("{} is not UTF-8", tmp.display())))?;
        self.index.save(tmp_str).map_err(usearch_error)?;
        sync_file(&tmp)?;
        std::fs::rename(&tmp, &index_path).map_err(|e| Error::io(&index_path, e))?;

        let entries_path = dir.join(format!("{stem}.entries"));
        let tmp = dir.join(format!("{stem}.entries.tmp"));
        let mut out = Vec::with_capacity(64 + self.entries.len() * (ENTRY_BYTES + self.dims * 4));
        out.extend_from_slice(ENTRIES_MAGIC);
        out.extend_from_slice(&(self.dims as u64).to_le_bytes());
        out.extend_from_slice(&self.next_key.to_le_bytes());
        out.extend_from_slice(&(self.collections.len() as u32).to_le_bytes());
        for c in &self.collections {
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(c.as_bytes());
        }
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        let mut keys: Vec<&u64> = self.entries.keys().collect();
        keys.sort();
        for key in keys {
            let e = &self.entries[key];
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(e.asset.as_bytes());
            out.extend_from_slice(&e.collection.to_le_bytes());
            out.push(kind_code(e.kind));
            out.extend_from_slice(&e.date.to_le_bytes());
            out.extend_from_slice(&e.page.to_le_bytes());
            out.extend_from_slice(&e.ordinal.to_le_bytes());
            for x in self.raw.get(key).map_or(&[][..], |v| &v[..]) {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&out).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &entries_path).map_err(|e| Error::io(&entries_path, e))?;
        Ok(())
    }

    /// Reads what [`Space::save`] wrote.
    pub fn load(dir: &Path, stem: &str) -> Result<Space> {
        let entries_path = dir.join(format!("{stem}.entries"));
        let mut bytes = Vec::new();
        std::fs::File::open(&entries_path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(&entries_path, e))?;
        let bad = |what: &str| Error::Index(format!("{}: {what}", entries_path.display()));
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        if r.take(ENTRIES_MAGIC.len())
            .ok_or_else(|| bad("truncated"))?
            != ENTRIES_MAGIC
        {
            return Err(bad("not an entries file"));
        }
        let dims = r.u64().ok_or_else(|| bad("truncated"))? as usize;
        let next_key = r.u64().ok_or_else(|| bad("truncated"))?;
        let n_collections = r.u32().ok_or_else(|| bad("truncated"))?;
        let mut collections = Vec::new();
        for _ in 0..n_collections {
            let len = r.u32().ok_or_else(|| bad("truncated"))? as usize;
            let name = r.take(len).ok_or_else(|| bad("truncated"))?;
            collections.push(String::from_utf8(name.to_vec()).map_err(|_| bad("a bad name"))?);
        }
        let n = r.u64().ok_or_else(|| bad("truncated"))? as usize;
        let record = dims
            .checked_mul(4)
            .and_then(|v| v.checked_add(ENTRY_BYTES))
            .ok_or_else(|| bad("a bad dimension count"))?;
        if n.checked_mul(record) != Some(r.bytes.len() - r.at) {
            return Err(bad("its length does not match its count"));
        }
        let mut entries = HashMap::with_capacity(n);
        let mut raw = HashMap::with_capacity(n);
        let mut by_asset: HashMap<AssetId, Vec<u64>> = HashMap::new();
        for _ in 0..n {
            let key = r.u64().ok_or_else(|| bad("truncated"))?;
            let asset = AssetId::from_bytes(
                r.take(16)
                    .ok_or_else(|| bad("truncated"))?
                    .try_into()
                    .expect("16 bytes"),
            );
            let collection = r.u32().ok_or_else(|| bad("truncated"))?;
            let kind = kind_from(r.take(1).ok_or_else(|| bad("truncated"))?[0])
                .ok_or_else(|| bad("an unknown kind"))?;
            let date = r.u64().ok_or_else(|| bad("truncated"))? as i64;
            let page = r.u32().ok_or_else(|| bad("truncated"))?;
            let ordinal = r.u32().ok_or_else(|| bad("truncated"))?;
            let vector: Box<[f32]> = r
                .take(dims * 4)
                .ok_or_else(|| bad("truncated"))?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            raw.insert(key, vector);
            entries.insert(
                key,
                Entry {
                    asset,
                    collection,
                    kind,
                    date,
                    page,
                    ordinal,
                },
            );
            by_asset.entry(asset).or_default().push(key);
        }
        let index_path = dir.join(format!("{stem}.usearch"));
        let path_str = index_path
            .to_str()
            .ok_or_else(|| Error::Index(format!("{} is not UTF-8", index_path.display())))?;
        if !index_path.exists() {
            return Err(Error::io(
                &index_path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let freed = Index::metadata(path_str)
            .map_err(|e| Error::Index(format!("{}: {e}", index_path.display())))?
            .count_deleted as usize;
        let index = Index::new(&options(dims)).map_err(usearch_error)?;
        index
            .load(path_str)
            .map_err(|e| Error::Index(format!("{}: {e}", index_path.display())))?;
        if index.dimensions() != dims || index.size() != entries.len() {
            return Err(bad("the index and its entries disagree"));
        }
        index.change_expansion_search(EXPANSION_SEARCH);
        reserve(&index, index.capacity().max(index.size()))?;
        Ok(Space {
            dims,
            index,
            entries,
            by_asset,
            collections,
            next_key,
            freed,
            raw,
            slots: Slots::default(),
        })
    }
}

/// `04`: each entry is followed by its full vector (the graph holds 8-bit copies).
const ENTRIES_MAGIC: &[u8; 8] = b"APVECS04";
const ENTRY_BYTES: usize = 8 + 16 + 4 + 1 + 8 + 4 + 4;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn kind_code(kind: MediaKind) -> u8 {
    MediaKind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

fn kind_from(code: u8) -> Option<MediaKind> {
    MediaKind::ALL.get(code as usize).copied()
}

pub(crate) fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}
