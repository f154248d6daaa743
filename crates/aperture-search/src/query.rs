//! The query language: words and "quoted phrases", `-excluded` words, and filters.
//!
//! ```text
//! harbour "no parking" -night kind:image collection:press lang:es label:boat
//! after:2024-03 before:2025 has:text similar:0192f3
//! ```
//!
//! Words and phrases go to the full-text index and, as one sentence, to the text embedding;
//! filters narrow both. Repeating a filter ORs its values (`kind:image kind:video`); different
//! filters AND. Filter values may be quoted (`collection:"field notes"`).
//!
//! Two switches change how words are matched: `translit:off` stops Latin words from finding
//! text in other scripts by its transliteration (`apteka` finds `аптека`), `translate:off`
//! stops the words from being translated into the languages of the collection.

use std::fmt;

use aperture_core::{MediaKind, UnixMillis};

/// Longest accepted query, in bytes: far above anything typed, far below a pasted file.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Most words and phrases in one query.
pub const MAX_TERMS: usize = 64;

/// The filter names, in the order the help lists them.
pub const FILTERS: [&str; 10] = [
    "kind",
    "collection",
    "lang",
    "label",
    "after",
    "before",
    "has",
    "similar",
    "translit",
    "translate",
];

/// What `has:` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Has {
    /// Any text: OCR lines or a document's text.
    Text,
    /// Text read by OCR.
    Ocr,
    /// Image labels.
    Labels,
    /// A GPS position.
    Gps,
}

impl Has {
    /// Every value, in the order the help lists them.
    pub const ALL: [Has; 4] = [Has::Text, Has::Ocr, Has::Labels, Has::Gps];

    /// The lowercase name written after `has:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Has::Text => "text",
            Has::Ocr => "ocr",
            Has::Labels => "labels",
            Has::Gps => "gps",
        }
    }
}

/// A word or phrase of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The word, or the phrase's words, as typed.
    pub text: String,
    /// Quoted: its words must appear together, in order.
    pub phrase: bool,
    /// Prefixed with `-`: assets containing it are left out.
    pub excluded: bool,
}

/// Everything but the words: what narrows a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `kind:`; empty for all kinds.
    pub kinds: Vec<MediaKind>,
    /// `collection:`, exact names; empty for all.
    pub collections: Vec<String>,
    /// ISO 639-1 codes, lowercase.
    pub langs: Vec<String>,
    /// `label:`, lowercase; any one will do, its words matched stemmed in English.
    pub labels: Vec<String>,
    /// Inclusive lower bound on the capture (else ingest) time.
    pub after: Option<UnixMillis>,
    /// Exclusive upper bound on the capture (else ingest) time.
    pub before: Option<UnixMillis>,
    /// `has:`; any one of them will do.
    pub has: Vec<Has>,
}

impl Filters {
    /// Whether nothing narrows the search.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The words and phrases, in the order typed.
    pub terms: Vec<Term>,
    /// The filters.
    pub filters: Filters,
    /// `similar:ID`: an asset id or a unique prefix of one.
    pub similar: Option<String>,
    /// `similar:ID@00:01:23`: of a video, the moment whose shot to compare (milliseconds).
    pub similar_at: Option<u64>,
    /// `translit:off`: Latin words do not match other scripts' transliterations.
    pub no_translit: bool,
    /// `translate:off`: the words are not translated.
    pub no_translate: bool,
    /// The words in other languages, each way matching as the typed words do (any one of
    /// them will do): filled in by a caller that translates queries, not by parsing.
    pub translations: Vec<Translated>,
}

/// The query's words translated into another language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// The language, two letters.
    pub language: String,
    /// The words, as one text.
    pub text: String,
}

impl Query {
    /// The words and phrases to rank by (excluded ones left out), as one sentence for the
    /// text embedding.
    pub fn sentence(&self) -> String {
        let words: Vec<&str> = self
            .terms
            .iter()
            .filter(|t| !t.excluded)
            .map(|t| t.text.as_str())
            .collect();
        words.join(" ")
    }

    /// Whether there is anything to rank by: words, or an asset to be similar to.
    pub fn ranks(&self) -> bool {
        self.similar.is_some() || self.terms.iter().any(|t| !t.excluded)
    }
}

/// Why a query was refused; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// What to change, in words.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

fn refuse<T>(message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        message: message.into(),
    })
}

