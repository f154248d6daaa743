//! Embeds texts with a sentence-transformer folder and prints their cosine similarities.
//!
//! ```sh
//! cargo run --release -p aperture-analyze --example embed -- MODEL_DIR "a text" "another"
//! ```

use aperture_analyze::embed::{TextEmbedder, cosine};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: embed MODEL_DIR TEXT...")?;
    let texts: Vec<String> = args.collect();
    let embedder = TextEmbedder::load(std::path::Path::new(&dir))?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs)?;
    for (i, a) in vectors.iter().enumerate() {
        for (j, b) in vectors.iter().enumerate().skip(i + 1) {
            println!("{:.3}  {:?} ~ {:?}", cosine(a, b), texts[i], texts[j]);
        }
    }
    Ok(())
}
