//! Finding things: the search indexes, the query language, and hybrid ranking.
//!
//! Two engines sit behind one [`SearchIndex`]: the embedded one in a folder (the default,
//! [`LocalIndex`]) and one on PostgreSQL that every server shares ([`SharedIndex`]).
//!
//! The indexes are derived data, rebuilt from the catalog at will ([`SearchIndex::rebuild`])
//! and kept current by following the catalog's change feed ([`SearchIndex::update`]):
//!
//! - a full-text index (tantivy, [`fulltext`]) with one document per asset: names and paths,
//!   metadata, labels, OCR lines and document text, analysed per detected language;
//! - one vector index per embedding space ([`vectors`]): text descriptions and passages
//!   (MiniLM), image features (EfficientNet), CLIP image embeddings.
//!
//! A search ([`SearchIndex::search`]) parses the query ([`query`]), asks each index for its
//! best candidates, fuses the lists by reciprocal rank, drops hits whose asset the catalog no
//! longer has, and says for each hit why it matched ([`Reason`]).

pub mod analysis;
pub mod document;
pub mod duplicates;
mod engine;
pub mod fulltext;
mod index;
pub mod query;
mod search;
pub mod shared;
pub mod vectors;

use std::path::{Path, PathBuf};

pub use document::Indexed;
pub use engine::SearchIndex;
pub use index::{LocalIndex, Update};
pub use query::{Query, QueryError, parse};
pub use search::{Hit, QueryEncoder, Reason, SearchOptions};
pub use shared::SharedIndex;

/// Why a search, update or rebuild failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query does not parse; the message points at the problem.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A file of the index could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The full-text engine (tantivy) failed; its error is kept as the source.
    #[error("search index: {source}")]
    FullText {
        /// tantivy's error.
        #[from]
        source: tantivy::TantivyError,
    },
    /// The index itself is damaged or failed (USearch, a bad state file or stored document):
    /// a rebuild from the catalog repairs it.
    #[error("search index: {0}")]
    Index(String),
    /// Reading the catalog failed.
    #[error(transparent)]
    Catalog(#[from] aperture_catalog::Error),
    /// Another process is updating the index (in the folder, or on the server, named).
    #[error("the search index in {0} is being updated by another process")]
    Busy(String),
    /// The engine in use does not do this (grouping every near duplicate needs the embedded
    /// index's vectors in memory).
    #[error("{0}")]
    Unsupported(String),
    /// `similar:` named no asset, or more than one.
    #[error("{0}")]
    NoSuchAsset(String),
    /// `similar:` named an asset that has no vectors to compare.
    #[error("{0}")]
    NoVectors(String),
    /// The [`QueryEncoder`] could not embed the query text.
    #[error("encoding the query for {space}: {message}")]
    Encoder {
        /// The embedding space asked for.
        space: String,
        /// The encoder's error.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Search's result: every operation fails with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
