//! Encryption at rest: every blob and derived object sealed with its own data key.
//!
//! **Objects.** An object is XChaCha20-Poly1305 in the STREAM construction (`aead::stream`,
//! big-endian 32-bit segment counter and a last-segment flag in the nonce): a 24-byte header
//! (`APEC`, format version 1, a random 19-byte nonce prefix), then the plaintext in segments
//! of [`SEGMENT`] bytes, each followed by its 16-byte tag. Segments can be opened one by one,
//! so ranges are read without the rest of the object, and a truncated, extended, reordered or
//! altered object fails to open. The associated data names the object (a blob's content hash,
//! a derived object's asset and name), so ciphertext cannot be moved to another name.
//!
//! **Keys.** A blob's data key is random and belongs to its content hash; a derived object's
//! key is derived from its asset's random data key and its name. Data keys are stored only
//! wrapped (XChaCha20-Poly1305 under the master key, bound to their owner), by whatever
//! implements [`DataKeys`] (the lake keeps them in its catalog). Rotating the master key
//! rewraps data keys and rewrites no object; destroying a data key makes every copy of its
//! objects unreadable, in backups and object-store versions too.
//!
//! **Names.** A blob is stored under a keyed BLAKE3 hash of its content hash (the lake's name
//! key), so the store's listing does not tell which files it holds. The same content gets the
//! same name within a lake, so deduplication works as without encryption.

use std::fmt;
use std::sync::Arc;

use aperture_core::{AssetId, ContentHash, KeyOwner};
use async_trait::async_trait;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::{AeadInPlace, Buffer, KeyInit};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Plaintext bytes per segment. 64 KiB: the tag costs 0.02 %, and a range read opens at most
/// 64 KiB more than it returns at each end.
pub const SEGMENT: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 5] = b"APEC\x01";
const PREFIX: usize = 19;
/// The header's size: the magic and format version, then the nonce prefix.
pub const HEADER: usize = MAGIC.len() + PREFIX;
const WRAP_VERSION: u8 = 1;
const WRAP_NONCE: usize = 24;
/// A wrapped key: version, master key id, nonce, the key, its tag.
const WRAPPED: usize = 1 + 8 + WRAP_NONCE + 32 + TAG;

