//! Speech: our Whisper (candle, float32) against faster-whisper (CTranslate2) on the same
//! model files and the same threads, in float32 and int8: × real time of Whisper alone (every
//! 30 s of the file, as faster-whisper without its voice filter) and of the whole speech
//! analyzer (decoding, the voice detector, language per stretch, guards), word error rates
//! with one normaliser on both sides, and language identification on five languages. Prints
//! tables.
//!
//! ```sh
//! scripts/bench/fetch-speech-set.sh        # asterisk prompts in en es fr it ru, JFK, 20 min
//! scripts/bench/setup-peers.sh             # faster-whisper in target/bench-venv (optional)
//! cargo bench -p aperture --bench speech
//! ```
//!
//! Then the speech analyzer alone on long files, each in a process of its own so that its peak
//! memory is its own: hours of silence (skipped by the voice detector: the time is decoding
//! and detection) and three hours of low noise with the JFK clip every ten minutes.
//!
//! `BENCH_PROMPTS` (prompts per language, default 20 of the 40; 0: the long files only), `BENCH_LONG` (1: also the
//! 20-minute recording, default 0), `BENCH_SILENCE_HOURS` (default 10), `BENCH_NOISY_HOURS`
//! (default 3; 0 skips the long files), `BENCH_THREADS` (default 2, both sides),
//! `BENCH_MODELS` (comma-separated, default `whisper-tiny-en,whisper-base`),
//! `APERTURE_TEST_MODELS` (default `target/test-models/models`), `BENCH_SPEECH_SET`
//! (default `target/speech-bench`).
//!
//! The normaliser: lower case; accents and ё folded (the Spanish transcripts are written
//! without them); punctuation removed, apostrophes too; English numbers written as words
//! (Whisper writes "5", the transcripts "five"). Numbers in the other languages stay digits on
//! our side and the peer's alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aperture_analyze::speech::whisper::{Language, Whisper};
use aperture_analyze::{Analyzer, Input, Speech};
use aperture_catalog::Asset;
use aperture_core::{AssetId, ContentHash, InsightValue, MediaKind, UnixMillis};
use aperture_media::audio::{AudioOptions, SAMPLE_RATE, samples};

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

/// One recording with what is said in it.
#[derive(Clone)]
struct Clip {
    path: PathBuf,
    language: &'static str,
    truth: String,
    seconds: f64,
}

/// The first `n` prompts of a set folder (`NAME.wav` + `transcripts.txt`), in name order.
fn clips(folder: &Path, language: &'static str, n: usize) -> Vec<Clip> {
    let text = std::fs::read_to_string(folder.join("transcripts.txt")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/bench/fetch-speech-set.sh)",
            folder.display()
        )
    });
    let mut lines: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(": ")).collect();
    lines.sort();
    lines
        .into_iter()
        .take(n)
        .map(|(name, truth)| {
            let path = folder.join(format!("{name}.wav"));
            let probe = aperture_media::probe_file(&path, &Default::default()).expect("probe");
            Clip {
                seconds: probe.metadata.duration_ms.unwrap_or(0) as f64 / 1000.0,
                path,
                language,
                truth: truth.to_owned(),
            }
        })
        .collect()
}

/// Lower case, accents folded, no punctuation, English numbers as words.
fn normalise(text: &str, language: &str) -> Vec<String> {
    let folded: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '\'' | '’' | 'ʼ'))
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'ё' => 'е',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    folded
        .split_whitespace()
        .flat_map(|w| match (language, w.parse::<u64>()) {
            ("en", Ok(n)) => english_number(n),
            _ => vec![w.to_owned()],
        })
        .collect()
}

