//! Licence plates are not read. Text that looks like a number plate, found on a picture that
//! shows a vehicle, is neither stored nor indexed: with capture times and places, plates would
//! make the lake a vehicle tracker. "Looks like a plate" is one of the pattern families below
//! (the national formats of Germany, the United Kingdom, France and Italy, Spain, the
//! Netherlands, Poland and the United States), or a part of one (a few short groups of letters
//! and digits: what is read of a plate cut in two); "shows a vehicle" is an ImageNet label of a
//! road vehicle among the picture's labels (or, where no labels model is installed, any
//! picture). A collection of documents can read plates anyway (`--plates read`).

use aperture_core::{Insight, InsightValue, Place, Rect};

/// ImageNet-1k classes of road vehicles and the parts of them plates are seen with.
const VEHICLE_CLASSES: &[u32] = &[
    407, // ambulance
    436, // beach wagon, station wagon
    468, // cab, taxi
    479, // car wheel
    511, // convertible
    555, // fire engine
    569, // garbage truck
    573, // go-kart
    581, // grille, radiator grille
    586, // half track
    609, // jeep
    627, // limousine
    654, // minibus
    656, // minivan
    661, // Model T
    665, // moped
    670, // motor scooter
    675, // moving van
    717, // pickup
    734, // police van
    751, // racer, race car
    757, // recreational vehicle
    779, // school bus
    803, // snowplow
    817, // sports car
    864, // tow truck
    866, // tractor
    867, // trailer truck
    874, // trolleybus
];

/// Whether the labels at `place` (or of the whole picture) name a road vehicle.
pub fn shows_vehicle(labels: &[Insight], place: &Place) -> bool {
    labels
        .iter()
        .any(|i| names_vehicle(i) && same_picture(&i.place, place))
}

/// Whether `label` names a road vehicle (one of [`VEHICLE_CLASSES`]).
fn names_vehicle(label: &Insight) -> bool {
    matches!(&label.value, InsightValue::Label(l) if VEHICLE_CLASSES.contains(&l.class))
}

/// Whether OCR's result, made with the labels `before`, holds with the labels `after`: both
/// are known (OCR on a picture waits for its labels) and they show road vehicles in the same
/// places, so [`shows_vehicle`] answers alike for every line. A new image classifier then
/// leaves OCR's work alone on every picture whose vehicles it sees as the old one did.
pub fn same_vehicles(before: &[Insight], after: &[Insight]) -> bool {
    let vehicles = |labels: &[Insight]| -> Vec<Place> {
        labels
            .iter()
            .filter(|i| names_vehicle(i))
            .map(|i| i.place)
            .collect()
    };
    // Class numbers are ImageNet's: labels of another taxonomy (a new kind of classifier)
    // are never taken as the same.
    let imagenet = |labels: &[Insight]| {
        !labels.is_empty()
            && labels
                .iter()
                .all(|i| !matches!(&i.value, InsightValue::Label(l) if l.taxonomy != "imagenet-1k"))
    };
    let (was, is) = (vehicles(before), vehicles(after));
    imagenet(before)
        && imagenet(after)
        && was.iter().all(|p| is.contains(p))
        && is.iter().all(|p| was.contains(p))
}

/// Whether two places are of the same picture: the whole image, or the same shot of a video.
fn same_picture(label: &Place, line: &Place) -> bool {
    match (label, line) {
        (
            Place::Time {
                start_ms: a,
                end_ms: b,
                ..
            },
            Place::Time {
                start_ms: c,
                end_ms: d,
                ..
            },
        ) => a < d && c < b,
        (Place::Time { .. }, _) | (_, Place::Time { .. }) => false,
        _ => true,
    }
}