/// A 256-bit secret, zeroed when dropped. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn random() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|e| Error::Keys {
            problem: format!("no random bytes from the operating system: {e}"),
        })?;
        Ok(Self(key))
    }

    /// A key from 64 hexadecimal digits (surrounding white space ignored). The message says
    /// what is wrong and never shows the text.
    pub fn from_hex(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(format!(
                "a key is 64 hexadecimal digits, this has {} characters",
                text.chars().count()
            ));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => key[i] = (hi * 16 + lo) as u8,
                _ => return Err("a key is 64 hexadecimal digits, this has others".into()),
            }
        }
        Ok(Self(key))
    }

    /// The key as 64 hexadecimal digits, for a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(aperture_core::hex(self.0.as_ref()))
    }

    /// A short public name of the key (16 hex digits): which master key wrapped a data key.
    /// It tells nothing of the key.
    pub fn id(&self) -> String {
        let id = blake3::derive_key("aperture 2026-12 master key id", self.0.as_ref());
        aperture_core::hex(&id[..8])
    }

    fn id_bytes(&self) -> [u8; 8] {
        let id = blake3::derive_key("aperture 2026-12 master key id", self.0.as_ref());
        id[..8].try_into().expect("8 of 32 bytes")
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(GenericArray::from_slice(self.0.as_ref()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

/// The master key that wraps data keys, and earlier ones still accepted when unwrapping
/// (while a rotation is under way, or until it is finished).
#[derive(Clone, Debug)]
pub struct KeyRing {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl KeyRing {
    /// A ring that wraps with `current` and unwraps with it or any of `previous`.
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        Self { current, previous }
    }

    /// The key new data keys are wrapped with.
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// Wraps `key` as `owner`'s data key under the current master key.
    pub fn wrap(&self, owner: KeyOwner, key: &SecretKey) -> Result<Vec<u8>> {
        let mut nonce = [0u8; WRAP_NONCE];
        getrandom::fill(&mut nonce).map_err(|e| Error::Keys {
            problem: format!("no random bytes from the operating system: {e}"),
        })?;
        let mut out = Vec::with_capacity(WRAPPED);
        out.push(WRAP_VERSION);
        out.extend_from_slice(&self.current.id_bytes());
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(key.0.as_ref());
        let tag = self
            .current
            .cipher()
            .encrypt_in_place_detached(
                GenericArray::from_slice(&nonce),
                &wrap_context(owner),
                &mut out[start..],
            )
            .map_err(|_| Error::Keys {
                problem: "cannot wrap a data key".into(),
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Unwraps `owner`'s data key with whichever master key of the ring wrapped it.
    pub fn unwrap(&self, owner: KeyOwner, wrapped: &[u8]) -> Result<SecretKey> {
        let bad = |problem: String| Error::Keys {
            problem: format!("the data key of {}: {problem}", describe(owner)),
        };
        if wrapped.len() != WRAPPED || wrapped[0] != WRAP_VERSION {
            return Err(bad("not a wrapped key of this version".into()));
        }
        let id = &wrapped[1..9];
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id_bytes() == id)
            .ok_or_else(|| {
                bad(format!(
                    "it is wrapped by master key {}, which is not configured",
                    aperture_core::hex(id)
                ))
            })?;
        let nonce = &wrapped[9..9 + WRAP_NONCE];
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&wrapped[9 + WRAP_NONCE..9 + WRAP_NONCE + 32]);
        let tag = &wrapped[9 + WRAP_NONCE + 32..];
        master
            .cipher()
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                &wrap_context(owner),
                key.as_mut(),
                GenericArray::from_slice(tag),
            )
            .map_err(|_| bad("it does not unwrap (altered, or not this owner's)".into()))?;
        Ok(SecretKey(key))
    }

    /// Whether `wrapped` is wrapped by the current master key (rotation skips those).
    pub fn is_current(&self, wrapped: &[u8]) -> bool {
        wrapped.get(1..9) == Some(self.current.id_bytes().as_slice())
    }
}

fn wrap_context(owner: KeyOwner) -> Vec<u8> {
    [b"aperture data key v1\0".as_slice(), &owner.to_bytes()].concat()
}

fn describe(owner: KeyOwner) -> String {
    match owner {
        KeyOwner::Blob(hash) => format!("blob {hash}"),
        KeyOwner::Asset(id) => format!("asset {id}"),
        KeyOwner::Names => "the blob names".into(),
    }
}

/// Where data keys come from: made, recorded and unwrapped by the lake (its catalog keeps them
/// wrapped by the master key).
#[async_trait]
pub trait DataKeys: Send + Sync + fmt::Debug {
    /// `owner`'s data key. With `create`, one is made and recorded first when it has none, so
    /// that writers racing on the same owner all get the one recorded. `None`: it has none (it
    /// was erased), or, with `create`, cannot have one (its asset was erased).
    async fn data_key(&self, owner: KeyOwner, create: bool) -> Result<Option<SecretKey>>;
}

/// What a store needs to encrypt: the key that names blobs and the source of data keys.
#[derive(Clone, Debug)]
pub struct Encryption {
    names: SecretKey,
    keys: Arc<dyn DataKeys>,
}

impl Encryption {
    /// Encryption with blob names keyed by `names` and data keys from `keys`.
    pub fn new(names: SecretKey, keys: Arc<dyn DataKeys>) -> Self {
        Self { names, keys }
    }

    /// The stored name of a blob: a keyed hash of its content hash.
    pub(crate) fn blob_name(&self, hash: ContentHash) -> String {
        let named = blake3::keyed_hash(&self.names.0, hash.as_bytes());
        aperture_core::hex(named.as_bytes())
    }

    /// The key and associated data of a blob, `None` when its key is gone.
    pub(crate) async fn blob(&self, hash: ContentHash, create: bool) -> Result<Option<Sealing>> {
        let owner = KeyOwner::Blob(hash);
        let Some(key) = self.keys.data_key(owner, create).await? else {
            return Ok(None);
        };
        Ok(Some(Sealing {
            key: key.clone(),
            context: [b"blob\0".as_slice(), hash.as_bytes()].concat(),
            owner: Some((owner, key, self.keys.clone())),
        }))
    }

    /// The key and associated data of a derived object: its own key, derived from its
    /// asset's data key and its name. `None` when the asset's key is gone (or, with
    /// `create`, the asset is).
    pub(crate) async fn derived(
        &self,
        asset: AssetId,
        name: &str,
        create: bool,
    ) -> Result<Option<Sealing>> {
        let owner = KeyOwner::Asset(asset);
        let Some(asset_key) = self.keys.data_key(owner, create).await? else {
            return Ok(None);
        };
        let mut hasher = blake3::Hasher::new_keyed(&asset_key.0);
        hasher.update(b"aperture derived object v1\0");
        hasher.update(name.as_bytes());
        let context = [b"derived\0".as_slice(), asset.as_bytes(), name.as_bytes()].concat();
        Ok(Some(Sealing {
            key: SecretKey(Zeroizing::new(*hasher.finalize().as_bytes())),
            context,
            owner: Some((owner, asset_key, self.keys.clone())),
        }))
    }
}

/// One object's key and associated data.
#[derive(Clone)]
pub(crate) struct Sealing {
    key: SecretKey,
    context: Vec<u8>,
    /// Whose data key the key is (or comes from), that key, and where keys are kept: to check
    /// that it was not destroyed while an object was being written.
    owner: Option<(KeyOwner, SecretKey, Arc<dyn DataKeys>)>,
}

impl Sealing {
    /// Whether the owner's data key is still the one this object is sealed with. Checked right
    /// before a long upload completes: an upload begun before an erasure destroyed the key
    /// must not replace an object sealed since with the owner's new key.
    pub(crate) async fn still_current(&self) -> Result<bool> {
        let Some((owner, key, keys)) = &self.owner else {
            return Ok(true);
        };
        Ok(keys
            .data_key(*owner, false)
            .await?
            .is_some_and(|now| *now.0 == *key.0))
    }

    fn stream(&self, prefix: &[u8]) -> StreamBE32<XChaCha20Poly1305> {
        StreamBE32::from_aead(self.key.cipher(), GenericArray::from_slice(prefix))
    }

    /// Seals a whole object held in memory.
    pub(crate) fn seal_all(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut sealer = self.sealer()?;
        let mut out = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
        sealer.push_into(plain, &mut out)?;
        sealer.finish_into(&mut out)?;
        Ok(out)
    }

    /// A sealer for an object written in pieces.
    pub(crate) fn sealer(&self) -> Result<Sealer> {
        let mut prefix = [0u8; PREFIX];
        getrandom::fill(&mut prefix).map_err(|e| Error::Keys {
            problem: format!("no random bytes from the operating system: {e}"),
        })?;
        Ok(self.sealer_with(prefix))
    }

    /// A sealer with a given nonce prefix: never reuse one under a key (tests only).
    fn sealer_with(&self, prefix: [u8; PREFIX]) -> Sealer {
        Sealer {
            stream: self.stream(&prefix),
            context: self.context.clone(),
            prefix,
            header_written: false,
            position: 0,
            pending: Vec::new(),
        }
    }

    /// An opener for the segments from `first` on of an object of `sealed_size` bytes whose
    /// header is `header`.
    pub(crate) fn opener(
        &self,
        header: &[u8],
        sealed_size: u64,
        first: u32,
    ) -> Result<Opener, String> {
        if header.len() < HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err("not an encrypted object of this version".into());
        }
        let plain = open_len(sealed_size)?;
        Ok(Opener {
            stream: self.stream(&header[MAGIC.len()..HEADER]),
            context: self.context.clone(),
            segments: segments(plain),
            position: first,
            pending: Vec::new(),
        })
    }
}

/// Writes an object's segments as its plaintext comes in. Every full segment but the last is
/// sealed as soon as more bytes follow it; [`Sealer::finish_into`] seals the last one.
pub(crate) struct Sealer {
    stream: StreamBE32<XChaCha20Poly1305>,
    context: Vec<u8>,
    prefix: [u8; PREFIX],
    header_written: bool,
    position: u32,
    pending: Vec<u8>,
}

impl Sealer {
    /// Takes more plaintext and appends what can be sealed of it to `out`.
    pub(crate) fn push_into(&mut self, mut plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.header(out);
        // Whole segments straight from the input while more follows them.
        if !self.pending.is_empty() {
            let take = (SEGMENT - self.pending.len()).min(plain.len());
            self.pending.extend_from_slice(&plain[..take]);
            plain = &plain[take..];
            if self.pending.len() < SEGMENT || plain.is_empty() {
                return Ok(());
            }
            let segment = std::mem::take(&mut self.pending);
            self.seal(&segment, false, out)?;
        }
        while plain.len() > SEGMENT {
            self.seal(&plain[..SEGMENT], false, out)?;
            plain = &plain[SEGMENT..];
        }
        self.pending.extend_from_slice(plain);
        Ok(())
    }

    /// Seals the last segment (empty for an empty object) into `out`.
    pub(crate) fn finish_into(mut self, out: &mut Vec<u8>) -> Result<()> {
        self.header(out);
        let last = std::mem::take(&mut self.pending);
        self.seal(&last, true, out)
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&self.prefix);
            self.header_written = true;
        }
    }

    fn seal(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(plain);
        let mut tail = Tail { out, start };
        self.stream
            .encrypt_in_place(self.position, last, &self.context, &mut tail)
            .map_err(|_| Error::Keys {
                problem: "cannot encrypt: object too large for one key".into(),
            })?;
        self.position = self.position.checked_add(1).ok_or_else(|| Error::Keys {
            problem: "cannot encrypt: object too large for one key".into(),
        })?;
        Ok(())
    }
}

