//! Integration tests of the search index: the embedded and the shared one against real
//! catalogs (`index`), and the query parser under fuzzing (`fuzz`).

mod fuzz;
mod index;
