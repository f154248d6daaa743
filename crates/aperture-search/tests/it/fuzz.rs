//! Fuzzing the query parser on the stable toolchain, with a corpus kept in the repository:
//! every query in `fuzz/corpus/query/` (seeds, and each query that ever broke the parser)
//! parses or is refused with a message, as it is and then mutated by proptest (characters
//! replaced, dropped, repeated, quotes and operators spliced in). `APERTURE_FUZZ_CASES` sets
//! the mutations (default 200).

use std::path::Path;

use proptest::prelude::*;

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/query");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

/// Parses, or is refused with a message; never panics.
fn parses_or_says_why(text: &str) {
    match aperture_search::parse(text) {
        Ok(query) => {
            let _ = query.ranks();
        }
        Err(e) => assert!(!e.to_string().is_empty(), "{text:?}: an empty error"),
    }
}

#[test]
fn the_query_corpus_parses_or_says_why() {
    for query in corpus() {
        parses_or_says_why(&query);
    }
}

#[test]
fn mutated_queries_parse_or_say_why() {
    let seeds = corpus();
    let cases = std::env::var("APERTURE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let pieces = prop_oneof![
        Just("\"".to_owned()),
        Just(":".to_owned()),
        Just("-".to_owned()),
        Just(" OR ".to_owned()),
        Just("similar:".to_owned()),
        Just("after:".to_owned()),
        Just("kind:".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{202e}".to_owned()),
        "\\PC{0,8}",
    ];
    proptest!(config, |(
        seed in 0..seeds.len(),
        edits in proptest::collection::vec((any::<usize>(), 0u8..3, pieces), 1..8),
    )| {
        let mut chars: Vec<char> = seeds[seed].chars().collect();
        for (at, how, piece) in &edits {
            let at = at % (chars.len() + 1);
            match how {
                0 => { chars.splice(at..at, piece.chars()); }
                1 if at < chars.len() => { chars.remove(at); }
                _ => {
                    let repeated: Vec<char> = chars[at..].iter().take(6).copied().collect();
                    for _ in 0..50 { chars.splice(at..at, repeated.iter().copied()); }
                }
            }
        }
        parses_or_says_why(&chars.into_iter().collect::<String>());
    });
}
