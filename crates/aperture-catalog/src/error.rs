pub type Result<T, E = Error> = std::result::Result<T, E>;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {key} not found")]
    NotFound { what: &'static str, key: String },

    #[error("asset id prefix {prefix:?} matches {count} assets; give more digits")]
    Ambiguous { prefix: String, count: usize },

    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },

    #[error(
        "catalog schema version {found} is newer than this build knows ({known}); upgrade aperture"
    )]
    SchemaTooNew { found: i64, known: i64 },

    #[error("catalog row is corrupt: {reason}")]
    Corrupt { reason: String },

    #[error("catalog ({backend}): {source}")]
    Backend {
        backend: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Self {
        Error::Backend {
            backend: "sqlite",
            source: Box::new(source),
        }
    }
}
