//! Language identification: which language a text is written in, as an ISO 639-1 code, for
//! the text of documents and, later, for OCR lines and transcripts.
//!
//! Detection is statistical (whatlang: the script of the letters, then trigram frequencies
//! within the script), so it says nothing for texts too short to judge, and nothing when the
//! best guess is not clearly ahead of the next.
//!
//! One adjustment is made before whatlang sees a text: when a good share of its letters are in
//! a script other than Latin, the Latin letters are left out. Russian, Japanese or Korean
//! documents quote commands, names and URLs in Latin letters, often more letters of them than
//! of the prose (a CJK character carries a word or a syllable), and whatlang would take the
//! most frequent script for the language's.

use whatlang::Lang;

/// The detector and its version. Analyzers that record languages put it in their own version,
/// so that results are redone when the detector changes.
pub const DETECTOR: &str = "whatlang-0.18";

/// Fewer letters than this and the text is not judged: a name, a number, a caption. A CJK
/// character (ideograph, kana, hangul syllable) counts as [`CJK_WEIGHT`] letters.
const MIN_LETTERS: usize = 20;

/// What one CJK character counts for, in letters: about what a syllable takes in Latin letters.
const CJK_WEIGHT: usize = 3;

/// The lowest confidence (0–1) reported: below it, the first guess was not clearly ahead.
/// Measured on single sentences: wrong guesses (Catalan for French, Ukrainian for Russian) came
/// at 0.01 and 0.2, right ones mostly at 1.0 and rarely under 0.3.
const MIN_CONFIDENCE: f32 = 0.25;

/// The share of (weighted) letters in other scripts above which Latin letters are left out.
const NON_LATIN_SHARE: f32 = 0.25;

/// How much of a long text is looked at, in bytes: three windows (start, middle, end) of a
/// third of this each. Enough for any detector to be sure; the windows keep a long preface in
/// another language from deciding alone.
const SAMPLE_BYTES: usize = 48 * 1024;

/// The language of `text` as an ISO 639-1 code (`en`, `es`, `ru`, `ja`, `zh`) and the
/// detector's confidence (0–1), or `None` when the text has fewer than 20 letters (a CJK
/// character counts as three) or no language is clearly ahead. When a quarter or more of the
/// letters are in scripts other than Latin, the Latin ones are left out of the judgement.
///
/// ```
/// use aperture_analyze::detect_language;
///
/// let text = "Hacía buen tiempo, así que caminamos por el río hasta el puente viejo.";
/// let (code, _) = detect_language(text).unwrap();
/// assert_eq!(code, "es");
/// assert_eq!(detect_language("Tokyo 2020"), None);
/// ```
pub fn detect(text: &str) -> Option<(String, f32)> {
    let sample = sample(text);
    let (latin, other) =
        sample
            .chars()
            .filter(|c| c.is_alphabetic())
            .fold((0, 0), |(latin, other), c| match c {
                _ if is_latin(c) => (latin + 1, other),
                _ if is_cjk(c) => (latin, other + CJK_WEIGHT),
                _ => (latin, other + 1),
            });
    let letters = latin + other;
    if letters < MIN_LETTERS {
        return None;
    }
    let info = if latin > 0 && other as f32 >= NON_LATIN_SHARE * letters as f32 {
        let without_latin: String = sample
            .chars()
            .map(|c| if is_latin(c) { ' ' } else { c })
            .collect();
        whatlang::detect(&without_latin)?
    } else {
        whatlang::detect(&sample)?
    };
    let confidence = info.confidence() as f32;
    (confidence >= MIN_CONFIDENCE).then(|| (iso639_1(info.lang()).to_owned(), confidence))
}

