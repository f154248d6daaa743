//! Licence plates are not read: 20 plates in five national formats, drawn on the samples'
//! photos of vehicles, read by OCR where a collection reads plates, and neither stored nor
//! searchable anywhere else; and what the same rule takes from documents and signs.

use std::collections::BTreeMap;
use std::path::Path;

use aperture_analyze::ocr::Detector;

use crate::Aperture;
use crate::real_media::{choose_ocr_detector, env_dir, with_models};

/// Letters and digits only, upper case: how plate text is compared.
fn bare(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The OCR lines of every asset of `collection`, by file name.
fn ocr_lines(ap: &Aperture, collection: &str) -> BTreeMap<String, Vec<String>> {
    let listed = ap.json(&["ls", "--collection", collection, "--limit", "1000"]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let detail = ap.json(&["show", a["id"].as_str().unwrap()]);
            let lines = detail["insights"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["kind"] == "ocr_line")
                .map(|i| i["value"]["text"].as_str().unwrap().to_owned())
                .collect();
            (a["name"].as_str().unwrap().to_owned(), lines)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path, pick: impl Fn(&str) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if path.is_file() && pick(&name) {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

#[test]
fn plates_on_vehicles_are_not_read_unless_a_collection_reads_them() {
    plates_are_not_read_with(Detector::Small);
}

/// The same with PP-OCRv6's tiny detector (`[ocr] detector = "tiny"`), which finds lines
/// differently: a plate it cuts in two must not slip through either.
#[test]
fn plates_are_not_read_with_the_tiny_ocr_detector_either() {
    plates_are_not_read_with(Detector::Tiny);
}

fn plates_are_not_read_with(detector: Detector) {
    let ap = with_models();
    choose_ocr_detector(&ap, detector);
    let plates = env_dir("APERTURE_TEST_PLATE_SET");
    let truth: Vec<(String, String, String)> = std::fs::read_to_string(plates.join("truth.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect();
    assert_eq!(truth.len(), 20);
    let cars = ap.inputs().join("cars");
    copy_dir(&plates, &cars, |n| n.ends_with(".jpg"));
    // Signs and pages: the OCR evaluation set's photographed text, and the scanned page.
    let signs = ap.inputs().join("signs");
    copy_dir(
        &env_dir("APERTURE_TEST_OCR_SET").join("photographed"),
        &signs,
        |_| true,
    );
    copy_dir(
        &env_dir("APERTURE_TEST_SAMPLES").join("photos/skimage"),
        &signs,
        |n| n == "page.png" || n == "text.png",
    );
    // The same files in collections that suppress plates (the default) and that read them.
    for (collection, dir) in [("cars", &cars), ("signs", &signs)] {
        ap.ingest(dir, collection);
        let copy = format!("{collection}-read");
        ap.ingest(dir, &copy);
        ap.ok(&["collection", "set", &copy, "--plates", "read"]);
    }
    ap.ok(&["index"]);

    let (suppressing, reading) = (ocr_lines(&ap, "cars"), ocr_lines(&ap, "cars-read"));
    let mut by_country: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (file, country, plate) in &truth {
        let read = |lines: &BTreeMap<String, Vec<String>>| {
            lines[file].iter().any(|l| bare(l).contains(&bare(plate)))
        };
        let row = by_country.entry(country).or_default();
        row.0 += 1;
        if read(&reading) {
            row.1 += 1;
            if read(&suppressing) {
                row.2 += 1;
            }
        }
        // Nor any part of it: no line kept where plates are suppressed holds a group of the
        // plate (of two or more characters) as a word.
        let groups: Vec<String> = plate
            .split([' ', '-'])
            .map(bare)
            .filter(|g| g.len() >= 2)
            .collect();
        let parts: Vec<&String> = suppressing[file]
            .iter()
            .filter(|l| {
                l.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| groups.contains(&bare(w)))
            })
            .collect();
        assert!(
            parts.is_empty(),
            "parts of {plate} kept in {file}: {parts:?}"
        );
        // Not searchable either: no word of the plate matches its photo where plates are
        // suppressed (the meaning of its other words may still rank it, as any photo).
        let hits = ap.json(&["search", &format!("{plate} collection:cars")]);
        let by_words = hits.as_array().unwrap().iter().any(|h| {
            h["asset"]["name"] == file.as_str()
                && h["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["type"] == "words")
        });
        assert!(!by_words, "{plate} is found by its words in {file}: {hits}");
    }
    eprintln!("country  plates  read by OCR (reading)  read where suppressed");
    let (mut total, mut read, mut leaked) = (0, 0, 0);
    for (country, (n, r, l)) in &by_country {
        eprintln!("{country:<8} {n:>6}  {r:>21}  {l:>21}");
        (total, read, leaked) = (total + n, read + r, leaked + l);
    }
    eprintln!("all      {total:>6}  {read:>21}  {leaked:>21}");
    assert_eq!(by_country.len(), 5);
    // Nor any part of one: no line kept where plates are suppressed is shaped like a plate.
    let shaped: Vec<&String> = suppressing
        .values()
        .flatten()
        .filter(|l| aperture_analyze::ocr::plates::plate_family(l).is_some())
        .collect();
    assert!(shaped.is_empty(), "plate-shaped lines kept: {shaped:?}");
    assert_eq!(leaked, 0, "plates were read where they are suppressed");
    assert!(
        read >= 12,
        "OCR read only {read} of 20 plates where allowed: the measure is too weak"
    );

    // Documents and signs: nothing is taken from them (they are not vehicles), though a few
    // of their lines look like plates.
    let (signs_suppressing, signs_reading) =
        (ocr_lines(&ap, "signs"), ocr_lines(&ap, "signs-read"));
    let all_lines: usize = signs_reading.values().map(Vec::len).sum();
    let kept: usize = signs_suppressing.values().map(Vec::len).sum();
    let plate_like = signs_reading
        .values()
        .flatten()
        .filter(|l| aperture_analyze::ocr::plates::plate_family(l).is_some())
        .count();
    eprintln!(
        "signs and pages: {all_lines} lines read, {kept} kept where plates are suppressed, {plate_like} shaped like a plate"
    );
    assert!(all_lines > 50, "{all_lines}");
    assert_eq!(kept, all_lines, "lines of signs and pages were suppressed");
}
