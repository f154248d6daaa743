//! Apertium, the rule-based translator Debian packages (`apertium-eng-spa`, ...): each pair's
//! pipeline runs as long-lived processes in null-flush mode, one text in and one out at a
//! time, rather than a process per text.
//!
//! A pair is a mode file in the modes folder (`/usr/share/apertium/modes/spa-eng.mode`): a
//! pipeline of Apertium's programs over the pair's compiled data. `apertium-wblank-mode -z`
//! rewrites it for null-flush mode, exactly as the `apertium` command does; each stage is
//! started here (no shell), connected by pipes, and killed when a text takes longer than its
//! deadline or the pair is dropped. The output is the same as `apertium -u PAIR` prints for
//! the same text (unknown words unmarked).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::engine::{Error, Pair};

/// The modes folder of Debian's Apertium.
pub const MODES_DIR: &str = "/usr/share/apertium/modes";

/// Time allowed per text on top of its share by size, and the share: a text of `n` bytes may
/// take `BASE + n / BYTES_PER_SEC` seconds. Apertium translates about 150 kB/s on one core.
const BYTES_PER_SEC: u64 = 10_000;

/// Apertium's language codes (two or three letters) as the two-letter codes the rest of
/// Aperture uses; `None` for one that has none.
pub fn two_letter(code: &str) -> Option<&'static str> {
    Some(match code {
        "en" | "eng" => "en",
        "es" | "spa" => "es",
        "ca" | "cat" => "ca",
        "gl" | "glg" => "gl",
        "pt" | "por" => "pt",
        "fr" | "fra" => "fr",
        "it" | "ita" => "it",
        "ro" | "ron" => "ro",
        "eo" | "epo" => "eo",
        "eu" | "eus" => "eu",
        "is" | "isl" => "is",
        "mk" | "mkd" => "mk",
        "bg" | "bul" => "bg",
        "sh" | "hbs" => "sh",
        "sl" | "slv" => "sl",
        "oc" | "oci" => "oc",
        "an" | "arg" => "an",
        "ast" => "ast",
        "nl" | "nld" => "nl",
        "af" | "afr" => "af",
        "da" | "dan" => "da",
        "sv" | "swe" => "sv",
        "nb" | "nob" => "nb",
        "nn" | "nno" => "nn",
        "no" | "nor" => "no",
        "ru" | "rus" => "ru",
        "uk" | "ukr" => "uk",
        "be" | "bel" => "be",
        "id" | "ind" => "id",
        "ms" | "zlm" => "ms",
        "br" | "bre" => "br",
        "sc" | "srd" => "sc",
        "pl" | "pol" => "pl",
        "hi" | "hin" => "hi",
        "ur" | "urd" => "ur",
        _ => return None,
    })
}

/// One Apertium pair, with its pipeline started on first use and kept running.
pub struct Apertium {
    /// The mode's name: `spa-eng`.
    mode: String,
    from: &'static str,
    to: &'static str,
    mode_file: PathBuf,
    package: String,
    version: String,
    /// Time allowed per text besides its share by size.
    base: Duration,
    running: Mutex<Option<Pipeline>>,
    /// How many times the pipeline was started.
    starts: AtomicUsize,
}