/// The language of a short text (an OCR line, a sign, a file name, a query), two letters, or
/// `None` when nothing tells. Texts of 80 letters or more go to [`detect`] first. Shorter
/// ones (and longer ones it cannot judge), counting only the letters of words without
/// digits (so `qx7 zv9` is no language), down to four letters:
///
/// 1. **Script**: a script written by one language only (Greek, Hebrew, Hangul, kana, Thai,
///    Georgian, Armenian, ...) names it; Han without kana is Chinese; Cyrillic is Russian
///    unless letters only Ukrainian, Belarusian, Serbian or Macedonian use appear.
/// 2. **Latin letters**: lingua, whose models of up to five-letter sequences hold on a few
///    words where whatlang's trigram counts do not (measured by `cargo bench -p aperture
///    --bench translate`), over the languages [`SHORT_LANGUAGES`] lists.
///
/// ```
/// use aperture_analyze::detect_short_language;
///
/// assert_eq!(detect_short_language("Farmacia de guardia").as_deref(), Some("es"));
/// assert_eq!(detect_short_language("Pharmacie de garde").as_deref(), Some("fr"));
/// assert_eq!(detect_short_language("Аптека").as_deref(), Some("ru"));
/// assert_eq!(detect_short_language("42"), None);
/// assert_eq!(detect_short_language("qx7 zv9 k2p wq8"), None);
/// ```
pub fn detect_short(text: &str) -> Option<String> {
    // What a long text is judged by (a junk document can be megabytes).
    let text = &text[..text.floor_char_boundary(SHORT_SAMPLE_BYTES)];
    // Statistics over letters decide a longer text; a few words need more than that.
    if text.chars().filter(|c| c.is_alphabetic()).count() >= SHORT_LETTERS
        && let Some((code, _)) = detect(text)
    {
        return Some(code);
    }
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
        .filter(|w| !w.is_empty() && !w.chars().any(|c| c.is_numeric()))
        .collect();
    let letters: Vec<char> = words
        .iter()
        .flat_map(|w| w.chars())
        .filter(|c| c.is_alphabetic())
        .collect();
    let weight = letters.iter().filter(|c| !is_cjk(**c)).count()
        + CJK_WEIGHT * letters.iter().filter(|c| is_cjk(**c)).count();
    if weight < MIN_SHORT_LETTERS {
        return None;
    }
    if let Some(code) = by_script(&letters) {
        return Some(code.into());
    }
    if !letters.iter().any(|c| is_latin(*c)) {
        return None;
    }
    static DETECTOR: std::sync::OnceLock<lingua::LanguageDetector> = std::sync::OnceLock::new();
    let detector = DETECTOR
        .get_or_init(|| lingua::LanguageDetectorBuilder::from_languages(SHORT_LANGUAGES).build());
    let found = detector.detect_language_of(words.join(" "))?;
    Some(found.iso_code_639_1().to_string())
}

/// The short-text detector, for the versions of analyzers that use it.
pub const SHORT_DETECTOR: &str = "lingua-1.8";

/// How much of a text [`detect_short`] looks at, in bytes.
const SHORT_SAMPLE_BYTES: usize = 4096;

/// Texts with fewer letters than this are judged as short ones.
const SHORT_LETTERS: usize = 80;

/// Fewer letters than this and a short text is not judged at all.
const MIN_SHORT_LETTERS: usize = 4;

/// The languages written in Latin letters that a short text is taken to be in: those an
/// Apertium pair translates, and the most widely written others. Each costs memory (its
/// models load on first use: about 110 MB for all of them) and a chance of confusion.
pub const SHORT_LANGUAGES: &[lingua::Language] = &[
    lingua::Language::English,
    lingua::Language::Spanish,
    lingua::Language::French,
    lingua::Language::German,
    lingua::Language::Italian,
    lingua::Language::Portuguese,
    lingua::Language::Catalan,
    lingua::Language::Romanian,
    lingua::Language::Dutch,
    lingua::Language::Polish,
    lingua::Language::Turkish,
    lingua::Language::Swedish,
    lingua::Language::Basque,
    lingua::Language::Esperanto,
    lingua::Language::Icelandic,
    lingua::Language::Slovene,
    lingua::Language::Croatian,
    lingua::Language::Bosnian,
];

/// The language a text's script tells on its own, if it does.
fn by_script(letters: &[char]) -> Option<&'static str> {
    let sample: String = letters.iter().collect();
    let script = whatlang::detect_script(&sample)?;
    if script == whatlang::Script::Cyrillic {
        let has = |set: &str| {
            letters
                .iter()
                .any(|c| c.to_lowercase().any(|l| set.contains(l)))
        };
        return Some(if has("іїєґ") {
            "uk"
        } else if has("ў") {
            "be"
        } else if has("ѓќѕ") {
            "mk"
        } else if has("ђћџ") {
            "sr"
        } else {
            "ru"
        });
    }
    if letters.iter().any(|c| matches!(c, '\u{3040}'..='\u{30FF}')) {
        return Some("ja");
    }
    if script == whatlang::Script::Mandarin {
        return Some("zh");
    }
    match script.langs() {
        [only] => Some(iso639_1(*only)),
        _ => None,
    }
}

/// Latin letters: ASCII, Latin-1, Latin Extended A and B, IPA, Latin Extended Additional, and
/// full-width forms.
fn is_latin(c: char) -> bool {
    c.is_alphabetic()
        && matches!(c, '\0'..='\u{02AF}' | '\u{1E00}'..='\u{1EFF}' | '\u{FF21}'..='\u{FF5A}')
}

/// Han ideographs, kana and hangul: the scripts where a character is a word or a syllable.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{11FF}' // Hangul Jamo
        | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3130}'..='\u{318F}' // Hangul Compatibility Jamo
        | '\u{31F0}'..='\u{31FF}' // Katakana Phonetic Extensions
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{AC00}'..='\u{D7AF}' // Hangul Syllables
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
        | '\u{FF66}'..='\u{FF9F}' // Half-width Katakana
        | '\u{20000}'..='\u{3FFFF}' // CJK Extensions B and later
    )
}

/// All of a short text; the start, middle and end of a long one.
fn sample(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= SAMPLE_BYTES {
        return text.into();
    }
    let window = SAMPLE_BYTES / 3;
    let slice = |start: usize| {
        let start = text.floor_char_boundary(start);
        &text[start..text.floor_char_boundary(start + window)]
    };
    let middle = text.len() / 2 - window / 2;
    [slice(0), slice(middle), slice(text.len() - window)]
        .join("\n")
        .into()
}

