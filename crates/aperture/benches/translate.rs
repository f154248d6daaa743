//! Translation and search across languages. Prints tables:
//!
//! 1. **Language identification on short strings** (the first five words of every segment):
//!    whatlang on its own, `detect` (what the text analyzer used before: nothing under 20
//!    letters) and `detect_short` (script rules, then lingua for Latin letters), per language.
//! 2. **Quality** per pair into English (and English into Spanish): chrF and BLEU of our
//!    translate wrapper and of the `apertium` command on the same segments, chains through
//!    Spanish included, and how many segments of a sample the two translate identically when
//!    the command gets each segment alone (the wrapper must match it exactly).
//! 3. **Speed**: words per second of the wrapper (one persistent pipeline, every segment in
//!    one call, as the analyzer sends an asset's texts; and one segment a call) and of the
//!    `apertium` command given all the segments at once (one process, its start included, as a
//!    user would run it).
//! 4. **Search across languages**: recall@10 of English queries whose answers exist only in
//!    other languages: the segments as text documents, the Spanish photographed signs of the
//!    OCR set, Catalan sentences written here, and spoken prompts (Whisper base). Two query
//!    forms: the English sentence, and three of its longest words.
//!
//! ```sh
//! scripts/setup.sh                                     # Apertium and its pairs
//! scripts/bench/fetch-translate-set.sh target/translate-bench
//! scripts/bench/fetch-speech-set.sh                    # spoken prompts (optional)
//! cargo bench -p aperture --bench translate
//! ```
//!
//! `BENCH_TRANSLATE_SET` (default `target/translate-bench`), `APERTURE_TEST_MODELS` (default
//! `target/test-models/models`: MiniLM, PP-OCR, Whisper base), `APERTURE_TEST_OCR_SET`
//! (default `target/test-ocr-set`), `BENCH_SPEECH_SET` (default `target/speech-bench`),
//! `BENCH_SPOKEN` (spoken prompts per language, default 10; 0 skips them), `BENCH_EXACT`
//! (segments per pair run through the command one by one, default 20).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aperture_analyze::translate::apertium::{Apertium, MODES_DIR};
use aperture_analyze::translate::{Pair, Translators};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| root().join(default), PathBuf::from)
}

/// One segment of the parallel text: the same id in every language is the same content.
#[derive(Debug, Clone)]
struct Segment {
    set: &'static str,
    id: String,
    lang: String,
    text: String,
}

fn read_set(folder: &Path, file: &str, set: &'static str) -> Vec<Segment> {
    let path = folder.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/bench/fetch-translate-set.sh {})",
            path.display(),
            folder.display()
        )
    });
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some(Segment {
                set,
                id: f.next()?.to_owned(),
                lang: f.next()?.to_owned(),
                text: f.next()?.replace("\\n", " ").trim().to_owned(),
            })
        })
        .filter(|s| !s.text.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scores
// ---------------------------------------------------------------------------------------------

/// Character n-grams of `text` without whitespace, counted.
fn char_ngrams(text: &str, n: usize) -> HashMap<String, usize> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = HashMap::new();
    for w in chars.windows(n) {
        *out.entry(w.iter().collect()).or_insert(0) += 1;
    }
    out
}

/// Matches, hypothesis n-grams and reference n-grams of one order.
fn overlap<K: std::hash::Hash + Eq>(h: &HashMap<K, usize>, r: &HashMap<K, usize>) -> [f64; 3] {
    let matched: usize = h
        .iter()
        .map(|(k, c)| (*c).min(*r.get(k).unwrap_or(&0)))
        .sum();
    [
        matched as f64,
        h.values().sum::<usize>() as f64,
        r.values().sum::<usize>() as f64,
    ]
}

/// Corpus chrF (character 1- to 6-grams, β = 2, as sacreBLEU's default), 0–100.
fn chrf(hyps: &[String], refs: &[&str]) -> f64 {
    let mut totals = [[0.0; 3]; 6];
    for (h, r) in hyps.iter().zip(refs) {
        for (n, total) in totals.iter_mut().enumerate() {
            let o = overlap(&char_ngrams(h, n + 1), &char_ngrams(r, n + 1));
            for i in 0..3 {
                total[i] += o[i];
            }
        }
    }
    let (mut p, mut r) = (0.0, 0.0);
    for [m, hn, rn] in totals {
        p += if hn > 0.0 { m / hn } else { 0.0 };
        r += if rn > 0.0 { m / rn } else { 0.0 };
    }
    let (p, r) = (p / 6.0, r / 6.0);
    let beta2 = 4.0;
    if p + r == 0.0 {
        0.0
    } else {
        100.0 * (1.0 + beta2) * p * r / (beta2 * p + r)
    }
}