impl Apertium {
    /// Every pair in `modes_dir` whose languages have two-letter codes, with variants
    /// (`spa-eng_US`, `eo-en-bytecode`) and script converters left out, each allowed `base`
    /// per text besides its share by size. Nothing starts yet.
    pub fn discover(modes_dir: &Path, base: Duration) -> Vec<Apertium> {
        let Ok(entries) = std::fs::read_dir(modes_dir) else {
            return Vec::new();
        };
        let versions = package_versions();
        let mut found: Vec<Apertium> = entries
            .filter_map(|e| e.ok())
            .filter_map(|entry| {
                let path = entry.path();
                let mode = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".mode")?
                    .to_owned();
                let (from, to) = mode.split_once('-')?;
                let (from, to) = (two_letter(from)?, two_letter(to)?);
                let package = package_of(&path)?;
                Some(Apertium {
                    version: versions
                        .get(&package)
                        .cloned()
                        .unwrap_or_else(|| modified(&path)),
                    mode,
                    from,
                    to,
                    mode_file: path,
                    package,
                    base,
                    running: Mutex::new(None),
                    starts: AtomicUsize::new(0),
                })
            })
            .collect();
        found.sort_by(|a, b| (a.from, a.to, &a.mode).cmp(&(b.from, b.to, &b.mode)));
        // Two modes for the same languages (`fr-es` and `fra-spa`): the first by name is kept.
        found.dedup_by(|b, a| a.from == b.from && a.to == b.to);
        found
    }

    /// The mode's name, e.g. `spa-eng`.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    fn failed(&self, reason: impl std::fmt::Display) -> Error {
        Error::Failed {
            engine: "apertium",
            pair: self.mode.clone(),
            reason: reason.to_string(),
        }
    }

    /// How many times its processes were started: once, unless one hung or ended.
    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::Relaxed)
    }

    fn start(&self) -> Result<Pipeline, Error> {
        self.starts.fetch_add(1, Ordering::Relaxed);
        let rewritten = Command::new("apertium-wblank-mode")
            .arg("-z")
            .arg(&self.mode_file)
            .stderr(Stdio::null())
            .output()
            .map_err(|e| self.failed(format!("cannot run apertium-wblank-mode: {e}")))?;
        if !rewritten.status.success() {
            return Err(self.failed(format!(
                "apertium-wblank-mode {} {}",
                self.mode_file.display(),
                rewritten.status
            )));
        }
        let stages = stages(&String::from_utf8_lossy(&rewritten.stdout))
            .map_err(|e| self.failed(format!("{}: {e}", self.mode_file.display())))?;
        Pipeline::start(&stages).map_err(|e| self.failed(e))
    }

    fn deadline(&self, text: &str) -> Duration {
        self.base + Duration::from_secs(text.len() as u64 / BYTES_PER_SEC)
    }
}

impl Pair for Apertium {
    fn from(&self) -> &str {
        self.from
    }
    fn to(&self) -> &str {
        self.to
    }
    fn engine(&self) -> &'static str {
        "apertium"
    }
    fn model(&self) -> String {
        format!("{} {}", self.package, self.mode)
    }
    fn version(&self) -> String {
        self.version.clone()
    }

    /// Every text is queued at once, so the stages work on the next ones while the first
    /// answers come back (as the `apertium` command streams a file); each answer is awaited
    /// for its own deadline, counted from the one before.
    fn translate(&self, texts: &[&str]) -> Result<Vec<String>, Error> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = vec![String::new(); texts.len()];
        let todo: Vec<usize> = (0..texts.len())
            .filter(|&i| !texts[i].trim().is_empty())
            .collect();
        if todo.is_empty() {
            return Ok(out);
        }
        if running.is_none() {
            *running = Some(self.start()?);
        }
        let pipeline = running.as_mut().expect("started above");
        let ended = |running: &mut Option<Pipeline>| {
            let status = running.take().map(Pipeline::stop).unwrap_or_default();
            self.failed(format!("its process ended ({status})"))
        };
        for &i in &todo {
            if !pipeline.send(escape(texts[i])) {
                return Err(ended(&mut running));
            }
        }
        for &i in &todo {
            let pipeline = running.as_mut().expect("kept until an error");
            let deadline = self.deadline(texts[i]);
            match pipeline.receive(deadline) {
                Ok(bytes) => out[i] = unescape(&String::from_utf8_lossy(&bytes)),
                Err(Stopped::Timeout) => {
                    *running = None;
                    return Err(Error::Timeout {
                        engine: "apertium",
                        pair: self.mode.clone(),
                        secs: deadline.as_secs(),
                    });
                }
                Err(Stopped::Ended) => return Err(ended(&mut running)),
            }
        }
        Ok(out)
    }
}