/// whatlang names languages by ISO 639-3; every one it knows has a two-letter code.
fn iso639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Afr => "af",
        Lang::Aka => "ak",
        Lang::Amh => "am",
        Lang::Ara => "ar",
        Lang::Aze => "az",
        Lang::Bel => "be",
        Lang::Ben => "bn",
        Lang::Bul => "bg",
        Lang::Cat => "ca",
        Lang::Ces => "cs",
        Lang::Cmn => "zh",
        Lang::Cym => "cy",
        Lang::Dan => "da",
        Lang::Deu => "de",
        Lang::Ell => "el",
        Lang::Eng => "en",
        Lang::Epo => "eo",
        Lang::Est => "et",
        Lang::Fin => "fi",
        Lang::Fra => "fr",
        Lang::Guj => "gu",
        Lang::Heb => "he",
        Lang::Hin => "hi",
        Lang::Hrv => "hr",
        Lang::Hun => "hu",
        Lang::Hye => "hy",
        Lang::Ind => "id",
        Lang::Ita => "it",
        Lang::Jav => "jv",
        Lang::Jpn => "ja",
        Lang::Kan => "kn",
        Lang::Kat => "ka",
        Lang::Khm => "km",
        Lang::Kor => "ko",
        Lang::Lat => "la",
        Lang::Lav => "lv",
        Lang::Lit => "lt",
        Lang::Mal => "ml",
        Lang::Mar => "mr",
        Lang::Mkd => "mk",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Nld => "nl",
        Lang::Nob => "nb",
        Lang::Ori => "or",
        Lang::Pan => "pa",
        Lang::Pes => "fa",
        Lang::Pol => "pl",
        Lang::Por => "pt",
        Lang::Ron => "ro",
        Lang::Rus => "ru",
        Lang::Sin => "si",
        Lang::Slk => "sk",
        Lang::Slv => "sl",
        Lang::Sna => "sn",
        Lang::Spa => "es",
        Lang::Srp => "sr",
        Lang::Swe => "sv",
        Lang::Tam => "ta",
        Lang::Tel => "te",
        Lang::Tgl => "tl",
        Lang::Tha => "th",
        Lang::Tuk => "tk",
        Lang::Tur => "tr",
        Lang::Ukr => "uk",
        Lang::Urd => "ur",
        Lang::Uzb => "uz",
        Lang::Vie => "vi",
        Lang::Yid => "yi",
        Lang::Zul => "zu",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_a_two_letter_code() {
        let mut codes: Vec<_> = Lang::all().iter().map(|&l| iso639_1(l)).collect();
        assert!(codes.iter().all(|c| c.len() == 2), "{codes:?}");
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Lang::all().len());
    }

    #[test]
    fn scripts() {
        assert!(is_latin('a') && is_latin('ñ') && is_latin('ő') && is_latin('ệ'));
        assert!(!is_latin('я') && !is_latin('α') && !is_latin('1') && !is_latin('語'));
        assert!(is_cjk('語') && is_cjk('か') && is_cjk('カ') && is_cjk('한'));
        assert!(!is_cjk('a') && !is_cjk('я') && !is_cjk('、'));
    }

    #[test]
    fn latin_commands_do_not_outvote_the_prose() {
        let japanese = "apt-get install --no-install-recommends packagename で、\
            推奨パッケージなしでインストールします。/etc/apt/sources.list";
        assert_eq!(
            detect(japanese).map(|(code, _)| code).as_deref(),
            Some("ja")
        );
        let russian = "Команда dpkg-reconfigure --frontend=noninteractive tzdata заново \
            задаёт настройки уже установленного пакета, см. /usr/share/doc/tzdata/README.Debian \
            и https://wiki.debian.org/TimeZoneChanges";
        assert_eq!(detect(russian).map(|(code, _)| code).as_deref(), Some("ru"));
        // Latin letters are the most frequent in both: whatlang alone would go by them.
        for text in [japanese, russian] {
            assert_eq!(whatlang::detect_script(text), Some(whatlang::Script::Latin));
        }
    }

    #[test]
    fn short_text_is_not_judged() {
        assert_eq!(detect(""), None);
        assert_eq!(detect("12345 67890 !!!"), None);
        assert_eq!(detect("Hello page 1"), None);
    }

    #[test]
    fn long_text_is_sampled_at_its_start_middle_and_end() {
        let text = format!(
            "{}{}{}",
            "a".repeat(SAMPLE_BYTES),
            "é".repeat(SAMPLE_BYTES),
            "z".repeat(SAMPLE_BYTES)
        );
        let sample = sample(&text);
        assert!(sample.len() <= SAMPLE_BYTES + 2, "{}", sample.len());
        assert!(sample.starts_with('a') && sample.contains('é') && sample.ends_with('z'));
    }
}
