/// The catalog's result: every operation fails with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a catalog operation failed. Callers act on the variant; the message names the object.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such row.
    #[error("{what} {key} not found")]
    NotFound {
        /// What was looked up: `asset`, `collection`, `token`, ...
        what: &'static str,
        /// The name or id it was looked up by.
        key: String,
    },

    /// A short asset id matches more than one asset. The catalog never returns it itself;
    /// it is here so that callers resolving short ids report it like any catalog error.
    #[error("asset id prefix {prefix:?} matches {count} assets; give more digits")]
    Ambiguous {
        /// The prefix as typed.
        prefix: String,
        /// How many assets it matches (at least two).
        count: usize,
    },

    /// The asset's collection is under legal hold: nothing in it may be erased.
    #[error(
        "collection {collection} is under legal hold: nothing in it is erased until an admin lifts the hold (aperture collection set {collection} --legal-hold off)"
    )]
    LegalHold {
        /// The collection.
        collection: String,
    },

    /// The request cannot be carried out as given; nothing was written.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },

    /// The catalog was migrated by a newer build; this one refuses to open it rather than
    /// misread it.
    #[error(
        "catalog schema version {found} is newer than this build knows ({known}); upgrade aperture"
    )]
    SchemaTooNew {
        /// The newest migration the catalog records.
        found: i64,
        /// The newest migration this build has.
        known: i64,
    },

    /// A stored row does not decode (a bad id, hash, kind or state): the database was changed
    /// outside Aperture or damaged.
    #[error("catalog row is corrupt: {reason}")]
    Corrupt {
        /// What does not decode, and why.
        reason: String,
    },

    /// A write whose commit may or may not have happened: its answer was lost with the
    /// connection, and the server could not tell (see `Postgres::tx`). A caller that writes
    /// again must expect to find it written.
    #[error("catalog ({backend}): the commit's outcome is unknown: {source}")]
    OutcomeUnknown {
        /// Which backend: `postgres`.
        backend: &'static str,
        /// Why it could not be told.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database itself failed (IO, locking, a constraint).
    #[error("catalog ({backend}): {source}")]
    Backend {
        /// Which backend: `sqlite`, ...
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether this is [`Error::OutcomeUnknown`].
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }
}

impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Self {
        Error::Backend {
            backend: "sqlite",
            source: Box::new(source),
        }
    }
}