/// The Debian package whose data a mode uses: the `apertium-*` folder named in its pipeline.
fn package_of(mode_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(mode_file).ok()?;
    let dir = mode_file.parent()?.parent()?;
    let start = text.find(&format!("{}/apertium-", dir.display()))? + dir.as_os_str().len() + 1;
    let rest = &text[start..];
    let end = rest.find('/')?;
    Some(rest[..end].to_owned())
}

/// The installed versions of Apertium's Debian packages, by name, from one `dpkg-query`
/// (empty without dpkg).
fn package_versions() -> BTreeMap<String, String> {
    let Ok(out) = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Version}\\n", "apertium-*"])
        .stderr(Stdio::null())
        .output()
    else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, version)| !version.is_empty())
        .map(|(p, v)| (p.to_owned(), v.to_owned()))
        .collect()
}

/// A pair's version without dpkg (a source install): its mode file's modification time, so
/// that a reinstall still changes it.
fn modified(mode_file: &Path) -> String {
    std::fs::metadata(mode_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(|| "unknown".into(), |d| format!("mtime-{}", d.as_secs()))
}

/// A pipeline as `apertium-wblank-mode` writes it, split into its stages' words: single
/// quotes group, `|` separates stages; `$1` is the generator's option (`-n`: no marks on
/// unknown words, as `apertium -u`), `$2` the tagger's (none).
fn stages(pipeline: &str) -> Result<Vec<Vec<String>>, String> {
    let mut stages = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in pipeline.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            _ if quoted => word.get_or_insert_with(String::new).push(c),
            '|' => {
                stages.last_mut().expect("one").extend(word.take());
                stages.push(Vec::new());
            }
            c if c.is_whitespace() => stages.last_mut().expect("one").extend(word.take()),
            '"' | '`' | ';' | '&' | '>' | '<' | '(' | ')' => {
                return Err(format!("unexpected {c:?} in the pipeline"));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return Err("an unclosed quote in the pipeline".into());
    }
    stages.last_mut().expect("one").extend(word.take());
    for stage in &mut stages {
        stage.retain(|w| w != "$2");
        for w in stage.iter_mut() {
            if w == "$1" {
                *w = "-n".into();
            }
        }
    }
    stages.retain(|s| !s.is_empty());
    if stages.is_empty() {
        return Err("an empty pipeline".into());
    }
    Ok(stages)
}

/// A text in Apertium's stream format: its reserved characters escaped, NUL (the flush mark)
/// and other control characters but line breaks and tabs made spaces, and one space at the
/// end, which the analyser needs to finish the last word before the flush.
fn escape(text: &str) -> Vec<u8> {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' | '[' | ']' | '^' | '$' | '@' | '/' | '<' | '>' | '{' | '}' | '#' | '*' => {
                out.push('\\');
                out.push(c);
            }
            // Apertium's analyser drops a tilde even escaped: it travels as a blank of its
            // own (a superblank, in brackets), as the `apertium` command's deformatter sends it.
            '~' => out.push_str("[~]"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push(' ');
    let mut bytes = out.into_bytes();
    bytes.push(0);
    bytes
}

/// Apertium's output as text: escapes undone, superblanks' brackets dropped, and the space
/// added at the end taken off.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '[' | ']' => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
    out
}

/// Why a round trip did not come back.
enum Stopped {
    Timeout,
    Ended,
}

/// The stages of one pair, started and connected: texts go to the first one's input through
/// a writer thread, answers come from the last one's output through a reader thread, so the
/// caller can wait with a deadline and kill them all.
struct Pipeline {
    children: Vec<Child>,
    input: Option<Sender<Vec<u8>>>,
    output: Receiver<std::io::Result<Vec<u8>>>,
}

