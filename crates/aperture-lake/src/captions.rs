//! Captions from transcript segments: WebVTT or SubRip, lines of at most 42 characters, two
//! lines a cue; a longer segment becomes several cues that share its time by their length.

use aperture_core::human::clock;
use aperture_core::{Insight, InsightValue, Place};

/// Characters a caption line holds at most (the broadcast norm).
pub const LINE: usize = 42;
/// Lines a cue holds at most.
const LINES: usize = 2;

/// A caption file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFormat {
    /// WebVTT, for browsers' `<track>`.
    Vtt,
    /// SubRip (`.srt`).
    Srt,
}

impl std::str::FromStr for CaptionFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vtt" => Ok(Self::Vtt),
            "srt" => Ok(Self::Srt),
            other => Err(format!("unknown caption format {other:?} (vtt or srt)")),
        }
    }
}

/// Why a file has no captions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoCaptions {
    /// Nothing was transcribed (yet).
    #[error(
        "no transcript (yet): `aperture index` transcribes audio and video when a Whisper model \
         is installed (`aperture models install whisper-base`)"
    )]
    NoTranscript,
    /// Speech was transcribed, in other languages.
    #[error("nothing was said in {asked} nor translated into it; the transcript is in {spoken}")]
    NotInLanguage {
        /// The language asked for.
        asked: String,
        /// The languages of the transcript, comma-separated.
        spoken: String,
    },
}

/// The captions of the transcript segments among `insights`, in time order. With a
/// `language`: the segments spoken in it, and the translations into it of the others (from
/// the `translate` analyzer's insights among `insights`), so that a Spanish interview has an
/// English track once translated.
pub fn captions(
    insights: &[Insight],
    format: CaptionFormat,
    language: Option<&str>,
) -> Result<String, NoCaptions> {
    let transcribed: Vec<&Insight> = insights
        .iter()
        .filter(|i| matches!(i.value, InsightValue::TranscriptSegment(_)))
        .collect();
    if transcribed.is_empty() {
        return Err(NoCaptions::NoTranscript);
    }
    let translated: Vec<(&Insight, &str)> = insights
        .iter()
        .filter_map(|i| match &i.value {
            InsightValue::Translation(t)
                if t.source == InsightValue::TRANSCRIPT_SEGMENT
                    && Some(t.target_language.as_str()) == language
                    && !t.text.trim().is_empty() =>
            {
                Some((i, t.text.as_str()))
            }
            _ => None,
        })
        .collect();
    if let Some(asked) = language
        && translated.is_empty()
        && !transcribed
            .iter()
            .any(|i| i.language.as_deref() == Some(asked))
    {
        let mut spoken: Vec<&str> = transcribed
            .iter()
            .filter_map(|i| i.language.as_deref())
            .collect();
        spoken.sort_unstable();
        spoken.dedup();
        return Err(NoCaptions::NotInLanguage {
            asked: asked.to_owned(),
            spoken: spoken.join(", "),
        });
    }
    let timed = |place: Place| match place {
        Place::Time {
            start_ms, end_ms, ..
        } => Some((start_ms, end_ms)),
        _ => None,
    };
    let mut segments: Vec<(u64, u64, &str)> = transcribed
        .iter()
        .filter(|i| language.is_none_or(|l| i.language.as_deref() == Some(l)))
        .filter_map(|i| match &i.value {
            InsightValue::TranscriptSegment(s) if !s.text.trim().is_empty() => {
                let (start, end) = timed(i.place)?;
                Some((start, end, s.text.as_str()))
            }
            _ => None,
        })
        .collect();
    // Translations fill the stretches not already spoken in the language.
    for (insight, text) in translated {
        if let Some((start, end)) = timed(insight.place)
            && !segments.iter().any(|s| s.0 == start && s.1 == end)
        {
            segments.push((start, end, text));
        }
    }
    segments.sort_by_key(|s| s.0);
    let mut out = String::new();
    if format == CaptionFormat::Vtt {
        out.push_str("WEBVTT\n\n");
    }
    let mut n = 0;
    for (start, end, text) in segments {
        for (from, to, lines) in cues(start, end, text) {
            n += 1;
            let stamp = |ms: u64| {
                let sep = if format == CaptionFormat::Srt {
                    ','
                } else {
                    '.'
                };
                format!("{}{sep}{:03}", clock(ms), ms % 1000)
            };
            if format == CaptionFormat::Srt {
                out.push_str(&format!("{n}\n"));
            }
            // WebVTT cue text is markup: `<`, `&` (and `>`, so a line never holds `-->`) are
            // escaped. SubRip has no escapes; an arrow in the text cannot end a cue there.
            let lines = match format {
                CaptionFormat::Vtt => lines
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;"),
                CaptionFormat::Srt => lines.replace("-->", "->"),
            };
            out.push_str(&format!("{} --> {}\n{}\n\n", stamp(from), stamp(to), lines));
        }
    }
    Ok(out)
}

