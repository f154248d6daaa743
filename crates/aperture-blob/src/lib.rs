//! Content-addressed blob storage: every blob is named by the BLAKE3 hash of its bytes.
//!
//! Blobs live in any [`object_store::ObjectStore`]: local disk by default, S3 or Azure Blob at
//! scale. Writing is two steps, so that a catalog can pin the hash in between:
//! [`BlobStore::stage_file`] streams a file in, hashing as it goes, and
//! [`BlobStore::publish`] puts it under its final name. Reads are verified: a blob whose bytes
//! no longer match its name is reported as [`Error::Corrupt`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> aperture_blob::Result<()> {
//! use aperture_blob::BlobStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = BlobStore::open_url(&format!("file://{}", dir.path().display()), [])?;
//! store.init().await?;
//! std::fs::write(dir.path().join("hello.txt"), b"hello").unwrap();
//!
//! let staged = store.stage_file(&dir.path().join("hello.txt")).await?;
//! let hash = staged.hash();
//! store.publish(staged).await?;
//! assert_eq!(store.read_all(hash).await?.as_ref(), b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! **Layout** (version 1): `blobs/<first 3 hex digits>/<64 hex digits>`, staged uploads under
//! `staging/`, derived objects (thumbnails) under `derived/<asset id>/<name>`, and a marker
//! object `aperture-blobs.json` naming the layout version. An encrypted store
//! ([`BlobStore::with_encryption`]) names blobs by a keyed hash of their content hash and
//! seals every object with its own data key; see [`Encryption`].

mod crypt;
mod derived;
mod error;
mod local;
mod read;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod write;

pub use crypt::{DataKeys, Encryption, KeyRing, SecretKey};
pub use error::{Error, Result};
pub use read::VerifiedStream;
pub use store::{BlobEntry, BlobStore, LAYOUT_VERSION, StagingEntry, SyncPhase};
pub use write::Staged;

/// Runs blocking file work on Tokio's blocking pool; a panic there is the caller's panic.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