/// A number in English words, below a million ("5" → "five").
fn english_number(n: u64) -> Vec<String> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    fn below_thousand(n: u64, out: &mut Vec<String>) {
        if n >= 100 {
            out.push(ONES[(n / 100) as usize].into());
            out.push("hundred".into());
        }
        let rest = n % 100;
        if rest >= 20 {
            out.push(TENS[(rest / 10) as usize].into());
            if !rest.is_multiple_of(10) {
                out.push(ONES[(rest % 10) as usize].into());
            }
        } else if rest > 0 || n == 0 {
            out.push(ONES[rest as usize].into());
        }
    }
    if n >= 1_000_000 {
        return vec![n.to_string()];
    }
    let mut out = Vec::new();
    if n >= 1000 {
        below_thousand(n / 1000, &mut out);
        out.push("thousand".into());
        if !n.is_multiple_of(1000) {
            below_thousand(n % 1000, &mut out);
        }
    } else {
        below_thousand(n, &mut out);
    }
    out
}

/// Word edits (substitutions, insertions, deletions) between two word lists.
fn edits(truth: &[String], said: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=said.len()).collect();
    for (i, t) in truth.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, s) in said.iter().enumerate() {
            let next = (diagonal + usize::from(t != s))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[said.len()]
}

/// Word error rate over a set, in percent: all edits over all reference words.
fn wer(clips: &[Clip], said: &[Heard]) -> f64 {
    let (mut errors, mut words) = (0, 0);
    for (clip, heard) in clips.iter().zip(said) {
        let truth = normalise(&clip.truth, clip.language);
        errors += edits(&truth, &normalise(&heard.text, clip.language));
        words += truth.len();
    }
    100.0 * errors as f64 / words.max(1) as f64
}

/// What one engine heard in one clip.
#[derive(Default, Clone)]
struct Heard {
    text: String,
    language: String,
    /// The speech analyzer's insights (ours only), for the search measure.
    insights: Vec<aperture_core::Insight>,
}

/// A run of one engine over a set: seconds (model loading left out) and what it heard.
struct Run {
    seconds: f64,
    heard: Vec<Heard>,
}

fn sound(path: &Path) -> Vec<f32> {
    let name = path.file_name().unwrap().to_string_lossy();
    let mut out = Vec::new();
    for chunk in samples(path, &name, 0, None, &AudioOptions::default()).expect("decode") {
        out.extend(chunk.expect("decode"));
    }
    out
}

/// Whisper alone: the file decoded, then every 30 s transcribed, language detected.
fn ours_alone(whisper: &Whisper, clips: &[Clip]) -> Run {
    let started = Instant::now();
    let heard = clips
        .iter()
        .map(|clip| {
            let pcm = sound(&clip.path);
            let mut heard = Heard::default();
            let mut texts = Vec::new();
            for window in pcm.chunks(30 * SAMPLE_RATE as usize) {
                let fallback = (!heard.language.is_empty()).then_some(heard.language.as_str());
                if let Some(said) = whisper
                    .transcribe(window, Language::Detect { fallback })
                    .expect("whisper")
                {
                    if heard.language.is_empty() {
                        heard.language = said.language.clone();
                    }
                    texts.push(said.text);
                }
            }
            heard.text = texts.join(" ");
            heard
        })
        .collect();
    Run {
        seconds: started.elapsed().as_secs_f64(),
        heard,
    }
}

/// The speech analyzer as a worker runs it.
fn ours_pipeline(speech: &Speech, clips: &[Clip]) -> Run {
    let started = Instant::now();
    let heard = clips
        .iter()
        .map(|clip| {
            let probe = aperture_media::probe_file(&clip.path, &Default::default()).unwrap();
            let asset = Asset {
                id: AssetId::new(),
                collection: "bench".into(),
                hash: ContentHash::of(clip.path.as_os_str().as_encoded_bytes()),
                size: 0,
                kind: MediaKind::Audio,
                mime: probe.mime,
                ingested_at: UnixMillis::now(),
                captured_at: None,
                name: clip
                    .path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                metadata: probe.metadata,
            };
            let out = speech
                .analyze(&Input {
                    asset: &asset,
                    path: &clip.path,
                    insights: &[],
                    frames: &[],
                    suppress_plates: true,
                })
                .expect("speech");
            let mut heard = Heard::default();
            let mut texts = Vec::new();
            for insight in &out.insights {
                if let InsightValue::TranscriptSegment(s) = &insight.value {
                    texts.push(s.text.clone());
                    if heard.language.is_empty() {
                        heard.language = insight.language.clone().unwrap_or_default();
                    }
                }
            }
            heard.text = texts.join(" ");
            heard.insights = out.insights;
            heard
        })
        .collect();
    Run {
        seconds: started.elapsed().as_secs_f64(),
        heard,
    }
}