/// One segment as cues: its words wrapped into lines of at most [`LINE`] characters, two
/// lines a cue, the segment's time shared by the cues' lengths.
fn cues(start: u64, end: u64, text: &str) -> Vec<(u64, u64, String)> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= LINE => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    let groups: Vec<String> = lines.chunks(LINES).map(|c| c.join("\n")).collect();
    let count = groups.len();
    let total: usize = groups
        .iter()
        .map(|g| g.chars().count())
        .sum::<usize>()
        .max(1);
    let span = end.saturating_sub(start);
    let mut at = start;
    let mut seen = 0;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            seen += g.chars().count();
            let to = if i + 1 == count {
                end
            } else {
                start + span * seen as u64 / total as u64
            };
            let cue = (at, to.max(at), g);
            at = to;
            cue
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aperture_core::value::TranscriptSegment;
    use aperture_core::{AssetId, UnixMillis};

    fn segment(start_ms: u64, end_ms: u64, text: &str, language: &str) -> Insight {
        Insight {
            asset: AssetId::new(),
            analyzer: "speech".into(),
            analyzer_version: "1".into(),
            model: None,
            model_version: None,
            value: TranscriptSegment {
                text: text.into(),
                no_speech_prob: None,
                language_prob: None,
                avg_logprob: None,
                words: Vec::new(),
            }
            .into(),
            confidence: None,
            language: Some(language.into()),
            place: Place::Time {
                start_ms,
                end_ms,
                rect: None,
            },
            created_at: UnixMillis(0),
        }
    }

    #[test]
    fn vtt_and_srt_with_short_lines_and_shared_time() {
        let long = "And so my fellow Americans, ask not what your country can do for you, \
                    ask what you can do for your country.";
        let insights = [
            segment(11_000, 22_000, long, "en"),
            segment(1_000, 3_500, "Hello world.", "en"),
            segment(4_000, 5_000, "Bonjour.", "fr"),
        ];
        let vtt = captions(&insights, CaptionFormat::Vtt, Some("en")).unwrap();
        assert!(
            vtt.starts_with("WEBVTT\n\n00:00:01.000 --> 00:00:03.500\nHello world.\n\n"),
            "{vtt}"
        );
        assert!(!vtt.contains("Bonjour"), "{vtt}");
        // Every line fits, every cue has at most two, times run forward and end at 22 s.
        let cues: Vec<&str> = vtt.trim().split("\n\n").skip(1).collect();
        assert_eq!(cues.len(), 3, "{vtt}");
        let mut last = 0;
        for cue in &cues {
            let mut lines = cue.lines();
            let times = lines.next().unwrap();
            let text: Vec<&str> = lines.collect();
            assert!(!text.is_empty() && text.len() <= 2, "{cue}");
            assert!(text.iter().all(|l| l.chars().count() <= LINE), "{cue}");
            let (from, to) = times.split_once(" --> ").unwrap();
            let ms = |t: &str| aperture_core::human::parse_clock(t).unwrap();
            assert!(ms(from) >= last && ms(to) > ms(from), "{vtt}");
            last = ms(to);
        }
        assert_eq!(last, 22_000);
        let words: Vec<&str> = cues[1..].iter().flat_map(|c| c.lines().skip(1)).collect();
        assert_eq!(words.join(" "), long);

        let srt = captions(&insights, CaptionFormat::Srt, None).unwrap();
        assert!(
            srt.starts_with("1\n00:00:01,000 --> 00:00:03,500\nHello world.\n\n2\n00:00:04,000"),
            "{srt}"
        );
        assert_eq!(
            captions(&insights, CaptionFormat::Srt, Some("es")),
            Err(NoCaptions::NotInLanguage {
                asked: "es".into(),
                spoken: "en, fr".into()
            })
        );
        assert_eq!(
            captions(&[], CaptionFormat::Vtt, None),
            Err(NoCaptions::NoTranscript)
        );
        // Markup said aloud stays text.
        let said = [segment(0, 1_000, "x <b>bold</b> & a --> b", "en")];
        let vtt = captions(&said, CaptionFormat::Vtt, None).unwrap();
        assert!(
            vtt.ends_with("x &lt;b&gt;bold&lt;/b&gt; &amp; a --&gt; b\n\n"),
            "{vtt}"
        );
        let srt = captions(&said, CaptionFormat::Srt, None).unwrap();
        assert!(srt.ends_with("x <b>bold</b> & a -> b\n\n"), "{srt}");
        assert_eq!("srt".parse::<CaptionFormat>(), Ok(CaptionFormat::Srt));
        assert!("ass".parse::<CaptionFormat>().is_err());
    }
}