/// Opens an object's segments as its sealed bytes come in.
pub(crate) struct Opener {
    stream: StreamBE32<XChaCha20Poly1305>,
    context: Vec<u8>,
    segments: u64,
    position: u32,
    pending: Vec<u8>,
}

impl Opener {
    /// Takes more sealed bytes and appends the plaintext of every segment they complete.
    /// The last segment is opened by [`Opener::finish_into`].
    pub(crate) fn push_into(&mut self, mut sealed: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        const FULL: usize = SEGMENT + TAG;
        while !sealed.is_empty() {
            if u64::from(self.position) + 1 >= self.segments {
                // The last segment: kept until the end, however much arrives.
                self.pending.extend_from_slice(sealed);
                if self.pending.len() > FULL {
                    return Err("longer than its segments".into());
                }
                return Ok(());
            }
            if self.pending.is_empty() && sealed.len() >= FULL {
                let (segment, rest) = sealed.split_at(FULL);
                self.open(segment, false, out)?;
                sealed = rest;
                continue;
            }
            let take = (FULL - self.pending.len()).min(sealed.len());
            self.pending.extend_from_slice(&sealed[..take]);
            sealed = &sealed[take..];
            if self.pending.len() == FULL {
                let segment = std::mem::take(&mut self.pending);
                self.open(&segment, false, out)?;
            }
        }
        Ok(())
    }