/// Words and punctuation marks, lower case.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Corpus BLEU-4 with the brevity penalty, on lower-cased words and punctuation, 0–100.
fn bleu(hyps: &[String], refs: &[&str]) -> f64 {
    let mut totals = [[0.0; 3]; 4];
    let (mut hyp_len, mut ref_len) = (0.0, 0.0);
    for (h, r) in hyps.iter().zip(refs) {
        let (h, r) = (tokens(h), tokens(r));
        hyp_len += h.len() as f64;
        ref_len += r.len() as f64;
        for (n, total) in totals.iter_mut().enumerate() {
            let grams = |t: &[String]| {
                let mut m: HashMap<Vec<String>, usize> = HashMap::new();
                for w in t.windows(n + 1) {
                    *m.entry(w.to_vec()).or_insert(0) += 1;
                }
                m
            };
            let o = overlap(&grams(&h), &grams(&r));
            total[0] += o[0];
            total[1] += o[1];
        }
    }
    if totals.iter().any(|t| t[0] == 0.0) {
        return 0.0;
    }
    let log_p: f64 = totals.iter().map(|t| (t[0] / t[1]).ln()).sum::<f64>() / 4.0;
    let bp = if hyp_len < ref_len {
        (1.0 - ref_len / hyp_len).exp()
    } else {
        1.0
    };
    100.0 * bp * log_p.exp()
}

// ---------------------------------------------------------------------------------------------
// The apertium command
// ---------------------------------------------------------------------------------------------