/// Search by a word said: each clip's transcripts (from the speech analyzer) in one lake, one
/// query per clip, the longest word of its reference transcript that no other clip of its
/// language has, as a user would type it. A query is found when its clip is among the first
/// ten hits with a reason at a moment inside the clip. Recall@10 per language.
fn spoken_search(sets: &[(&str, Vec<Clip>, Vec<Heard>)]) -> Vec<Vec<String>> {
    use aperture_catalog::AssetQuery;
    use aperture_ingest::{Ingester, NoProgress};
    use aperture_search::Reason;

    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = dir.path().join("data");
    let lake = runtime
        .block_on(aperture_lake::Lake::init(&data, None, Vec::new(), "bench"))
        .unwrap()
        .lake;
    let ingester = Ingester::new(lake.blobs.clone(), lake.catalog.clone());
    for (name, clips, _) in sets {
        let folder = dir.path().join("in").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for clip in clips {
            std::fs::copy(&clip.path, folder.join(clip.path.file_name().unwrap())).unwrap();
        }
        let options = lake.ingest_options(name.to_string());
        runtime
            .block_on(ingester.ingest(&[folder], &options, &NoProgress))
            .unwrap();
    }
    let assets = runtime
        .block_on(lake.catalog(|c| {
            c.list_assets(&AssetQuery {
                collections: None,
                kind: None,
                after: None,
                limit: 100_000,
            })
        }))
        .unwrap();
    let id_of = |collection: &str, clip: &Clip| {
        let name = clip.path.file_name().unwrap().to_string_lossy();
        assets
            .iter()
            .find(|a| a.collection == collection && a.name == name)
            .map(|a| a.id)
            .unwrap()
    };
    let mut insights = Vec::new();
    for (name, clips, heard) in sets {
        for (clip, h) in clips.iter().zip(heard) {
            let id = id_of(name, clip);
            insights.extend(h.insights.iter().cloned().map(|mut i| {
                i.asset = id;
                i
            }));
        }
    }
    runtime
        .block_on(lake.catalog(move |c| c.add_insights(&insights)))
        .unwrap();
    runtime.block_on(lake.update_search()).unwrap();

    let mut rows = Vec::new();
    for (name, clips, _) in sets {
        let words: Vec<Vec<String>> = clips
            .iter()
            .map(|c| {
                c.truth
                    .split_whitespace()
                    .map(|w| {
                        w.trim_matches(|ch: char| !ch.is_alphanumeric())
                            .to_lowercase()
                    })
                    .filter(|w| w.chars().count() >= 4)
                    .collect()
            })
            .collect();
        let (mut asked, mut found) = (0, 0);
        for (i, clip) in clips.iter().enumerate() {
            let Some(word) = words[i]
                .iter()
                .filter(|w| {
                    words
                        .iter()
                        .enumerate()
                        .all(|(j, other)| j == i || !other.contains(w))
                })
                .max_by_key(|w| w.chars().count())
            else {
                continue;
            };
            asked += 1;
            let query = aperture_search::parse(word).unwrap();
            let hits = runtime
                .block_on(lake.search(query, Vec::new(), 10))
                .unwrap();
            let id = id_of(name, clip);
            let duration = (clip.seconds * 1000.0) as u64 + 500;
            let at_its_moment = hits.iter().any(|h| {
                h.asset.id == id
                    && h.reasons.iter().any(|r| {
                        matches!(r, Reason::Words {
                            place: Some(aperture_core::Place::Time { start_ms, .. }),
                            ..
                        } if *start_ms < duration)
                    })
            });
            found += usize::from(at_its_moment);
        }
        rows.push(vec![
            name.to_string(),
            asked.to_string(),
            format!("{:.0}%", 100.0 * found as f64 / asked.max(1) as f64),
        ]);
    }
    rows
}

