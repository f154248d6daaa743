//! Whose data key a wrapped key is, when a lake encrypts its objects at rest.

use crate::{AssetId, ContentHash};

/// The owner of one data key: what it encrypts, and what it goes with when erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyOwner {
    /// The key of one blob; destroyed when the blob is claimed for deletion.
    Blob(ContentHash),
    /// The key from which every derived object of one asset gets its own; destroyed with the
    /// asset.
    Asset(AssetId),
    /// The key that turns content hashes into blob names; kept as long as the lake.
    Names,
}

impl KeyOwner {
    /// A compact, ordered encoding for storage: a tag byte, then the hash or id.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Blob(hash) => [b"b".as_slice(), hash.as_bytes()].concat(),
            Self::Asset(id) => [b"a".as_slice(), id.as_bytes()].concat(),
            Self::Names => b"n".to_vec(),
        }
    }

    /// Reads [`KeyOwner::to_bytes`]; `None` for bytes it did not write.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (b'b', rest) => Some(Self::Blob(ContentHash::from_bytes(rest.try_into().ok()?))),
            (b'a', rest) => Some(Self::Asset(AssetId::from_bytes(rest.try_into().ok()?))),
            (b'n', []) => Some(Self::Names),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_and_bad_bytes_are_refused() {
        for owner in [
            KeyOwner::Blob(ContentHash::of(b"x")),
            KeyOwner::Asset(AssetId::new()),
            KeyOwner::Names,
        ] {
            assert_eq!(KeyOwner::from_bytes(&owner.to_bytes()), Some(owner));
        }
        for bad in [&b""[..], b"b", b"bshort", b"n1", b"x"] {
            assert_eq!(KeyOwner::from_bytes(bad), None, "{bad:?}");
        }
    }
}