/// The pattern family `text` fits, if it looks like a licence plate: the national formats, on
/// the text with case, dots and dashes made uniform, and a leading country code (the EU band's
/// `D`, `F`, `NL`, `GB`, ...) allowed.
pub fn plate_family(text: &str) -> Option<&'static str> {
    let dashes = ['-', '‐', '‑', '–', '—', '−'];
    let dashed = text.contains(dashes);
    // Dots and middle dots join (`B.MK`); anything else that is no letter or digit separates
    // (dashes, slashes, a border read as `|`, a trailing comma).
    let upper: String = text
        .chars()
        .filter(|c| !matches!(c, '·' | '•' | '.' | ':'))
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let joined = words.concat();
    if !(4..=10).contains(&joined.chars().count())
        || !joined.chars().all(|c| c.is_ascii_alphanumeric())
        || !joined.chars().any(|c| c.is_ascii_digit())
        || !joined.chars().any(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    let countries = ["D", "F", "I", "E", "NL", "GB", "UK", "PL", "B", "A", "CH"];
    let mut candidates = vec![&words[..]];
    if words.len() > 1 && countries.contains(&words[0]) {
        candidates.push(&words[1..]);
    }
    candidates
        .iter()
        .find_map(|w| family_of(w, dashed))
        .or_else(|| {
            // Part of a plate, as a detector that cuts a plate in two reads it (`WA 783` of
            // `P WA 783`), or a format not listed: up to three short groups of letters and
            // digits.
            candidates
                .iter()
                .any(|w| w.len() <= 3 && w.iter().all(|w| plate_group(w)))
                .then_some("part")
        })
}

/// Letters as `A`, digits as `9`: `MK4021` is `AA9999`.
fn shape(word: &str) -> String {
    word.chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { 'A' })
        .collect()
}

fn family_of(words: &[&str], dashed: bool) -> Option<&'static str> {
    let shapes: Vec<String> = words.iter().map(|w| shape(w)).collect();
    let spaced = shapes.join(" ");
    let joined = shapes.concat();
    let is = |list: &[&str]| list.contains(&joined.as_str()) || list.contains(&spaced.as_str());
    let letters = |w: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&w.len()) && w.chars().all(|c| c == 'A')
    };
    // Germany: district (1-3 letters), 1-2 letters, 1-4 digits and an optional E or H
    // (electric, historic), in three groups, or the last two run together.
    let german_tail = |w: &str| {
        let digits = w.trim_end_matches(['E', 'H']);
        w.len() - digits.len() <= 1
            && (1..=4).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
    };
    let german = match words {
        [district, letters_, digits] => {
            letters(&shapes[0], 1..=3)
                && letters(&shapes[1], 1..=2)
                && german_tail(digits)
                && district.len() + letters_.len() <= 4
        }
        [_, rest] => {
            let n = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
            letters(&shapes[0], 1..=3) && (1..=2).contains(&n) && german_tail(&rest[n..])
        }
        _ => false,
    };
    if german {
        return Some("de");
    }
    if is(&["AA99AAA", "AA99 AAA"]) {
        return Some("uk");
    }
    if is(&["AA999AA", "AA 999 AA"]) {
        return Some("fr-it");
    }
    if is(&["9999AAA", "9999 AAA"]) {
        return Some("es");
    }
    // The Netherlands: three dashed groups, each all letters or all digits, six in all.
    if dashed
        && words.len() == 3
        && joined.len() == 6
        && shapes
            .iter()
            .all(|s| s.chars().all(|c| c == 'A') || s.chars().all(|c| c == '9'))
    {
        return Some("nl");
    }
    // Poland: a 2-3 letter district, then five letters and digits starting with a digit.
    if words.len() == 2
        && letters(&shapes[0], 2..=3)
        && shapes[1].len() == 5
        && shapes[1].starts_with('9')
    {
        return Some("pl");
    }
    // The United States: the common state serials.
    if is(&["9AAA999", "AAA9999", "AAA 9999", "AAA 999", "999 AAA"]) {
        return Some("us");
    }
    None
}

