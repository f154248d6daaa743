//! Reads every image of an OCR evaluation set (scripts/reference/ocr_eval_set.py) and writes
//! the predictions in the TSV that scripts/reference/ocr_cer.py scores.
//!
//!     cargo run --release -p aperture-analyze --example ocr_eval -- MODELS SET OUT.tsv

use std::io::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, models, set, out] = args.as_slice() else {
        eprintln!("usage: ocr_eval MODELS_DIR SET_DIR OUT.tsv");
        std::process::exit(2);
    };
    let ocr = aperture_analyze::Ocr::new(models.as_ref()).unwrap();
    let truth = std::fs::read_to_string(format!("{set}/truth.tsv")).unwrap();
    let mut out = std::fs::File::create(out).unwrap();
    writeln!(out, "file\ttext").unwrap();
    let (mut n, mut seconds) = (0, 0.0);
    for row in truth.lines().skip(1) {
        let file = row.split('\t').next().unwrap();
        let image = image::open(format!("{set}/{file}")).unwrap();
        let started = Instant::now();
        let (lines, _) = ocr.read(&image).unwrap();
        if n > 0 {
            seconds += started.elapsed().as_secs_f64();
        }
        n += 1;
        let text: Vec<String> = lines.iter().map(|l| l.text.replace('\\', "\\\\")).collect();
        writeln!(out, "{file}\t{}", text.join("\\n")).unwrap();
    }
    eprintln!(
        "{n} images, {:.2} images/s after the first",
        (n - 1) as f64 / seconds
    );
}
