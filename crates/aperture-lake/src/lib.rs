//! The application layer: what the CLI and the server both do with a lake (a data folder:
//! config, blob store, catalog, search index, models).
//!
//! Open a [`Lake`], then ingest ([`Lake::ingest_options`] with `aperture_ingest`), analyze
//! ([`Lake::worker`]), search ([`Lake::search`]), erase ([`Lake::erase`]) and check
//! ([`Lake::fsck`]). Long-running processes keep the search index current with a
//! [`Follower`] and write the audit log through an [`AuditWriter`] (a group commit, as ingest's
//! catalog writer is: `aperture_ingest::GroupCommit`).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use aperture_lake::Lake;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let made = Lake::init(dir.path(), None, Vec::new(), "cli:doc").await.unwrap();
//! assert!(made.fresh && made.admin_token.is_some());
//! let stats = made.lake.catalog(|c| c.stats()).await.unwrap();
//! assert_eq!(stats.assets, 0);
//! # });
//! ```
//!
//! The catalog traits stay synchronous: SQLite is a library call, and a PostgreSQL backend
//! with a connection pool is as well served by the blocking pool ([`Lake::catalog`]) as by
//! an async driver, without two versions of every trait. Async callers go through
//! [`Lake::catalog`] or [`blocking`].

mod access;
mod audit;
mod audit_key;
pub mod captions;
pub mod config;
mod detail;
pub mod encryption;
mod erase;
mod error;
mod follow;
mod fsck;
mod ingest;
mod lake;
mod retention;
mod search;
mod translation;
pub mod worker;

use std::sync::Arc;

use aperture_catalog::Backend;

pub use access::{ListQuery, Page, View};
pub use audit::{AuditVerdict, AuditWriter, require_tokens_exist};
pub use config::{CatalogLocation, Config, SearchLocation, StorageUrls};
pub use detail::AssetDetail;
pub use erase::Erased;
pub use error::{Error, Result};
pub use follow::Follower;
pub use fsck::{Findings, FsckOptions, FsckReport};
pub use lake::{Initialised, Lake, QUERY_TIMEOUT};
pub use retention::{Swept, parse_retention, show_retention};
pub use search::{
    MAX_QUERY_ROUTES, QUERY_BUDGET, SearchEncoder, duplicate_groups, encoders, open_current,
};
pub use translation::{ON_DEMAND_MAX_BYTES, check_language};
pub use worker::{Worker, WorkerReport};

/// Runs a synchronous catalog call on the blocking pool.
pub async fn blocking<T, E>(
    catalog: &Arc<dyn Backend>,
    f: impl FnOnce(&dyn Backend) -> std::result::Result<T, E> + Send + 'static,
) -> Result<T>
where
    T: Send + 'static,
    E: Into<Error> + Send + 'static,
{
    let catalog = catalog.clone();
    tokio::task::spawn_blocking(move || f(catalog.as_ref()))
        .await?
        .map_err(Into::into)
}