/// Parses a query string. Never panics; every refusal says what is wrong.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    if input.len() > MAX_QUERY_BYTES {
        return refuse(format!(
            "the query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
            input.len()
        ));
    }
    if let Some(c) = input.chars().find(|c| c.is_control() && !c.is_whitespace()) {
        return refuse(format!(
            "the query contains a control character (U+{:04X})",
            c as u32
        ));
    }
    let mut query = Query::default();
    for token in tokens(input)? {
        match token {
            Token::Term(term) => {
                if query.terms.len() == MAX_TERMS {
                    return refuse(format!(
                        "the query has more than {MAX_TERMS} words and phrases"
                    ));
                }
                query.terms.push(term);
            }
            Token::Filter { name, value } => apply_filter(&mut query, &name, &value)?,
        }
    }
    if let (Some(after), Some(before)) = (query.filters.after, query.filters.before)
        && after >= before
    {
        return refuse("`after:` must be earlier than `before:`: nothing can match");
    }
    Ok(query)
}

enum Token {
    Term(Term),
    Filter { name: String, value: String },
}

fn tokens(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        let (excluded, body) = match rest.strip_prefix('-') {
            Some(body) if !body.starts_with(char::is_whitespace) && !body.is_empty() => {
                (true, body)
            }
            _ => (false, rest),
        };
        if let Some(quoted) = body.strip_prefix('"') {
            let (text, after) = closing_quote(quoted, input)?;
            push_term(&mut out, text, true, excluded);
            rest = after;
        } else {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            let word = &body[..end];
            match filter_name(word) {
                Some(name) if !excluded => {
                    let value_start = name.len() + 1;
                    let value = &body[value_start..];
                    let (value, after) = if let Some(quoted) = value.strip_prefix('"') {
                        closing_quote(quoted, input)?
                    } else {
                        let end = value.find(char::is_whitespace).unwrap_or(value.len());
                        (&value[..end], &value[end..])
                    };
                    if !FILTERS.contains(&name.to_lowercase().as_str()) {
                        return refuse(format!(
                            "unknown filter `{name}:`; the filters are {} (put text with a \
                             colon in quotes to search for it)",
                            FILTERS.map(|f| format!("{f}:")).join(", ")
                        ));
                    }
                    out.push(Token::Filter {
                        name: name.to_lowercase(),
                        value: value.to_owned(),
                    });
                    rest = after;
                }
                Some(name) => {
                    return refuse(format!(
                        "`-{name}:` cannot be excluded; exclude words with `-word`"
                    ));
                }
                None => {
                    if word.contains('"') {
                        return refuse(format!(
                            "a quote inside `{word}`: quotes go around whole phrases"
                        ));
                    }
                    push_term(&mut out, word, false, excluded);
                    rest = &body[end..];
                }
            }
        }
        rest = rest.trim_start();
    }
    Ok(out)
}

/// `name` when `word` is `name:value` with a name of letters: a filter, known or not.
fn filter_name(word: &str) -> Option<&str> {
    let (name, _) = word.split_once(':')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic())).then_some(name)
}

/// The text up to the closing quote, and what follows it.
fn closing_quote<'a>(after_open: &'a str, input: &str) -> Result<(&'a str, &'a str), QueryError> {
    match after_open.find('"') {
        Some(end) => Ok((&after_open[..end], &after_open[end + 1..])),
        None => refuse(format!(
            "unbalanced quote: a phrase starting at byte {} is never closed",
            input.len() - after_open.len() - 1
        )),
    }
}

fn push_term(out: &mut Vec<Token>, text: &str, phrase: bool, excluded: bool) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.is_empty() {
        out.push(Token::Term(Term {
            text,
            phrase,
            excluded,
        }));
    }
}