    /// Opens the last segment. Fails when the object ended early.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if u64::from(self.position) + 1 != self.segments {
            return Err(format!(
                "it ends after {} of {} segments",
                self.position, self.segments
            ));
        }
        let last = std::mem::take(&mut self.pending);
        self.open(&last, true, out)
    }

    fn open(&mut self, sealed: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        out.extend_from_slice(sealed);
        let mut tail = Tail { out, start };
        self.stream
            .decrypt_in_place(self.position, last, &self.context, &mut tail)
            .map_err(|_| {
                tail.out.truncate(start);
                format!(
                    "segment {} does not decrypt (altered, or not this object)",
                    self.position
                )
            })?;
        self.position += 1;
        Ok(())
    }
}

/// The end of a vector from `start` on, as a buffer for sealing or opening in place.
struct Tail<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for Tail<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.out[self.start..]
    }
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.out[self.start..]
    }
}

impl Buffer for Tail<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> chacha20poly1305::aead::Result<()> {
        self.out.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.out.truncate(self.start + len);
    }
}

/// Segments of an object of `plain` bytes: at least one, the last possibly short or empty.
fn segments(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT as u64).max(1)
}

/// The stored size of an object of `plain` bytes.
pub(crate) fn sealed_len(plain: u64) -> u64 {
    HEADER as u64 + plain + TAG as u64 * segments(plain)
}

