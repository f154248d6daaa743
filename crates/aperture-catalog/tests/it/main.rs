//! The catalog conformance suite on SQLite, in memory and in a file.

use aperture_catalog::{Catalog, SqliteCatalog};

mod in_memory {
    use super::*;
    aperture_catalog::catalog_conformance!(|| SqliteCatalog::open_in_memory().unwrap());
}

mod on_disk {
    use super::*;
    aperture_catalog::catalog_conformance!(|| {
        // The directory is leaked on purpose: the catalog outlives this closure.
        let dir = tempfile::tempdir().unwrap().keep();
        SqliteCatalog::open(&dir.join("catalog.db")).unwrap()
    });
}

#[test]
fn reopening_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let id = {
        let catalog = SqliteCatalog::open(&path).unwrap();
        catalog.ensure_collection("kept").unwrap().id
    };
    let catalog = SqliteCatalog::open(&path).unwrap();
    assert_eq!(catalog.collection("kept").unwrap().id, id);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    drop(SqliteCatalog::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteCatalog::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_file_that_is_not_a_catalog_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(
        &path,
        b"this is not a database, just text padding it out a bit",
    )
    .unwrap();
    let err = SqliteCatalog::open(&path).unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
}
