//! The application layer's errors: what went wrong, naming the object, with the cause kept.

use std::path::PathBuf;

/// What can go wrong opening a lake or running one of its operations.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file or a setting in it is wrong.
    #[error("{message}")]
    Config {
        /// What is wrong, naming the file or setting.
        message: String,
        /// The parser's error, when there was one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The data folder was never initialised.
    #[error("no Aperture data folder at {}; create one with `aperture --data {} init`", .dir.display(), .dir.display())]
    NotInitialised {
        /// The folder asked for.
        dir: PathBuf,
    },
    /// A file or folder of the lake could not be read or written.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// What was being done: `create`, `read`, ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No asset has this id, or the caller may not see it.
    #[error("no asset with id {id}")]
    NoSuchAsset {
        /// The id or prefix asked for.
        id: String,
    },
    /// The caller may not do this (a collection it has no grant for, named explicitly).
    #[error("{message}")]
    Forbidden {
        /// What was refused and why.
        message: String,
    },
    /// A server would have nobody to serve: every token is revoked.
    #[error(
        "no active token: nobody could use this server; create one with \
         `aperture token create --name NAME --scopes admin`"
    )]
    NoActiveToken,
    /// The audit log could not be written, so what was to be logged must not happen.
    #[error("cannot write the audit log: {reason}")]
    Audit {
        /// Why.
        reason: String,
    },
    /// A value given by the caller is not valid.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was given.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A translation engine failed or took too long (not the caller's input), or another
    /// on-demand translation is running.
    #[error("{message}")]
    Translation {
        /// What failed, naming the asset, the languages and the engine.
        message: String,
        /// Whether it was refused because another one was running (try again shortly).
        busy: bool,
    },
    /// The catalog.
    #[error(transparent)]
    Catalog(#[from] aperture_catalog::Error),
    /// The blob store.
    #[error(transparent)]
    Blob(#[from] aperture_blob::Error),
    /// The search index or a query.
    #[error(transparent)]
    Search(#[from] aperture_search::Error),
    /// An ingest as a whole (single files fail in its report instead).
    #[error(transparent)]
    Ingest(#[from] aperture_ingest::Error),
    /// An analyzer run on demand (an example image for `similar`).
    #[error("{analyzer}: {}: {source}", .path.display())]
    Analyze {
        /// The analyzer.
        analyzer: &'static str,
        /// The file it was given.
        path: PathBuf,
        /// What it said.
        #[source]
        source: aperture_analyze::Error,
    },
    /// A model the operation needs.
    #[error(transparent)]
    Models(#[from] aperture_models::Error),
    /// A blocking task panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
            source: None,
        }
    }

    /// True when the error says the asset does not exist (or is not visible).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::NoSuchAsset { .. }
                | Error::Catalog(aperture_catalog::Error::NotFound { .. })
                | Error::Search(aperture_search::Error::NoSuchAsset(_))
        )
    }
}

/// The result of the application layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
