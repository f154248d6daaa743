//! How text becomes terms: one language-neutral analyzer for every field, and a stemming one
//! per language for the text whose language was detected.
//!
//! The neutral analyzer splits words on anything that is not a letter or digit, lowercases and
//! folds accents (`Café` → `cafe`), and cuts Chinese, Japanese and Korean text, which has no
//! spaces, into overlapping character pairs (`東京都` → `東京`, `京都`), so a word of two or more
//! characters is found as a phrase of pairs wherever it occurs.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer, Token, TokenStream, Tokenizer, TokenizerManager,
};

/// The analyzer of every field that is not stemmed.
pub const NEUTRAL: &str = "aperture_neutral";
/// The analyzer of labels: English words, stemmed (`strawberries` finds `strawberry`).
pub const LABELS: &str = "aperture_labels";

/// Languages with a stemmer: ISO 639-1 code, and the stemmer.
pub const STEMMED: [(&str, Language); 18] = [
    ("ar", Language::Arabic),
    ("da", Language::Danish),
    ("de", Language::German),
    ("el", Language::Greek),
    ("en", Language::English),
    ("es", Language::Spanish),
    ("fi", Language::Finnish),
    ("fr", Language::French),
    ("hu", Language::Hungarian),
    ("it", Language::Italian),
    ("nl", Language::Dutch),
    ("no", Language::Norwegian),
    ("pt", Language::Portuguese),
    ("ro", Language::Romanian),
    ("ru", Language::Russian),
    ("sv", Language::Swedish),
    ("ta", Language::Tamil),
    ("tr", Language::Turkish),
];

/// Words longer than this (in bytes) are dropped: base64 runs and hashes, not words.
const MAX_WORD_BYTES: usize = 64;

/// The analyzer name of a stemmed language.
pub fn stemmed(code: &str) -> String {
    format!("aperture_{code}")
}

/// Registers Aperture's analyzers with an index's tokenizers (needed on every open), or with
/// the shared index's.
pub fn register(manager: &TokenizerManager) {
    manager.register(NEUTRAL, neutral());
    manager.register(
        LABELS,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build(),
    );
    for (code, language) in STEMMED {
        manager.register(
            &stemmed(code),
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
                .filter(LowerCaser)
                .filter(Stemmer::new(language))
                .filter(AsciiFoldingFilter)
                .build(),
        );
    }
}

/// The language-neutral analyzer (see the module documentation).
pub fn neutral() -> TextAnalyzer {
    TextAnalyzer::builder(WordsAndPairs::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The terms `analyzer` makes of `text`.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Whether a character belongs to a script written without spaces between words.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3400..=0x4DBF  // CJK Extension A
        | 0x4E00..=0x9FFF  // CJK Unified Ideographs
        | 0xAC00..=0xD7AF  // Hangul syllables
        | 0xF900..=0xFAFF  // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF)
}

/// Words of letters and digits, with runs of CJK characters cut into overlapping pairs.
#[derive(Clone, Default)]
pub struct WordsAndPairs {
    token: Token,
}

/// The tokens of one text, as [`WordsAndPairs`] cuts them.
pub struct WordsAndPairsStream<'a> {
    text: &'a str,
    /// Byte offset where scanning resumes.
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for WordsAndPairs {
    type TokenStream<'a> = WordsAndPairsStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordsAndPairsStream<'a> {
        self.token.reset();
        WordsAndPairsStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

impl WordsAndPairsStream<'_> {
    fn emit(&mut self, from: usize, to: usize) -> bool {
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..to]);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.token.position.wrapping_add(1);
        true
    }
}

