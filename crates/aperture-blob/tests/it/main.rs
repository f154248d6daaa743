//! Blob store tests against real stores: local disk and object_store's in-memory store.

mod conformance;
