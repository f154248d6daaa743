//! Integration tests of the search index: the embedded and the shared one against real
//! catalogs (`index`), the query parser under fuzzing (`fuzz`), and the vendored USearch's patch
//! in the machine code (`usearch_patch`).

mod fuzz;
mod index;
mod usearch_patch;