/// A group of a plate, or groups read as one word: at most three runs, each of up to 3
/// letters or up to 5 digits (`WA`, `783`, `WA783`, `AB12CD`, `12ABC3`), 8 characters in all.
fn plate_group(word: &str) -> bool {
    let runs: Vec<&[u8]> = word
        .as_bytes()
        .chunk_by(|a, b| a.is_ascii_digit() == b.is_ascii_digit())
        .collect();
    word.len() <= 8
        && (1..=3).contains(&runs.len())
        && runs.iter().all(|run| {
            if run[0].is_ascii_digit() {
                run.len() <= 5
            } else {
                run.len() <= 3 && run.iter().all(u8::is_ascii_alphabetic)
            }
        })
}

/// The lines that are a plate together though not each alone: two or three lines of one
/// picture (or shot) side by side on a row, taken left to right, or two stacked (a plate of
/// two rows), that fit [`plate_family`] joined. A detector that cut `P WA 783` into `P WA`
/// and `783` read it so. `lines` are the text and place of each line; returns their indices.
pub fn split_plates(lines: &[(&str, &Place)]) -> Vec<usize> {
    let boxes: Vec<_> = lines.iter().map(|(_, p)| picture_box(p)).collect();
    let mut found = Vec::new();
    let mut check = |group: &[usize]| {
        let joined: Vec<&str> = group.iter().map(|&i| lines[i].0).collect();
        if plate_family(&joined.join(" ")).is_some() {
            found.extend_from_slice(group);
        }
    };
    for (i, a) in boxes.iter().enumerate() {
        let Some((pa, ra)) = a else { continue };
        // The two nearest lines to its right on its row, and the nearest one below it.
        let mut right: Vec<(f32, usize)> = Vec::new();
        let mut below: Option<(f32, usize)> = None;
        for (j, b) in boxes.iter().enumerate() {
            let Some((pb, rb)) = b else { continue };
            if i == j || pa != pb {
                continue;
            }
            if overlap(ra.y, ra.h, rb.y, rb.h) >= 0.5 * ra.h.min(rb.h) && rb.x > ra.x {
                right.push((rb.x, j));
            }
            let gap = rb.y - (ra.y + ra.h);
            if overlap(ra.x, ra.w, rb.x, rb.w) >= 0.5 * ra.w.min(rb.w)
                && rb.y > ra.y
                && gap < ra.h.max(rb.h)
                && below.is_none_or(|(y, _)| rb.y < y)
            {
                below = Some((rb.y, j));
            }
        }
        right.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let [(_, r1), rest @ ..] = right.as_slice() {
            check(&[i, *r1]);
            if let [(_, r2), ..] = rest {
                check(&[i, *r1, *r2]);
            }
        }
        if let Some((_, j)) = below {
            check(&[i, j]);
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// A line's box and the picture it is in (`None` for an image, the time range of a video's
/// shot), from the place's columns. (Pages of documents never reach the plate rules: a
/// scanned page is no picture of a vehicle.)
fn picture_box(place: &Place) -> Option<(Option<(u64, u64)>, Rect)> {
    match place.columns() {
        (None, time, Some(rect)) => Some((time, rect)),
        _ => None,
    }
}

/// How much two spans (start, length) overlap; negative when they do not.
fn overlap(a: f32, a_len: f32, b: f32, b_len: f32) -> f32 {
    (a + a_len).min(b + b_len) - a.max(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shot(start_ms: u64, length_ms: u64) -> Place {
        Place::Time {
            start_ms,
            end_ms: start_ms + length_ms,
            rect: None,
        }
    }

    fn label(class: u32, place: Place) -> Insight {
        Insight {
            asset: aperture_core::AssetId::new(),
            analyzer: "labels".into(),
            analyzer_version: "1".into(),
            model: None,
            model_version: None,
            value: aperture_core::value::Label {
                name: String::new(),
                class,
                rank: 1,
                taxonomy: "imagenet-1k".into(),
            }
            .into(),
            confidence: Some(0.5),
            language: None,
            place,
            created_at: aperture_core::UnixMillis(0),
        }
    }

    #[test]
    fn plates_of_five_countries_and_more_are_recognised() {
        for (text, family) in [
            ("B MK 4021", "de"),
            ("M-XY 123", "de"),
            ("D HH AB 77E", "de"),
            ("AB12 CDE", "uk"),
            ("GB AB12CDE", "uk"),
            ("AB-123-CD", "fr-it"),
            ("F AB 123 CD", "fr-it"),
            ("1234 BCD", "es"),
            ("E 1234-BCD", "es"),
            ("12-ABC-3", "nl"),
            ("AB-12-CD", "nl"),
            ("WX 12345", "pl"),
            ("7ABC123", "us"),
            ("ABC-1234", "us"),
            // Parts of plates, groups read as one word, other separators.
            ("WA 783", "part"),
            ("WA783", "part"),
            ("D 12 AB", "part"),
            ("AB12CD", "part"),
            ("12ABC3", "part"),
            ("WX12345", "part"),
            ("NL 12 ABC 3", "part"),
            ("F AB 123 C", "part"),
            ("AB–123–CD", "fr-it"),
            ("WA/783", "part"),
            ("WA_783", "part"),
            ("|P WA 783", "de"),
            ("B‐MK‐4021,", "de"),
            // What the rule knowingly takes from pictures of vehicles (and, without a labels
            // model, from every picture): makes and models, times, short codes.
            ("GT 500", "part"),
            ("BMW 320i", "part"),
            ("F-150", "part"),
            ("911 GT3", "part"),
            ("10 AM", "part"),
            ("USB 3.0", "part"),
        ] {
            assert_eq!(plate_family(text), Some(family), "{text}");
        }
    }

    #[test]
    fn a_plate_cut_into_lines_is_found_whole() {
        let at = |x: f32, y: f32| Place::Region {
            rect: aperture_core::Rect {
                x,
                y,
                w: 0.1,
                h: 0.05,
            },
        };
        let (a, b, c, d, e) = (
            at(0.1, 0.5),
            at(0.25, 0.51),
            at(0.4, 0.49),
            at(0.1, 0.8),
            at(0.3, 0.8),
        );
        let lines = [
            ("P WA", &a),
            ("783", &b),
            ("Mercedes", &c),
            ("B", &d),
            ("MK 4021", &e),
        ];
        assert_eq!(split_plates(&lines), [0, 1, 3, 4]);
        // Tilted, so that reading order puts the right half first; a word between them in
        // reading order but further right.
        let (left, right, far) = (at(0.1, 0.5), at(0.22, 0.48), at(0.8, 0.505));
        assert_eq!(split_plates(&[("4021", &right), ("D B MK", &left)]), [0, 1]);
        assert_eq!(
            split_plates(&[("P WA", &left), ("AUDI", &far), ("783", &right)]),
            [0, 2]
        );
        // Two rows, as on a motorcycle.
        let (top, bottom) = (at(0.4, 0.6), at(0.4, 0.66));
        assert_eq!(split_plates(&[("B MK", &top), ("4021", &bottom)]), [0, 1]);
        // Far apart on different rows, or in different shots of a video: not joined.
        assert!(split_plates(&[("P WA", &a), ("783", &d)]).is_empty());
        let shot = |start_ms| Place::Time {
            start_ms,
            end_ms: start_ms + 1_000,
            rect: Some(aperture_core::Rect {
                x: 0.1,
                y: 0.5,
                w: 0.1,
                h: 0.05,
            }),
        };
        let (s1, s2) = (shot(0), shot(1_000));
        let moved = Place::Time {
            start_ms: 0,
            end_ms: 1_000,
            rect: Some(aperture_core::Rect {
                x: 0.25,
                y: 0.5,
                w: 0.1,
                h: 0.05,
            }),
        };
        assert!(split_plates(&[("P WA", &s1), ("783", &s2)]).is_empty());
        assert_eq!(split_plates(&[("P WA", &s1), ("783", &moved)]), [0, 1]);
    }

    #[test]
    fn the_same_vehicles_are_those_in_the_same_pictures() {
        let shot = |start_ms| shot(start_ms, 1_000);
        let (car, fish) = (817, 1);
        let old = [label(car, shot(0)), label(fish, shot(5_000))];
        assert!(same_vehicles(
            &old,
            &[label(fish, shot(5_000)), label(car, shot(0))]
        ));
        assert!(same_vehicles(
            &old,
            &[label(car, shot(0)), label(864, shot(0))]
        ));
        // A vehicle in another shot, or none, or labels not known on one side: not the same.
        assert!(!same_vehicles(&old, &[label(car, shot(5_000))]));
        assert!(!same_vehicles(&old, &[label(fish, shot(0))]));
        assert!(!same_vehicles(&[], &[label(fish, shot(0))]));
        assert!(!same_vehicles(&[label(fish, shot(0))], &[]));
        let mut other = label(car, shot(0));
        if let InsightValue::Label(l) = &mut other.value {
            l.taxonomy = "open-images".into();
        }
        assert!(!same_vehicles(&old, &[label(car, shot(0)), other]));
    }

    #[test]
    fn ordinary_text_is_not_a_plate() {
        for text in [
            "Invoice #4521 was paid on 12 March 2024",
            "NO PARKING",
            "Platform 7",
            "08:45",
            "1987",
            "ABCDEF",
            "Chapter 3",
            "(555) 013-2297",
            "12 March 2024",
            "1.8 m long",
            "Page 12 of 40",
            "YAMAHA",
            "Route 66",
            "A4",
            "P WA",
            "579184",
            "Tel 0301 2345 67",
        ] {
            assert_eq!(plate_family(text), None, "{text}");
        }
    }

    /// A place a label or a line of text can have: the whole image, a region of it, or a
    /// stretch of a video (overlapping one another or not).
    fn place() -> impl Strategy<Value = Place> {
        prop_oneof![
            Just(Place::Whole),
            Just(Place::Region {
                rect: aperture_core::Rect {
                    x: 0.1,
                    y: 0.1,
                    w: 0.2,
                    h: 0.1,
                },
            }),
            (0u64..4, 1u64..3).prop_map(|(start, length)| shot(start * 500, length * 500)),
        ]
    }

    /// Labels of `classes` at those places.
    fn labels(classes: Vec<u32>) -> impl Strategy<Value = Vec<Insight>> {
        proptest::collection::vec(
            (prop::sample::select(classes), place()).prop_map(|(class, place)| label(class, place)),
            0..6,
        )
    }

    proptest! {
        /// What OCR keeps on the strength of `same_vehicles` is right: where it says the
        /// vehicles are the same, every line, wherever it is, is taken for a plate on a vehicle
        /// (or not) alike with the old labels and the new. The new labels are either drawn
        /// afresh or the old vehicles, in another order, among other labels.
        #[test]
        fn the_same_vehicles_show_a_vehicle_at_the_same_places(
            before in labels(vec![817, 864, 1, 2]),
            fresh in labels(vec![817, 864, 1, 2]),
            others in labels(vec![1, 2]),
            kept in any::<bool>(),
            lines in proptest::collection::vec(place(), 1..6),
        ) {
            let after: Vec<Insight> = if kept {
                let vehicles = before.iter().rev().filter(|i| names_vehicle(i)).cloned();
                others.into_iter().chain(vehicles).collect()
            } else {
                fresh
            };
            let same = same_vehicles(&before, &after);
            if kept && !before.is_empty() && !after.is_empty() {
                prop_assert!(same, "the old vehicles are kept but not taken as the same");
            }
            if same {
                for line in &lines {
                    prop_assert_eq!(
                        shows_vehicle(&before, line),
                        shows_vehicle(&after, line),
                        "{:?}", line
                    );
                }
            }
        }
    }
}
