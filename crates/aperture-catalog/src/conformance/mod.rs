//! The behaviour every [`Catalog`] must show. Each backend runs the whole suite with one line:
//!
//! ```ignore
//! aperture_catalog::catalog_conformance!(|| SqliteCatalog::open_in_memory().unwrap());
//! // Only when a server is there to test (the guard says why when it is not):
//! aperture_catalog::catalog_conformance!(if server_ready(); || PgCatalog::open(&url()).unwrap());
//! ```
//!
//! The functions panic on failure, like test assertions: they are meant to be called by tests.

use aperture_core::{
    AnalyzerSpec, AssetId, ContentHash, Gps, Insight, InsightValue, MediaKind, MediaMetadata,
    Place, Rect, UnixMillis, value,
};

use crate::*;

/// Generates one `#[test]` per conformance check; `$make` builds a fresh, empty catalog.
#[macro_export]
macro_rules! catalog_conformance {
    (@tests $ready:expr; $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if !$ready {
                    return;
                }
                let make = $make;
                $crate::conformance::$name(&make);
            }
        )*
    };
    (if $ready:expr; $make:expr) => {
        $crate::catalog_conformance!(@tests $ready; $make;
            collections, record_outcomes, metadata_round_trip, listing_and_paging,
            id_prefixes, deletion_and_races, insights_round_trip, referenced_blobs,
            against_a_model, queue_is_idempotent_and_ordered, queue_results_replace_old_ones,
            queue_retries_then_fails, queue_leases_expire, queue_never_runs_a_job_twice,
            queue_requeues_dependents, queue_renews_leases_and_gives_up_on_abandoned_jobs,
            queue_splits_long_jobs_into_parts, queue_fails_split_jobs_by_their_parts,
            change_feed, tokens_and_grants, audit_chain, audit_forgets_erased_assets, sessions,
            queue_joins_parts_that_finish_at_once, recording_and_deleting_one_blob_at_once,
            retention_and_legal_hold, data_keys_keep_the_first, erasure_destroys_data_keys,
            data_keys_rewrap_compare_and_swap, data_keys_page_through_every_owner,
            unused_blob_keys_are_dropped, data_keys_under_races, queue_counts_per_collection,
            queue_finishes_jobs_in_batches, queue_releases_unrun_jobs);
    };
    ($make:expr) => {
        $crate::catalog_conformance!(if true; $make);
    };
}

fn source(path: &str, size: u64) -> NewSource {
    NewSource {
        path_bytes: path.as_bytes().to_vec(),
        path: path.to_owned(),
        name: path.rsplit('/').next().unwrap_or(path).to_owned(),
        file_size: size,
        modified_ns: Some(1_700_000_000_000_000_000),
    }
}

fn new_asset(collection: CollectionId, content: &[u8], path: &str) -> NewAsset {
    NewAsset {
        collection,
        hash: ContentHash::of(content),
        size: content.len() as u64,
        kind: MediaKind::Other,
        mime: "application/octet-stream".into(),
        metadata: MediaMetadata::default(),
        source: source(path, content.len() as u64),
        generation_seen: 0,
        jobs: Vec::new(),
    }
}

fn record_one(catalog: &dyn Catalog, item: &NewAsset) -> Recorded {
    let out = catalog.record(std::slice::from_ref(item)).unwrap();
    assert_eq!(out.len(), 1);
    out[0]
}

fn id_of(recorded: Recorded) -> AssetId {
    match recorded {
        Recorded::Created(id) | Recorded::Duplicate(id) | Recorded::Known(id) => id,
        Recorded::BlobRaced => panic!("unexpected BlobRaced"),
    }
}

/// A spec of an analyzer that reads nothing.
fn spec(name: &'static str, kinds: &'static [MediaKind], priority: i32) -> AnalyzerSpec {
    AnalyzerSpec {
        name,
        version: "1",
        kinds,
        priority,
        reads: &[],
        produces: &[],
    }
}

/// A label value.
fn label(name: &str) -> InsightValue {
    value::Label {
        name: name.into(),
        class: 22,
        rank: 1,
        taxonomy: "imagenet-1k".into(),
    }
    .into()
}

fn insight(asset: AssetId, place: Place) -> Insight {
    Insight {
        asset,
        analyzer: "labels".into(),
        analyzer_version: "1".into(),
        model: Some("efficientnet-lite0".into()),
        model_version: Some("57934424".into()),
        value: label("bald eagle"),
        confidence: Some(0.93),
        language: Some("en".into()),
        place,
        created_at: UnixMillis(1_700_000_000_000),
    }
}

mod access;
mod assets;
mod keys;
mod queue;
mod server;

pub use access::*;
pub use assets::*;
pub use keys::*;
pub use queue::*;
pub use server::{PgServer, fresh_database, shared_server};