/// faster-whisper on the same files (its own timing: loading left out, decoding in).
fn peer(
    python: &Path,
    model: &Path,
    compute: &str,
    threads: usize,
    vad: bool,
    clips: &[Clip],
) -> Option<Run> {
    let mut cmd = Command::new(python);
    cmd.arg(root().join("scripts/bench/whisper_peer.py"))
        .args(["--model".as_ref(), model.as_os_str()])
        .args(["--compute-type", compute, "--threads", &threads.to_string()]);
    if vad {
        cmd.arg("--vad");
    }
    cmd.args(clips.iter().map(|c| &c.path));
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "faster-whisper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last()?).ok()?;
    let heard = json["files"]
        .as_array()?
        .iter()
        .map(|f| Heard {
            text: f["text"].as_str().unwrap_or_default().to_owned(),
            language: f["language"].as_str().unwrap_or_default().to_owned(),
            insights: Vec::new(),
        })
        .collect();
    Some(Run {
        seconds: json["total_seconds"].as_f64()?,
        heard,
    })
}

fn language_accuracy(clips: &[Clip], run: &Run) -> f64 {
    let right = clips
        .iter()
        .zip(&run.heard)
        .filter(|(c, h)| h.language == c.language)
        .count();
    100.0 * right as f64 / clips.len().max(1) as f64
}

/// `--once MODEL FILE`: the speech analyzer on one file, in this process; prints the number
/// of segments and the seconds it took as one JSON line.
fn once(model: &str, file: &Path) {
    let models_dir = dir("APERTURE_TEST_MODELS", "target/test-models/models");
    let mut speech = Speech::new(&models_dir, Some(model)).expect("speech");
    // The bench times more than the 6 hours a lake takes by default.
    speech.max_duration = std::time::Duration::from_secs(24 * 3600);
    let clip = Clip {
        path: file.to_owned(),
        language: "en",
        truth: String::new(),
        seconds: 0.0,
    };
    let run = ours_pipeline(&speech, std::slice::from_ref(&clip));
    let words = run.heard[0].text.split_whitespace().count();
    println!(
        "{}",
        serde_json::json!({ "seconds": run.seconds, "words": words, "text": run.heard[0].text })
    );
}

/// Runs [`once`] in a child process: its JSON line and the child's peak resident bytes.
fn measured_once(model: &str, file: &Path) -> (serde_json::Value, u64) {
    use std::io::Read as _;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--once", model])
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("bench child");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain FFI with valid pointers; `child` is never waited on by std.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    std::mem::forget(child);
    assert_eq!(status, 0, "the bench child failed on {}", file.display());
    let json = serde_json::from_str(out.trim()).expect("the child's JSON line");
    (json, usage.ru_maxrss as u64 * 1024)
}

/// Makes a long file with ffmpeg (lavfi), encoded small.
fn long_file(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg made no {name}");
    out
}

