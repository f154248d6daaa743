//! Tesseract 5 (the Debian `tesseract-ocr` packages) as a second OCR engine, run as a
//! subprocess: `tesseract stdin stdout -l LANGS tsv`, the image piped in as PNG. Its TSV
//! gives words with boxes and confidences, grouped here into lines.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use image::DynamicImage;

use super::Line;
use crate::Error;

/// Where Debian puts the language data.
pub const DEFAULT_TESSDATA: &str = "/usr/share/tesseract-ocr/5/tessdata";
/// A page that takes longer than this is given up (a hostile or absurd image).
const TIMEOUT: Duration = Duration::from_secs(120);
/// Scripts PP-OCRv6 reads better and faster: not worth Tesseract's time as a fallback.
const LEFT_TO_PPOCR: &[&str] = &["osd", "equ", "chi_sim", "chi_tra", "jpn", "jpn_vert"];

/// The `tesseract` program with the languages it reads.
pub struct Tesseract {
    program: PathBuf,
    /// `eng+spa+rus`
    languages: String,
}

impl Tesseract {
    /// The `tesseract` program on PATH with the languages installed in `tessdata` (those
    /// PP-OCRv6 covers better left out); `None` when either is missing.
    pub fn find(tessdata: &Path) -> Option<Self> {
        let program = which("tesseract")?;
        let mut languages: Vec<String> = std::fs::read_dir(tessdata)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let lang = name.strip_suffix(".traineddata")?.to_owned();
                (!LEFT_TO_PPOCR.contains(&lang.as_str())).then_some(lang)
            })
            .collect();
        // English first: Tesseract leans on its first language.
        languages.sort_by_key(|l| (l != "eng", l.clone()));
        (!languages.is_empty()).then(|| Self {
            program,
            languages: languages.join("+"),
        })
    }

    /// The languages passed to `-l`, English first (`eng+spa+rus`).
    pub fn languages(&self) -> &str {
        &self.languages
    }

    /// The lines of an image, in Tesseract's reading order.
    pub fn read(&self, image: &DynamicImage) -> Result<Vec<Line>, Error> {
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Error::Transient {
                reason: format!("cannot hand the image to tesseract: {e}"),
            })?;
        let tsv = self.run(&png)?;
        Ok(parse_tsv(&tsv))
    }

    fn run(&self, png: &[u8]) -> Result<String, Error> {
        let failed = |what: String| Error::Transient {
            reason: format!("tesseract: {what}"),
        };
        let mut child = Command::new(&self.program)
            .args([
                "stdin",
                "stdout",
                "-l",
                &self.languages,
                "--psm",
                "3",
                "tsv",
            ])
            // One thread: two single-threaded runs beat one with two threads (measured).
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot run {}: {e}", self.program.display())))?;
        let stderr = super::drain_stderr(&mut child);
        let mut stdin = child.stdin.take().expect("piped");
        let png = png.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&png));
        let mut stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).map(|_| out)
        });
        let status = match super::wait_at_most(&mut child, TIMEOUT) {
            Ok(Some(status)) => status,
            Ok(None) => return Err(failed(format!("gave up after {} s", TIMEOUT.as_secs()))),
            Err(e) => return Err(failed(e.to_string())),
        };
        let _ = writer.join();
        let out = reader
            .join()
            .map_err(|_| failed("reader thread panicked".into()))?
            .map_err(|e| failed(e.to_string()))?;
        let err = stderr.join().unwrap_or_default();
        if !status.success() {
            return Err(failed(format!("{status}: {}", err.trim())));
        }
        Ok(out)
    }
}

/// Lines from Tesseract's TSV: words (level 5) grouped by block, paragraph and line, the
/// line's box from its words, its confidence the mean of theirs.
/// A word: text, confidence, box (x0, y0, x1, y1).
type Word = (String, f32, [f32; 4]);

fn parse_tsv(tsv: &str) -> Vec<Line> {
    // (block, paragraph, line) and its words.
    let mut lines: Vec<((u32, u32, u32), Vec<Word>)> = Vec::new();
    for row in tsv.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        if f.len() < 12 || f[0] != "5" {
            continue;
        }
        let num = |i: usize| f[i].trim().parse::<f32>().unwrap_or(0.0);
        let text = f[11].trim();
        if text.is_empty() {
            continue;
        }
        let key = (num(2) as u32, num(3) as u32, num(4) as u32);
        let word = (
            text.to_owned(),
            (num(10) / 100.0).clamp(0.0, 1.0),
            [num(6), num(7), num(6) + num(8), num(7) + num(9)],
        );
        match lines.last_mut() {
            Some((k, words)) if *k == key => words.push(word),
            _ => lines.push((key, vec![word])),
        }
    }
    lines
        .into_iter()
        .map(|(_, words)| {
            let text = words
                .iter()
                .map(|w| w.0.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let confidence = words.iter().map(|w| w.1).sum::<f32>() / words.len() as f32;
            let (x0, y0, x1, y1) = words.iter().fold(
                (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
                |(a, b, c, d), w| (a.min(w.2[0]), b.min(w.2[1]), c.max(w.2[2]), d.max(w.2[3])),
            );
            Line {
                text,
                confidence,
                quad: [(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
            }
        })
        .collect()
}

pub(super) fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_group_into_lines() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t100\t50\t-1\t\n\
            4\t1\t1\t1\t1\t0\t10\t10\t80\t12\t-1\t\n\
            5\t1\t1\t1\t1\t1\t10\t10\t30\t12\t96.5\tHello\n\
            5\t1\t1\t1\t1\t2\t45\t11\t45\t11\t90.5\tworld\n\
            5\t1\t1\t1\t2\t1\t10\t30\t20\t10\t80\tagain\n\
            5\t1\t1\t1\t2\t2\t40\t30\t20\t10\t70\t \n";
        let lines = parse_tsv(tsv);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "Hello world");
        assert!((lines[0].confidence - 0.935).abs() < 1e-4);
        assert_eq!(lines[0].quad[0], (10.0, 10.0));
        assert_eq!(lines[0].quad[2], (90.0, 22.0));
        assert_eq!(lines[1].text, "again");
    }
}