impl TokenStream for WordsAndPairsStream<'_> {
    fn advance(&mut self) -> bool {
        let rest = &self.text[self.at..];
        let Some((skip, first)) = rest.char_indices().find(|(_, c)| c.is_alphanumeric()) else {
            self.at = self.text.len();
            return false;
        };
        let from = self.at + skip;
        if unspaced(first) {
            let mut chars = self.text[from..].char_indices().skip(1);
            let second = chars.next().filter(|(_, c)| unspaced(*c));
            return match second {
                // A pair; the next token starts at its second character.
                Some((offset, c)) => {
                    self.at = from + offset;
                    self.emit(from, from + offset + c.len_utf8())
                }
                // A lone character: only emitted when it is not the tail of a pair.
                None => {
                    self.at = from + first.len_utf8();
                    let after_pair = self.text[..from].chars().next_back().is_some_and(unspaced);
                    if after_pair {
                        self.advance()
                    } else {
                        self.emit(from, self.at)
                    }
                }
            };
        }
        let len = self.text[from..]
            .char_indices()
            .find(|(_, c)| !c.is_alphanumeric() || unspaced(*c))
            .map_or(self.text.len() - from, |(i, _)| i);
        self.at = from + len;
        self.emit(from, from + len)
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// `text` in Latin letters when it has letters of other alphabets (Cyrillic, Greek, Arabic,
/// Hebrew, Armenian, Georgian, ...): `аптека` → `apteka`; `None` for text in Latin letters
/// only, and for CJK, whose romanisations are not what people type for them.
pub fn transliterated(text: &str) -> Option<String> {
    let other = text
        .chars()
        .any(|c| c.is_alphabetic() && !c.is_ascii() && !is_latin_or_cjk(c));
    other.then(|| deunicode::deunicode(text))
}

/// Latin letters (with their accents), and the CJK scripts.
fn is_latin_or_cjk(c: char) -> bool {
    matches!(c,
        '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}'
        | '\u{1100}'..='\u{11FF}' | '\u{3040}'..='\u{30FF}' | '\u{3130}'..='\u{318F}'
        | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}'
        | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3FFFF}')
}

/// Where `words` (each a word or phrase) occur in `text` when its words are transliterated
/// into Latin letters: byte ranges of the original words, for highlighting a Cyrillic or
/// Greek word that a Latin query found.
pub fn transliterated_matches(
    analyzer: &mut TextAnalyzer,
    text: &str,
    words: &[&str],
) -> Vec<std::ops::Range<usize>> {
    let wanted: Vec<String> = words.iter().flat_map(|t| terms(analyzer, t)).collect();
    let mut neutral = neutral();
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let token = stream.token();
        let Some(latin) = transliterated(&token.text) else {
            continue;
        };
        let latin = terms(&mut neutral, &latin);
        if latin.len() == 1 && wanted.contains(&latin[0]) {
            out.push(token.offset_from..token.offset_to);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_words_fold_and_pair() {
        let mut a = neutral();
        assert_eq!(
            terms(&mut a, "Café NO-PARKING, 2024!"),
            ["cafe", "no", "parking", "2024"]
        );
        assert_eq!(
            terms(&mut a, "東京都に行く"),
            ["東京", "京都", "都に", "に行", "行く"]
        );
        assert_eq!(terms(&mut a, "猫 and 犬"), ["猫", "and", "犬"]);
        assert_eq!(terms(&mut a, "Tokyo東京"), ["tokyo", "東京"]);
        assert_eq!(terms(&mut a, "Привет, мир"), ["привет", "мир"]);
        assert!(terms(&mut a, " ,.;").is_empty());
        let long = "x".repeat(100);
        assert_eq!(terms(&mut a, &format!("a {long} b")), ["a", "b"]);
    }

    #[test]
    fn pairs_of_a_word_are_a_phrase_inside_longer_text() {
        let mut a = neutral();
        let word = terms(&mut a, "京都");
        let text = terms(&mut a, "東京都に行く");
        assert!(text.windows(word.len()).any(|w| w == word));
    }

    #[test]
    fn stemmers_join_word_forms() {
        let tokenizers = TokenizerManager::default();
        register(&tokenizers);
        let mut en = tokenizers.get(&stemmed("en")).unwrap();
        assert_eq!(terms(&mut en, "running"), terms(&mut en, "runs"));
        let mut es = tokenizers.get(&stemmed("es")).unwrap();
        assert_eq!(terms(&mut es, "estaciones"), terms(&mut es, "estación"));
        let mut ru = tokenizers.get(&stemmed("ru")).unwrap();
        assert_eq!(terms(&mut ru, "книги"), terms(&mut ru, "книга"));
        let mut labels = tokenizers.get(LABELS).unwrap();
        assert_eq!(
            terms(&mut labels, "strawberries"),
            terms(&mut labels, "strawberry")
        );
    }

    #[test]
    fn other_scripts_are_transliterated_and_latin_is_left_alone() {
        assert_eq!(
            transliterated("Аптека на углу").as_deref(),
            Some("Apteka na uglu")
        );
        assert_eq!(transliterated("φαρμακείο").as_deref(), Some("pharmakeio"));
        assert_eq!(transliterated("Farmacia de guardia"), None);
        assert_eq!(transliterated("東京"), None);
        let mut analyzer = neutral();
        let text = "Вход: аптека, 24 часа";
        let found = transliterated_matches(&mut analyzer, text, &["apteka"]);
        assert_eq!(
            found.iter().map(|r| &text[r.clone()]).collect::<Vec<_>>(),
            ["аптека"]
        );
        assert!(transliterated_matches(&mut analyzer, text, &["apt"]).is_empty());
    }
}
