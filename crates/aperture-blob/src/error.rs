use std::path::PathBuf;

use aperture_core::ContentHash;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob {hash} not found")]
    NotFound { hash: ContentHash },

    /// The stored bytes no longer hash to the blob's name (bit rot, tampering, truncation).
    #[error("blob {hash} is corrupt: {reason}")]
    Corrupt { hash: ContentHash, reason: String },

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("derived object {name:?} of asset {asset} not found")]
    DerivedNotFound {
        asset: aperture_core::AssetId,
        name: String,
    },

    #[error("invalid derived object name {name:?}: use letters, digits, '.', '-' and '_'")]
    InvalidName { name: String },

    #[error("invalid blob store url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("blob store url {url:?} needs the `{feature}` feature; this build was made without it")]
    FeatureDisabled { url: String, feature: &'static str },

    #[error("blob store uses layout {found:?}; this build reads layout {expected}")]
    UnsupportedLayout { found: String, expected: u32 },

    #[error("blob store: {source}")]
    Backend {
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