/// What `apertium -u MODE` prints for `lines` given at once, one output line per input line,
/// and the seconds it took (its start included).
fn cli(mode: &str, lines: &[&str]) -> (Vec<String>, f64) {
    let started = Instant::now();
    let mut child = Command::new("apertium")
        .args(["-u", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("apertium runs (scripts/setup.sh installs it)");
    let input = lines.join("\n") + "\n";
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("apertium output");
    writer.join().expect("writer").expect("write");
    let secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
    assert_eq!(
        got.len(),
        lines.len(),
        "apertium {mode}: one line out per line in"
    );
    (got, secs)
}

/// A route's modes, run one after another by the command.
fn cli_route(modes: &[String], lines: &[&str]) -> (Vec<String>, f64) {
    let mut current: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let mut secs = 0.0;
    for mode in modes {
        let refs: Vec<&str> = current.iter().map(String::as_str).collect();
        let (next, s) = cli(mode, &refs);
        current = next;
        secs += s;
    }
    (current, secs)
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() {
    let set_dir = dir("BENCH_TRANSLATE_SET", "target/translate-bench");
    let mut segments = read_set(&set_dir, "refcard.tsv", "refcard");
    segments.extend(read_set(&set_dir, "prompts.tsv", "prompts"));
    let languages: BTreeSet<&str> = segments.iter().map(|s| s.lang.as_str()).collect();
    println!(
        "{} segments in {} languages ({}) from {}",
        segments.len(),
        languages.len(),
        languages.iter().copied().collect::<Vec<_>>().join(", "),
        set_dir.display()
    );
    language_identification(&segments);
    let pairs: Vec<std::sync::Arc<dyn Pair>> =
        Apertium::discover(Path::new(MODES_DIR), Duration::from_secs(120))
            .into_iter()
            .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn Pair>)
            .collect();
    let translators = Translators::new(pairs);
    quality_and_speed(&segments, &translators);
    recall(&segments);
}

/// The first `n` words of `text`.
fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn language_identification(segments: &[Segment]) {
    println!("\n## Language identification on short strings (the first 5 words of each segment)\n");
    println!("| language | strings | whatlang alone | detect (before) | detect_short (after) |");
    println!("|---|---|---|---|---|");
    let mut by_lang: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for s in segments {
        let short = first_words(&s.text, 5);
        if short.chars().filter(|c| c.is_alphabetic()).count() < 4 {
            continue;
        }
        let row = by_lang.entry(&s.lang).or_default();
        row[0] += 1;
        let whatlang = whatlang::detect(&short)
            .map(|i| i.lang().code().to_owned())
            .unwrap_or_default();
        // whatlang names languages by ISO 639-3; compare through the two-letter code.
        if iso3_matches(&whatlang, &s.lang) {
            row[1] += 1;
        }
        if aperture_analyze::detect_language(&short).is_some_and(|(c, _)| c == s.lang) {
            row[2] += 1;
        }
        if aperture_analyze::detect_short_language(&short).as_deref() == Some(s.lang.as_str()) {
            row[3] += 1;
        }
    }
    let pct = |n: usize, d: usize| 100.0 * n as f64 / d.max(1) as f64;
    let mut total = [0usize; 4];
    for (lang, row) in &by_lang {
        for i in 0..4 {
            total[i] += row[i];
        }
        println!(
            "| {lang} | {} | {:.0} % | {:.0} % | {:.0} % |",
            row[0],
            pct(row[1], row[0]),
            pct(row[2], row[0]),
            pct(row[3], row[0])
        );
    }
    println!(
        "| all | {} | {:.0} % | {:.0} % | {:.0} % |",
        total[0],
        pct(total[1], total[0]),
        pct(total[2], total[0]),
        pct(total[3], total[0])
    );
}

/// Whether whatlang's three-letter code is the two-letter `lang`.
fn iso3_matches(code: &str, lang: &str) -> bool {
    matches!(
        (code, lang),
        ("eng", "en")
            | ("spa", "es")
            | ("fra", "fr")
            | ("ita", "it")
            | ("por", "pt")
            | ("cat", "ca")
            | ("deu", "de")
            | ("rus", "ru")
            | ("ron", "ro")
            | ("nld", "nl")
    )
}

fn quality_and_speed(segments: &[Segment], translators: &Translators) {
    let exact_n = env_usize("BENCH_EXACT", 20);
    let english: HashMap<(&str, &str), &str> = segments
        .iter()
        .filter(|s| s.lang == "en")
        .map(|s| ((s.set, s.id.as_str()), s.text.as_str()))
        .collect();
    let spanish: HashMap<(&str, &str), &str> = segments
        .iter()
        .filter(|s| s.lang == "es")
        .map(|s| ((s.set, s.id.as_str()), s.text.as_str()))
        .collect();
    let sources: BTreeSet<&str> = segments
        .iter()
        .map(|s| s.lang.as_str())
        .filter(|l| *l != "en")
        .collect();
    println!("\n## Quality and speed, per pair (ours: the wrapper; peer: the apertium command)\n");
    println!(
        "| pair | route | segments | chrF ours | chrF peer | BLEU ours | BLEU peer | identical (alone) | words/s ours | ours, one at a time | words/s peer | ratio | peer's start | ratio, start excluded |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut directions: Vec<(&str, &str)> = sources.iter().map(|s| (*s, "en")).collect();
    directions.push(("en", "es"));
    for (from, to) in directions {
        let Some(route) = translators.route(from, to) else {
            println!("| {from}→{to} | none installed | | | | | | | | | | | | |");
            continue;
        };
        let reference = if to == "en" { &english } else { &spanish };
        let pairs: Vec<(&str, &str)> = segments
            .iter()
            .filter(|s| s.lang == from)
            .filter_map(|s| Some((s.text.as_str(), *reference.get(&(s.set, s.id.as_str()))?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let texts: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        let refs: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
        // Ours: the pipeline started (as a worker keeps it), then every segment in one call
        // (as the analyzer sends an asset's texts of one language), and one at a time.
        route.translate(&["Hola"]).ok();
        let started = Instant::now();
        let ours = route.translate(&texts).expect("translate");
        let ours_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for t in &texts {
            route.translate(&[t]).expect("translate");
        }
        let single_s = started.elapsed().as_secs_f64();
        let modes: Vec<String> = route
            .steps()
            .iter()
            .map(|p| p.model().rsplit(' ').next().unwrap_or_default().to_owned())
            .collect();
        let (peer, peer_s) = cli_route(&modes, &texts);
        // The command's start, on one word: what a stream of text would not pay again.
        let (_, start_s) = cli_route(&modes, &["casa"]);
        // Exactness: the command given each segment alone, as the wrapper gets it.
        let sample = exact_n.min(texts.len());
        let identical = (0..sample)
            .filter(|&i| cli_route(&modes, &texts[i..=i]).0[0] == ours[i])
            .count();
        let (ours_wps, peer_wps) = (words as f64 / ours_s, words as f64 / peer_s);
        println!(
            "| {from}→{to} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {identical}/{sample} | {:.0} | {:.0} | {:.0} | {:.2}× | {:.2} s | {:.2}× |",
            modes.join(" + "),
            texts.len(),
            chrf(&ours, &refs),
            chrf(&peer, &refs),
            bleu(&ours, &refs),
            bleu(&peer, &refs),
            ours_wps,
            words as f64 / single_s,
            peer_wps,
            ours_wps / peer_wps,
            start_s,
            ours_wps / (words as f64 / (peer_s - start_s).max(1e-3))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Search across languages
// ---------------------------------------------------------------------------------------------

/// Catalan sentences with English questions a reader would ask of them.
const CATALAN: &[(&str, &str)] = &[
    (
        "La biblioteca municipal tancarà durant el mes d'agost per obres.",
        "library closed August",
    ),
    (
        "Els veïns demanen més arbres i bancs a la plaça del mercat.",
        "neighbours trees market square",
    ),
    (
        "El tren de rodalies va arribar amb quaranta minuts de retard.",
        "train delay minutes",
    ),
    (
        "L'hospital necessita donants de sang de tots els grups.",
        "hospital blood donors",
    ),
    (
        "La policia va tallar el carrer per una fuita de gas.",
        "police street gas leak",
    ),
    (
        "Els pescadors van tornar al port abans de la tempesta.",
        "fishermen port storm",
    ),
];

/// English questions of the Spanish photographed signs of the OCR set (by file).
const SIGNS: &[(&str, &str)] = &[
    ("photographed/es_00.jpg", "nearest bus station"),
    ("photographed/es_01.jpg", "zoo penguin"),
    ("photographed/es_02.jpg", "lemons euros"),
    ("photographed/es_03.jpg", "high speed train"),
    ("photographed/es_04.jpg", "scarf gloves cold"),
];

/// One question and the file that answers it.
struct Question {
    group: String,
    query: String,
    answer: String,
}

fn aperture(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aperture"));
    cmd.arg("--data").arg(data);
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("aperture runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The longest three words of a sentence, as a person types a few key words.
fn keywords(text: &str) -> String {
    let mut words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| w.len() > 3)
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.truncate(3);
    words.join(" ")
}

fn recall(segments: &[Segment]) {
    let models = dir("APERTURE_TEST_MODELS", "target/test-models/models");
    let ocr_set = dir("APERTURE_TEST_OCR_SET", "target/test-ocr-set");
    let speech_set = dir("BENCH_SPEECH_SET", "target/speech-bench");
    let spoken = env_usize("BENCH_SPOKEN", 10);
    let work = tempfile::tempdir().expect("temp");
    let data = work.path().join("data");
    let inputs = work.path().join("in");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(
        data.join("aperture.toml"),
        format!("[models]\ndir = \"{}\"\n", models.display()),
    )
    .unwrap();
    run(aperture(&data).arg("init"));

    let mut questions: Vec<Question> = Vec::new();
    let english: HashMap<(&str, &str), &str> = segments
        .iter()
        .filter(|s| s.lang == "en")
        .map(|s| ((s.set, s.id.as_str()), s.text.as_str()))
        .collect();
    // The segments in other languages, as documents; the English segment is the question.
    // The English segments too, in a collection of their own: the same questions over the
    // same kind of text without translation, the ceiling the others are read against.
    let originals = work.path().join("en");
    std::fs::create_dir_all(&originals).unwrap();
    for s in segments.iter().filter(|s| s.lang == "en") {
        let name = format!("{}-{}-en.txt", s.set, s.id.replace(['/', ' '], "_"));
        std::fs::write(originals.join(&name), &s.text).unwrap();
        questions.push(Question {
            group: format!("{} en (no translation)", s.set),
            query: s.text.clone(),
            answer: name,
        });
    }
    for s in segments.iter().filter(|s| s.lang != "en") {
        let Some(question) = english.get(&(s.set, s.id.as_str())) else {
            continue;
        };
        let name = format!("{}-{}-{}.txt", s.set, s.id.replace(['/', ' '], "_"), s.lang);
        std::fs::write(inputs.join(&name), &s.text).unwrap();
        questions.push(Question {
            group: format!("{} {}", s.set, s.lang),
            query: question.to_string(),
            answer: name,
        });
    }
    for (n, (text, question)) in CATALAN.iter().enumerate() {
        let name = format!("catala-{n}.txt");
        std::fs::write(inputs.join(&name), text).unwrap();
        questions.push(Question {
            group: "written ca".into(),
            query: (*question).into(),
            answer: name,
        });
    }
    for (file, question) in SIGNS {
        let from = ocr_set.join(file);
        if !from.exists() {
            println!(
                "(no {}: run scripts/test.sh once to draw the OCR set)",
                from.display()
            );
            continue;
        }
        let name = file.replace('/', "-");
        std::fs::copy(&from, inputs.join(&name)).unwrap();
        questions.push(Question {
            group: "sign es".into(),
            query: (*question).into(),
            answer: name,
        });
    }
    // Spoken prompts: the English transcript of the same prompt is the question.
    let transcripts = |lang: &str| -> Vec<(String, String)> {
        let text = std::fs::read_to_string(speech_set.join(lang).join("transcripts.txt"))
            .unwrap_or_default();
        let mut lines: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        lines.sort();
        lines
    };
    let english_prompts: HashMap<String, String> = transcripts("en").into_iter().collect();
    for lang in ["es", "fr", "it"] {
        for (name, _) in transcripts(lang)
            .into_iter()
            .filter(|(n, _)| english_prompts.contains_key(n))
            .take(spoken)
        {
            let file = format!("spoken-{lang}-{name}.wav");
            std::fs::copy(
                speech_set.join(lang).join(format!("{name}.wav")),
                inputs.join(&file),
            )
            .unwrap();
            questions.push(Question {
                group: format!("spoken {lang}"),
                query: english_prompts[&name].clone(),
                answer: file,
            });
        }
    }
    let started = Instant::now();
    run(aperture(&data)
        .args(["ingest", "--collection", "bench"])
        .arg(&inputs));
    run(aperture(&data)
        .args(["ingest", "--collection", "english"])
        .arg(&originals));
    run(aperture(&data).args(["index", "--no-progress"]));
    println!(
        "\n## Search across languages: recall@10 of English queries, answers only in other languages\n\n{} files ingested and indexed in {:.0} s (text, OCR, speech, translation, embeddings)\n",
        questions.len(),
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = aperture_lake::Config::load(&data, None).expect("config");
    let lake = rt
        .block_on(aperture_lake::Lake::open(config, Vec::new()))
        .expect("lake");
    let index =
        aperture_lake::open_current(&lake.config.search, lake.catalog.as_ref()).expect("index");
    let encoders = aperture_lake::encoders(&lake.config);
    let refs: Vec<&dyn aperture_search::QueryEncoder> = encoders
        .iter()
        .map(|e| e.as_ref() as &dyn aperture_search::QueryEncoder)
        .collect();
    let found = |text: &str, translate: bool, collection: &str| -> Vec<String> {
        let text = if translate {
            format!("{text} collection:{collection}")
        } else {
            format!("{text} translate:off collection:{collection}")
        };
        let Ok(query) = aperture_search::parse(&text) else {
            return Vec::new();
        };
        lake.search_in(
            &index,
            query,
            &refs,
            &[],
            &aperture_search::SearchOptions::default(),
        )
        .map(|hits| hits.into_iter().map(|h| h.asset.name).collect())
        .unwrap_or_default()
    };
    println!("| answers | questions | sentence | key words | key words, no query translation |");
    println!("|---|---|---|---|---|");
    let mut groups: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for q in &questions {
        let row = groups.entry(&q.group).or_default();
        row[0] += 1;
        let keys = keywords(&q.query);
        let keys = if keys.is_empty() {
            q.query.clone()
        } else {
            keys
        };
        for (i, (query, translate)) in [(&q.query, true), (&keys, true), (&keys, false)]
            .into_iter()
            .enumerate()
        {
            let collection = if q.group.contains(" en ") {
                "english"
            } else {
                "bench"
            };
            if found(query, translate, collection).contains(&q.answer) {
                row[i + 1] += 1;
            }
        }
    }
    let pct = |n: usize, d: usize| 100.0 * n as f64 / d.max(1) as f64;
    for (group, row) in &groups {
        println!(
            "| {group} | {} | {:.0} % | {:.0} % | {:.0} % |",
            row[0],
            pct(row[1], row[0]),
            pct(row[2], row[0]),
            pct(row[3], row[0])
        );
    }
}
