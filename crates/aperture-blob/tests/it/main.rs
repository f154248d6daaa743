//! Blob store tests against real stores: local disk, object_store's in-memory store, and S3
//! and Azure servers when `scripts/services.sh` runs them.

mod conformance;
mod encrypted;
mod remote;