impl Pipeline {
    fn start(stages: &[Vec<String>]) -> Result<Pipeline, String> {
        let mut children: Vec<Child> = Vec::new();
        let mut previous: Option<std::process::ChildStdout> = None;
        let mut first_input: Option<ChildStdin> = None;
        for stage in stages {
            let mut command = Command::new(&stage[0]);
            command
                .args(&stage[1..])
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            match previous.take() {
                Some(out) => command.stdin(out),
                None => command.stdin(Stdio::piped()),
            };
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    for mut c in children {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return Err(format!("cannot start {}: {e}", stage[0]));
                }
            };
            if first_input.is_none() {
                first_input = child.stdin.take();
            }
            previous = child.stdout.take();
            children.push(child);
        }
        let (mut stdin, stdout) = (
            first_input.expect("the first stage's input"),
            previous.expect("the last stage's output"),
        );
        let (input, texts) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            for text in texts {
                if stdin.write_all(&text).and_then(|()| stdin.flush()).is_err() {
                    break;
                }
            }
        });
        let (answers, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut answer = Vec::new();
                match reader.read_until(0, &mut answer) {
                    Ok(0) => break,
                    Ok(_) if answer.last() == Some(&0) => {
                        answer.pop();
                        if answers.send(Ok(answer)).is_err() {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        let _ = answers.send(Err(e));
                        break;
                    }
                }
            }
        });
        Ok(Pipeline {
            children,
            input: Some(input),
            output,
        })
    }

    /// Queues one text; false when the writer is gone (the pipeline ended).
    fn send(&mut self, text: Vec<u8>) -> bool {
        self.input.as_ref().is_some_and(|i| i.send(text).is_ok())
    }

    /// The next answer, within `deadline`.
    fn receive(&mut self, deadline: Duration) -> Result<Vec<u8>, Stopped> {
        match self.output.recv_timeout(deadline) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => Err(Stopped::Ended),
            Err(RecvTimeoutError::Timeout) => Err(Stopped::Timeout),
        }
    }

    /// Stops every stage; says how the first one that failed ended.
    fn stop(mut self) -> String {
        self.shut()
    }

    fn shut(&mut self) -> String {
        self.input = None;
        let mut how = String::new();
        for child in &mut self.children {
            let _ = child.kill();
            if let Ok(status) = child.wait()
                && how.is_empty()
                && !status.success()
                && status.code().is_some()
            {
                how = status.to_string();
            }
        }
        self.children.clear();
        if how.is_empty() {
            "no answer".into()
        } else {
            how
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_split_into_stages_with_the_options_filled_in() {
        let stages = stages(
            "lt-proc -z '/usr/share/apertium/x y/a.bin' | apertium-tagger -z -g $2 'p.prob' \
             | lt-proc -z $1 'gen.bin'",
        )
        .unwrap();
        assert_eq!(
            stages,
            [
                vec!["lt-proc", "-z", "/usr/share/apertium/x y/a.bin"],
                vec!["apertium-tagger", "-z", "-g", "p.prob"],
                vec!["lt-proc", "-z", "-n", "gen.bin"],
            ]
        );
        assert!(stages_err("lt-proc 'open"));
        assert!(stages_err("lt-proc > /tmp/x"));
        assert!(stages_err("  "));
    }

    fn stages_err(text: &str) -> bool {
        stages(text).is_err()
    }

    #[test]
    fn reserved_characters_travel_escaped_and_come_back_plain() {
        let text = "5$ [note] <b> ^x @ * / {} ~ # \\ a\u{0}b\u{7}c\nline";
        let escaped = escape(text);
        assert_eq!(escaped.last(), Some(&0));
        assert_eq!(escaped.iter().filter(|&&b| b == 0).count(), 1);
        let inner = String::from_utf8(escaped[..escaped.len() - 1].to_vec()).unwrap();
        assert_eq!(
            unescape(&inner),
            "5$ [note] <b> ^x @ * / {} ~ # \\ a b c\nline"
        );
    }

    #[test]
    fn codes_become_two_letters() {
        assert_eq!(two_letter("spa"), Some("es"));
        assert_eq!(two_letter("eng"), Some("en"));
        assert_eq!(two_letter("gl"), Some("gl"));
        assert_eq!(two_letter("Cyrl"), None);
    }
}