/// The plaintext size of a stored object of `sealed` bytes, or why it cannot be one.
pub(crate) fn open_len(sealed: u64) -> Result<u64, String> {
    let body = sealed
        .checked_sub(HEADER as u64)
        .filter(|b| *b >= TAG as u64)
        .ok_or_else(|| format!("{sealed} bytes is too short for an encrypted object"))?;
    let segments = body.div_ceil((SEGMENT + TAG) as u64);
    let plain = body - segments * TAG as u64;
    if sealed_len(plain) != sealed {
        return Err(format!(
            "{sealed} bytes is not the size of an encrypted object"
        ));
    }
    Ok(plain)
}

/// The sealed byte range holding plaintext `range` of an object of `plain` bytes (headers
/// excluded), the first segment's index, and how many plaintext bytes of that segment come
/// before `range`.
pub(crate) fn sealed_range(range: &std::ops::Range<u64>) -> (std::ops::Range<u64>, u32, u64) {
    let seg = SEGMENT as u64;
    let first = range.start / seg;
    let last = range.end.saturating_sub(1).max(range.start) / seg;
    let at = |segment: u64| HEADER as u64 + segment * (seg + TAG as u64);
    (
        at(first)..at(last + 1),
        u32::try_from(first).unwrap_or(u32::MAX),
        range.start - first * seg,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealing() -> Sealing {
        Sealing {
            key: SecretKey::random().unwrap(),
            context: b"blob\0test".to_vec(),
            owner: None,
        }
    }

    fn open_all(s: &Sealing, sealed: &[u8], pieces: usize) -> Result<Vec<u8>, String> {
        let mut opener = s.opener(sealed, sealed.len() as u64, 0)?;
        let mut out = Vec::new();
        for chunk in sealed[HEADER..].chunks(pieces.max(1)) {
            opener.push_into(chunk, &mut out)?;
        }
        opener.finish_into(&mut out)?;
        Ok(out)
    }

    #[test]
    fn objects_round_trip_at_every_segment_boundary_in_any_pieces() {
        let s = sealing();
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            3 * SEGMENT + 5,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let sealed = s.seal_all(&plain).unwrap();
            assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
            assert_eq!(open_len(sealed.len() as u64), Ok(len as u64));
            // Sealed in pieces of odd sizes: the same layout.
            let mut sealer = s.sealer().unwrap();
            let mut pieced = Vec::new();
            for chunk in plain.chunks(SEGMENT / 3 + 7) {
                sealer.push_into(chunk, &mut pieced).unwrap();
            }
            sealer.finish_into(&mut pieced).unwrap();
            assert_eq!(pieced.len(), sealed.len(), "len {len}");
            for pieces in [1, 100, SEGMENT + TAG, sealed.len()] {
                assert_eq!(open_all(&s, &sealed, pieces).unwrap(), plain, "len {len}");
                assert_eq!(open_all(&s, &pieced, pieces).unwrap(), plain, "len {len}");
            }
        }
    }

    #[test]
    fn altered_truncated_or_moved_objects_do_not_open() {
        let s = sealing();
        let plain = vec![5u8; 2 * SEGMENT + 10];
        let sealed = s.seal_all(&plain).unwrap();
        let mut flipped = sealed.clone();
        flipped[HEADER + SEGMENT + 40] ^= 1;
        assert!(open_all(&s, &flipped, 1000).is_err());
        // Cut at a segment boundary: the size no longer fits, or the last flag does not.
        let cut = &sealed[..HEADER + 2 * (SEGMENT + TAG)];
        assert!(open_all(&s, cut, 1000).is_err());
        // Another object's context, another key.
        let moved = Sealing {
            key: s.key.clone(),
            context: b"blob\0other".to_vec(),
            owner: None,
        };
        assert!(open_all(&moved, &sealed, 1000).is_err());
        assert!(open_all(&sealing(), &sealed, 1000).is_err());
        assert!(open_len(3).is_err());
        assert!(open_len((HEADER + SEGMENT + TAG + 5) as u64).is_err());
        assert_eq!(
            open_len((HEADER + SEGMENT + 2 * TAG + 3) as u64),
            Ok(SEGMENT as u64 + 3)
        );
    }

    #[test]
    fn ranges_open_from_their_first_segment() {
        let s = sealing();
        let plain: Vec<u8> = (0..3 * SEGMENT + 100).map(|i| (i % 251) as u8).collect();
        let sealed = s.seal_all(&plain).unwrap();
        let seg = SEGMENT as u64;
        for range in [
            0..1,
            5..seg + 9,
            2 * seg..3 * seg,
            3 * seg - 1..3 * seg,
            2 * seg..3 * seg + 100,
        ] {
            let (bytes, first, skip) = sealed_range(&range);
            let mut opener = s
                .opener(&sealed[..HEADER], sealed.len() as u64, first)
                .unwrap();
            let mut out = Vec::new();
            let end = (bytes.end as usize).min(sealed.len());
            opener
                .push_into(&sealed[bytes.start as usize..end], &mut out)
                .unwrap();
            if end == sealed.len() {
                opener.finish_into(&mut out).unwrap();
            }
            let got = &out[skip as usize..skip as usize + (range.end - range.start) as usize];
            assert_eq!(got, &plain[range.start as usize..range.end as usize]);
        }
    }

    /// The stored format, pinned: objects written by this version must open in every later
    /// one (a change of the `aead` crate's STREAM, say, would be caught here). The digest is
    /// of the bytes this version wrote for a fixed key, nonce prefix and context.
    #[test]
    fn the_format_of_version_1_is_pinned() {
        let s = Sealing {
            key: SecretKey(Zeroizing::new([7u8; 32])),
            context: b"blob\0pinned".to_vec(),
            owner: None,
        };
        let plain: Vec<u8> = (0..SEGMENT + 100).map(|i| (i % 253) as u8).collect();
        let mut sealer = s.sealer_with([9u8; PREFIX]);
        let mut sealed = Vec::new();
        sealer.push_into(&plain, &mut sealed).unwrap();
        sealer.finish_into(&mut sealed).unwrap();
        assert_eq!(&sealed[..5], b"APEC\x01");
        assert_eq!(sealed.len() as u64, sealed_len(plain.len() as u64));
        assert_eq!(
            blake3::hash(&sealed).to_hex().as_str(),
            PINNED_V1,
            "the stored format changed: objects already written would not open"
        );
        assert_eq!(open_all(&s, &sealed, 1000).unwrap(), plain);
        // The same bytes made from the AEAD alone, the nonce spelled out: prefix, segment
        // counter (big-endian u32), 1 on the last segment.
        let cipher = XChaCha20Poly1305::new(GenericArray::from_slice(&[7u8; 32]));
        let mut expected = b"APEC\x01".to_vec();
        expected.extend([9u8; PREFIX]);
        let segments: Vec<&[u8]> = plain.chunks(SEGMENT).collect();
        for (i, segment) in segments.iter().enumerate() {
            let mut nonce = [9u8; 24];
            nonce[PREFIX..PREFIX + 4].copy_from_slice(&(i as u32).to_be_bytes());
            nonce[23] = u8::from(i + 1 == segments.len());
            let mut buf = segment.to_vec();
            let tag = cipher
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &s.context, &mut buf)
                .unwrap();
            expected.extend(buf);
            expected.extend(tag);
        }
        assert!(
            sealed == expected,
            "not the STREAM construction as documented"
        );
    }

    const PINNED_V1: &str = "e7b63667c9c2e717909fd89371d1d3fe26ebb1d2fa0773d2cb47cf442ef44e8b";

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any length, sealed and opened in pieces of any sizes, and any range of it.
        #[test]
        fn any_object_in_any_pieces_and_any_range_round_trips(
            len in 0usize..(3 * SEGMENT + 50),
            seal_piece in 1usize..(2 * SEGMENT),
            open_piece in 1usize..(2 * SEGMENT),
            a in 0u64..(3 * SEGMENT as u64 + 50),
            b in 0u64..(3 * SEGMENT as u64 + 50),
        ) {
            let s = sealing();
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let mut sealer = s.sealer().unwrap();
            let mut sealed = Vec::new();
            for piece in plain.chunks(seal_piece) {
                sealer.push_into(piece, &mut sealed).unwrap();
            }
            sealer.finish_into(&mut sealed).unwrap();
            proptest::prop_assert_eq!(open_all(&s, &sealed, open_piece).unwrap(), plain.clone());
            let (start, end) = (a.min(b).min(len as u64), a.max(b).min(len as u64));
            if start < end {
                let (bytes, first, skip) = sealed_range(&(start..end));
                let mut opener = s.opener(&sealed[..HEADER], sealed.len() as u64, first).unwrap();
                let mut out = Vec::new();
                let stop = (bytes.end as usize).min(sealed.len());
                for piece in sealed[bytes.start as usize..stop].chunks(open_piece) {
                    opener.push_into(piece, &mut out).unwrap();
                }
                if stop == sealed.len() {
                    opener.finish_into(&mut out).unwrap();
                }
                let got = &out[skip as usize..skip as usize + (end - start) as usize];
                proptest::prop_assert_eq!(got, &plain[start as usize..end as usize]);
            }
        }
    }

    #[test]
    fn wrapped_keys_unwrap_only_for_their_owner_with_a_ring_key() {
        let old = SecretKey::random().unwrap();
        let new = SecretKey::random().unwrap();
        let data = SecretKey::random().unwrap();
        let owner = KeyOwner::Blob(ContentHash::of(b"a"));
        let wrapped = KeyRing::new(old.clone(), vec![])
            .wrap(owner, &data)
            .unwrap();
        assert!(!wrapped.windows(32).any(|w| w == data.0.as_ref()));
        let rotated = KeyRing::new(new.clone(), vec![old.clone()]);
        assert_eq!(rotated.unwrap(owner, &wrapped).unwrap().0, data.0);
        assert!(!rotated.is_current(&wrapped));
        let err = KeyRing::new(new, vec![])
            .unwrap(owner, &wrapped)
            .unwrap_err();
        assert!(err.to_string().contains(&old.id()), "{err}");
        let other = KeyOwner::Blob(ContentHash::of(b"b"));
        assert!(rotated.unwrap(other, &wrapped).is_err());
        assert_eq!(SecretKey::from_hex(&data.to_hex()).unwrap().0, data.0);
        assert!(SecretKey::from_hex("abc").is_err());
        assert!(SecretKey::from_hex(&"g".repeat(64)).is_err());
        assert!(!format!("{data:?}").contains(data.to_hex().as_str()));
    }
}