/// The speech analyzer on hours of sound, in a child process each.
fn long_files(model: &str, jfk: &Path, silence_hours: usize, noisy_hours: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut measure = |what: String, hours: usize, file: PathBuf| {
        eprintln!("{model} on {what}");
        let (json, peak) = measured_once(model, &file);
        let seconds = json["seconds"].as_f64().unwrap_or(f64::NAN);
        rows.push(vec![
            model.to_owned(),
            what,
            format!("{seconds:.0}"),
            format!("{:.0}×", hours as f64 * 3600.0 / seconds),
            json["words"].to_string(),
            format!("{}", peak >> 20),
        ]);
    };
    if silence_hours > 0 {
        let secs = (silence_hours * 3600).to_string();
        let file = long_file(
            dir.path(),
            "silence.flac",
            &["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", &secs],
        );
        measure(format!("{silence_hours} h of silence"), silence_hours, file);
    }
    if noisy_hours > 0 {
        // The clip, then silence to ten minutes, looped; over pink noise at about -50 dBFS.
        let every = long_file(
            dir.path(),
            "every-ten-minutes.wav",
            &[
                "-i",
                jfk.to_str().unwrap(),
                "-af",
                "aresample=16000,apad=whole_dur=600",
                "-ac",
                "1",
            ],
        );
        let secs = (noisy_hours * 3600).to_string();
        let file = long_file(
            dir.path(),
            "noisy.ogg",
            &[
                "-stream_loop",
                "-1",
                "-i",
                every.to_str().unwrap(),
                "-f",
                "lavfi",
                "-i",
                "anoisesrc=c=pink:a=0.003:r=16000",
                "-filter_complex",
                "[0][1]amix=inputs=2:duration=first:normalize=0",
                "-t",
                &secs,
                "-c:a",
                "libopus",
                "-b:a",
                "24k",
            ],
        );
        measure(
            format!("{noisy_hours} h of noise, JFK every 10 min"),
            noisy_hours,
            file,
        );
    }
    println!(
        "\nLong files, the speech analyzer in a process of its own (peak memory includes the model)"
    );
    table(
        &[
            "model",
            "file",
            "seconds",
            "× real time",
            "words",
            "peak RSS MiB",
        ],
        &rows,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("speech: bench");
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--once") {
        once(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    let threads = env_usize("BENCH_THREADS", 2).max(1);
    // candle's CPU kernels read this once, before the first model runs.
    // SAFETY: nothing else runs yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let per_language = env_usize("BENCH_PROMPTS", 20).max(1);
    let models_dir = dir("APERTURE_TEST_MODELS", "target/test-models/models");
    let set = dir("BENCH_SPEECH_SET", "target/speech-bench");
    let python = root().join("target/bench-venv/bin/python");
    let python = python.exists().then_some(python);
    if python.is_none() {
        eprintln!("(faster-whisper columns empty: run scripts/bench/setup-peers.sh)");
    }
    let models: Vec<String> = std::env::var("BENCH_MODELS")
        .unwrap_or_else(|_| "whisper-tiny-en,whisper-base".into())
        .split(',')
        .map(str::to_owned)
        .collect();

    let mut sets: Vec<(&str, Vec<Clip>)> = Vec::new();
    // BENCH_PROMPTS=0: the long files only.
    let per_language = if env_usize("BENCH_PROMPTS", 20) == 0 {
        let model = models.last().map_or("whisper-base", String::as_str);
        long_files(
            model,
            &set.join("jfk/jfk.wav"),
            env_usize("BENCH_SILENCE_HOURS", 10),
            env_usize("BENCH_NOISY_HOURS", 3),
        );
        return;
    } else {
        per_language
    };
    for language in ["en", "es", "fr", "it", "ru"] {
        sets.push((language, clips(&set.join(language), language, per_language)));
    }
    sets.push(("jfk", clips(&set.join("jfk"), "en", 1)));
    if env_usize("BENCH_LONG", 0) == 1 {
        sets.push(("long", clips(&set.join("long"), "en", 1)));
    }
    eprintln!(
        "{threads} threads, {per_language} prompts per language, sets: {}",
        sets.iter()
            .map(|(n, c)| format!("{n} {:.0} s", c.iter().map(|c| c.seconds).sum::<f64>()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut speed = Vec::new();
    let mut accuracy = Vec::new();
    // What the last model's speech analyzer heard in each set, for the search measure.
    let mut transcribed: Vec<(&str, Vec<Clip>, Vec<Heard>)> = Vec::new();
    for model in &models {
        let folder = aperture_models::require(&models_dir, model).expect("model");
        let whisper = Whisper::load(&folder).expect("load");
        let speech = Speech::new(&models_dir, Some(model)).expect("speech");
        for (name, clips) in &sets {
            if !whisper.multilingual() && clips.iter().any(|c| c.language != "en") {
                continue;
            }
            let audio: f64 = clips.iter().map(|c| c.seconds).sum();
            eprintln!("{model} on {name}: {audio:.0} s of sound");
            let alone = ours_alone(&whisper, clips);
            let pipeline = ours_pipeline(&speech, clips);
            let f32_peer = python
                .as_deref()
                .and_then(|py| peer(py, &folder, "float32", threads, false, clips));
            let int8_peer = python
                .as_deref()
                .and_then(|py| peer(py, &folder, "int8", threads, false, clips));
            let rt = |s: f64| audio / s;
            let cell = |r: &Option<Run>, f: &dyn Fn(&Run) -> String| {
                r.as_ref().map_or_else(|| "–".to_owned(), f)
            };
            speed.push(vec![
                model.clone(),
                name.to_string(),
                format!("{audio:.0}"),
                format!("{:.1}×", rt(alone.seconds)),
                format!("{:.1}×", rt(pipeline.seconds)),
                cell(&f32_peer, &|r| format!("{:.1}×", rt(r.seconds))),
                cell(&int8_peer, &|r| format!("{:.1}×", rt(r.seconds))),
                cell(&f32_peer, &|r| format!("{:.2}", r.seconds / alone.seconds)),
                cell(&int8_peer, &|r| format!("{:.2}", r.seconds / alone.seconds)),
            ]);
            let multilingual = whisper.multilingual();
            accuracy.push(vec![
                model.clone(),
                name.to_string(),
                clips.len().to_string(),
                format!("{:.1}", wer(clips, &alone.heard)),
                format!("{:.1}", wer(clips, &pipeline.heard)),
                cell(&f32_peer, &|r| format!("{:.1}", wer(clips, &r.heard))),
                cell(&int8_peer, &|r| format!("{:.1}", wer(clips, &r.heard))),
                if multilingual {
                    format!("{:.0}%", language_accuracy(clips, &alone))
                } else {
                    "–".into()
                },
                if multilingual {
                    format!("{:.0}%", language_accuracy(clips, &pipeline))
                } else {
                    "–".into()
                },
                if multilingual {
                    cell(&f32_peer, &|r| {
                        format!("{:.0}%", language_accuracy(clips, r))
                    })
                } else {
                    "–".into()
                },
            ]);
            if Some(model) == models.last() {
                transcribed.push((name, clips.clone(), pipeline.heard.clone()));
            }
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                for (i, clip) in clips.iter().enumerate() {
                    eprintln!(
                        "  {}: {:?}\n    ours {} {:?}\n    peer {}",
                        clip.path.file_name().unwrap().to_string_lossy(),
                        clip.truth,
                        alone.heard[i].language,
                        alone.heard[i].text,
                        f32_peer
                            .as_ref()
                            .map_or(String::new(), |r| format!("{:?}", r.heard[i].text))
                    );
                }
            }
        }
    }
    println!(
        "\nSpeed, × real time (higher is faster); ratio = faster-whisper's time / ours (Whisper alone), above 1 means we are faster"
    );
    table(
        &[
            "model",
            "set",
            "audio s",
            "ours: whisper",
            "ours: pipeline",
            "fw float32",
            "fw int8",
            "ratio f32",
            "ratio int8",
        ],
        &speed,
    );
    println!(
        "\nWord error rate, % (one normaliser on both sides); language identified, % of files"
    );
    table(
        &[
            "model",
            "set",
            "files",
            "ours: whisper",
            "ours: pipeline",
            "fw float32",
            "fw int8",
            "lang ours: whisper",
            "lang ours: pipeline",
            "lang fw",
        ],
        &accuracy,
    );
    println!(
        "\nSearch by a word said ({}): recall@10, the clip among the first ten hits at a moment inside it",
        models.last().map_or("", String::as_str)
    );
    table(
        &["set", "queries", "recall@10"],
        &spoken_search(&transcribed),
    );
    let noisy = env_usize("BENCH_NOISY_HOURS", 3);
    let silence = env_usize("BENCH_SILENCE_HOURS", 10);
    if noisy + silence > 0 {
        let model = models.last().map_or("whisper-base", String::as_str);
        long_files(model, &set.join("jfk/jfk.wav"), silence, noisy);
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.to_vec());
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
