use std::path::PathBuf;

use aperture_core::ContentHash;

/// The blob store's result: every operation fails with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a blob store operation failed. Callers act on the variant; the message names the blob
/// or file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No blob with this hash is stored.
    #[error("blob {hash} not found")]
    NotFound {
        /// The blob looked for.
        hash: ContentHash,
    },

    /// The stored bytes no longer hash to the blob's name (bit rot, tampering, truncation).
    #[error("blob {hash} is corrupt: {reason}")]
    Corrupt {
        /// The blob's name: what the bytes should hash to.
        hash: ContentHash,
        /// What was found instead (another hash, another size).
        reason: String,
    },

    /// A local file could not be read: a file to stage, or the store's own folder.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// A local file could not be written or synced: a copy of a blob, or the store's folder.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The asset has no derived object of this name (not made yet, or erased).
    #[error("derived object {name:?} of asset {asset} not found")]
    DerivedNotFound {
        /// The asset it would belong to.
        asset: aperture_core::AssetId,
        /// The name asked for.
        name: String,
    },

    /// A derived object's name is not 1–128 ASCII letters, digits, `.`, `-` or `_`, or it
    /// starts with `.`; such names could escape the asset's folder.
    #[error("invalid derived object name {name:?}: use letters, digits, '.', '-' and '_'")]
    InvalidName {
        /// The name as given, cut to 130 characters.
        name: String,
    },

    /// The store URL does not parse, has an unknown scheme, or is not usable as given.
    #[error("invalid blob store url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The URL names a backend compiled out of this build (`s3`, `azure`).
    #[error("blob store url {url:?} needs the `{feature}` feature; this build was made without it")]
    FeatureDisabled {
        /// The URL as given.
        url: String,
        /// The Cargo feature that would enable it.
        feature: &'static str,
    },

    /// The store's layout marker names another layout (or is not ours): refusing beats
    /// misreading or scattering blobs in a foreign layout.
    #[error("blob store uses layout {found:?}; this build reads layout {expected}")]
    UnsupportedLayout {
        /// The marker's text, cut to 100 characters.
        found: String,
        /// [`crate::LAYOUT_VERSION`].
        expected: u32,
    },

    /// A remote store cannot be used: checked when it is opened ([`crate::BlobStore::init`]),
    /// so that a wrong URL, key or address is said at once instead of at the first upload.
    #[error("blob store {url} is unusable: {problem}")]
    Unavailable {
        /// The store's URL as given.
        url: String,
        /// What is wrong: the server does not answer, the bucket or container does not
        /// exist, the credentials are refused.
        problem: String,
        /// The object store's error, when there was one (not for a timeout).
        #[source]
        source: Option<Box<object_store::Error>>,
    },

    /// A file changed between staging (when it was hashed) and publishing (when it was
    /// uploaded): the upload is abandoned, since its bytes would not match the hash.
    #[error("{} changed while it was being stored; stage it again", path.display())]
    SourceChanged {
        /// The file.
        path: PathBuf,
    },

    /// A derived object's stored bytes do not open with its key (altered, truncated).
    #[error("derived object {name:?} of asset {asset} is corrupt: {reason}")]
    CorruptDerived {
        /// The asset it belongs to.
        asset: aperture_core::AssetId,
        /// Its name.
        name: String,
        /// What failed.
        reason: String,
    },

    /// An encrypted object's data key is gone: its blob or asset was erased, and the bytes
    /// that may remain (a backup, an older object version) cannot be read by anyone.
    #[error("{object} cannot be decrypted: its data key is gone (erased)")]
    KeyGone {
        /// The blob or derived object.
        object: String,
    },

    /// Data keys cannot be made, found or unwrapped (a missing or wrong master key, the
    /// catalog that keeps them failing).
    #[error("encryption keys: {problem}")]
    Keys {
        /// What failed, with what to do where that is known.
        problem: String,
    },

    /// The store is encrypted and this store was opened without encryption, or the other way
    /// round: encryption is chosen when a lake is made.
    #[error("{problem}")]
    EncryptionMismatch {
        /// Which way round, and what to do.
        problem: String,
    },

    /// The object store failed (network, permissions, a full disk).
    #[error("blob store: {source}")]
    Backend {
        /// The object store's own error.
        #[source]
        source: object_store::Error,
    },
}

impl Error {
    pub(crate) fn backend(source: object_store::Error) -> Self {
        Error::Backend { source }
    }

    pub(crate) fn from_object(hash: ContentHash, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound { hash },
            source => Error::Backend { source },
        }
    }
}