fn apply_filter(query: &mut Query, name: &str, value: &str) -> Result<(), QueryError> {
    let value = value.trim();
    if value.is_empty() {
        return refuse(format!("`{name}:` needs a value"));
    }
    let filters = &mut query.filters;
    match name {
        "kind" => {
            let kind = MediaKind::ALL
                .into_iter()
                .find(|k| k.as_str().eq_ignore_ascii_case(value))
                .ok_or_else(|| QueryError {
                    message: format!(
                        "unknown kind `{value}`; kinds are {}",
                        MediaKind::ALL.map(|k| k.as_str()).join(", ")
                    ),
                })?;
            filters.kinds.push(kind);
        }
        "collection" => filters.collections.push(value.to_owned()),
        "lang" => {
            let lang = value.to_ascii_lowercase();
            if lang.len() != 2 || !lang.chars().all(|c| c.is_ascii_lowercase()) {
                return refuse(format!(
                    "`lang:{value}`: use a two-letter ISO 639-1 code such as en, es, ru, zh"
                ));
            }
            filters.langs.push(lang);
        }
        "label" => filters.labels.push(value.to_lowercase()),
        "after" => {
            let (start, _) = date_range(name, value)?;
            filters.after = Some(filters.after.map_or(start, |a| a.max(start)));
        }
        "before" => {
            let (start, _) = date_range(name, value)?;
            filters.before = Some(filters.before.map_or(start, |b| b.min(start)));
        }
        "has" => {
            let has = Has::ALL
                .into_iter()
                .find(|h| h.as_str().eq_ignore_ascii_case(value))
                .ok_or_else(|| QueryError {
                    message: format!(
                        "unknown `has:{value}`; use {}",
                        Has::ALL.map(|h| format!("has:{}", h.as_str())).join(", ")
                    ),
                })?;
            filters.has.push(has);
        }
        "similar" => {
            if query.similar.is_some() {
                return refuse("only one `similar:` per query");
            }
            let (id, at) = match value.split_once('@') {
                Some((id, time)) => match aperture_core::human::parse_clock(time) {
                    Some(ms) => (id, Some(ms)),
                    None => {
                        return refuse(format!(
                            "`similar:{value}`: after `@` give a moment of the video, as \
                             00:01:23 or 83.5"
                        ));
                    }
                },
                None => (value, None),
            };
            if id.len() < 4 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return refuse(format!(
                    "`similar:{value}`: give an asset id, or at least its first 4 hex digits"
                ));
            }
            query.similar = Some(id.to_ascii_lowercase());
            query.similar_at = at;
        }
        "translit" | "translate" => {
            let on = match value.to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => return refuse(format!("`{name}:{value}`: use {name}:on or {name}:off")),
            };
            if name == "translit" {
                query.no_translit = !on;
            } else {
                query.no_translate = !on;
            }
        }
        _ => unreachable!("names are checked against FILTERS"),
    }
    Ok(())
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (UTC) as the start and end of that period.
pub fn date_range(name: &str, value: &str) -> Result<(UnixMillis, UnixMillis), QueryError> {
    let bad = || QueryError {
        message: format!("`{name}:{value}`: use a date as YYYY, YYYY-MM or YYYY-MM-DD"),
    };
    let parts: Vec<&str> = value.split('-').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    let number = |s: &str, digits: usize| -> Result<i64, QueryError> {
        if s.len() == digits && s.chars().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = number(parts[0], 4)?;
    let month = parts.get(1).map(|m| number(m, 2)).transpose()?;
    let day = parts.get(2).map(|d| number(d, 2)).transpose()?;
    if month.is_some_and(|m| !(1..=12).contains(&m)) {
        return Err(bad());
    }
    let (m, d) = (month.unwrap_or(1), day.unwrap_or(1));
    if d < 1 || d > days_in_month(year, m) {
        return Err(bad());
    }
    let start = days_from_civil(year, m, d);
    let end = match (month, day) {
        (None, _) => days_from_civil(year + 1, 1, 1),
        (Some(12), None) => days_from_civil(year + 1, 1, 1),
        (Some(m), None) => days_from_civil(year, m + 1, 1),
        (Some(_), Some(_)) => start + 1,
    };
    const DAY_MS: i64 = 86_400_000;
    Ok((UnixMillis(start * DAY_MS), UnixMillis(end * DAY_MS)))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time of a capture date as metadata stores it (`2024:05:01 10:00:00` from EXIF, or
/// ISO 8601), at day precision; `None` when it does not start with a plausible date.
pub fn capture_day(captured_at: &str) -> Option<UnixMillis> {
    let date = captured_at.get(..10)?;
    let digits: Vec<&str> = date.split([':', '-']).collect();
    if digits.len() != 3 {
        return None;
    }
    let value = format!("{}-{}-{}", digits[0], digits[1], digits[2]);
    date_range("date", &value).ok().map(|(start, _)| start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str) -> Term {
        Term {
            text: text.into(),
            phrase: false,
            excluded: false,
        }
    }

    #[test]
    fn words_phrases_exclusions_and_filters() {
        let q = parse(
            r#"harbour "no  parking" -night kind:image kind:VIDEO collection:"field notes"
               lang:ES label:Boat after:2024-03 before:2025 has:text similar:0192F3ab"#,
        )
        .unwrap();
        assert_eq!(
            q.terms,
            [
                term("harbour"),
                Term {
                    text: "no parking".into(),
                    phrase: true,
                    excluded: false
                },
                Term {
                    text: "night".into(),
                    phrase: false,
                    excluded: true
                },
            ]
        );
        assert_eq!(q.sentence(), "harbour no parking");
        assert_eq!(q.filters.kinds, [MediaKind::Image, MediaKind::Video]);
        assert_eq!(q.filters.collections, ["field notes"]);
        assert_eq!(q.filters.langs, ["es"]);
        assert_eq!(q.filters.labels, ["boat"]);
        assert_eq!(
            q.filters.after,
            Some(UnixMillis(days_from_civil(2024, 3, 1) * 86_400_000))
        );
        assert_eq!(
            q.filters.before,
            Some(UnixMillis(days_from_civil(2025, 1, 1) * 86_400_000))
        );
        assert_eq!(q.filters.has, [Has::Text]);
        assert_eq!(q.similar.as_deref(), Some("0192f3ab"));
        let q = parse("similar:0192f3ab@00:01:23.5").unwrap();
        assert_eq!(
            (q.similar.as_deref(), q.similar_at),
            (Some("0192f3ab"), Some(83_500))
        );
        assert!(q.ranks());
    }

    #[test]
    fn filters_alone_do_not_rank() {
        let q = parse("kind:image -blurry").unwrap();
        assert!(!q.ranks());
        assert!(parse("").unwrap() == Query::default());
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let cases = [
            (r#"cat "no parking"#, "unbalanced quote"),
            ("colour:red", "unknown filter `colour:`"),
            ("http://example.org", "unknown filter `http:`"),
            ("kind:spreadsheet", "unknown kind `spreadsheet`"),
            ("lang:english", "two-letter"),
            ("after:2024-13", "YYYY-MM"),
            ("after:2023-02-29", "YYYY-MM"),
            ("after:yesterday", "YYYY"),
            ("after:2025 before:2024", "earlier"),
            ("has:faces", "unknown `has:faces`"),
            ("similar:xyz", "asset id"),
            ("similar:abcd similar:abce", "only one"),
            ("similar:abcd@later", "a moment of the video"),
            ("kind:", "needs a value"),
            ("-kind:image", "cannot be excluded"),
            ("ca\"t", "quote inside"),
            ("tab\u{7}bell", "control character"),
        ];
        for (query, expected) in cases {
            let err = parse(query).expect_err(query);
            assert!(
                err.message.contains(expected),
                "{query:?}: {:?} lacks {expected:?}",
                err.message
            );
        }
        let huge = "a".repeat(1 << 20);
        assert!(parse(&huge).unwrap_err().message.contains("1048576 bytes"));
        let many = "w ".repeat(MAX_TERMS + 1);
        assert!(parse(&many).unwrap_err().message.contains("more than"));
    }

    #[test]
    fn text_with_colons_can_be_quoted() {
        let q = parse(r#""http://example.org" 10:30"#).unwrap();
        assert_eq!(q.terms[0].text, "http://example.org");
        assert_eq!(q.terms[1].text, "10:30", "a number is not a filter name");
    }

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let (start, end) = date_range("after", "2024-02").unwrap();
        assert_eq!((end.0 - start.0) / 86_400_000, 29, "2024 is a leap year");
        let (start, end) = date_range("after", "2024-12-31").unwrap();
        assert_eq!((end.0 - start.0) / 86_400_000, 1);
        assert_eq!(
            capture_day("2021:07:04 12:00:00"),
            Some(UnixMillis(days_from_civil(2021, 7, 4) * 86_400_000))
        );
        assert_eq!(
            capture_day("2021-07-04T12:00:00Z"),
            capture_day("2021:07:04")
        );
        assert_eq!(capture_day("0000:00:00 00:00:00"), None);
        assert_eq!(capture_day("junk"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in "\\PC{0,200}") {
            let _ = parse(&input);
        }

        #[test]
        fn never_panics_on_query_like_text(
            input in r#"(-?("[a-z ]{0,8}"?|[a-z]{1,6}:("?[a-z0-9-]{0,10}"?)?|[a-z0-9]{1,8}) ?){0,12}"#
        ) {
            let _ = parse(&input);
        }
    }
}
