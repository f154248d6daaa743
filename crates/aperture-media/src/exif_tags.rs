//! Reading the EXIF fields we keep: orientation, capture time, camera, position.

use aperture_core::{Gps, MediaMetadata};
use exif::{Context, Exif, Field, In, Reader, Tag, Value};

/// TIFF's NewSubfileType, which kamadak-exif has no name for.
const NEW_SUBFILE_TYPE: Tag = Tag(Context::Tiff, 0x00FE);

/// Parses a raw EXIF (TIFF) block into `meta`. A block that is damaged in parts still gives
/// what could be read; one that cannot be read at all is noted as a problem.
pub(crate) fn read_raw(tiff: Vec<u8>, meta: &mut MediaMetadata) {
    let mut reader = Reader::new();
    reader.continue_on_error(true);
    let exif = reader.read_raw(tiff).or_else(|e| {
        e.distill_partial_result(|errors| {
            if let Some(first) = errors.first() {
                meta.problems
                    .push(format!("cannot read all exif fields: {first}"));
            }
        })
    });
    match exif {
        Ok(exif) => apply(&exif, meta),
        Err(e) => meta.problems.push(format!("cannot read exif: {e}")),
    }
}

/// Copies the fields we keep from `exif` into `meta`.
pub(crate) fn apply(exif: &Exif, meta: &mut MediaMetadata) {
    let field = |tag| exif.get_field(tag, In::PRIMARY);
    meta.orientation = field(Tag::Orientation)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|o| u16::try_from(o).ok())
        .filter(|o| (1..=8).contains(o));
    meta.captured_at = [
        (Tag::DateTimeOriginal, Tag::OffsetTimeOriginal),
        (Tag::DateTimeDigitized, Tag::OffsetTimeDigitized),
        (Tag::DateTime, Tag::OffsetTime),
    ]
    .into_iter()
    .find_map(|(time, offset)| date_time(field(time)?, field(offset)));
    meta.camera_make = field(Tag::Make).and_then(text);
    meta.camera_model = field(Tag::Model).and_then(text);
    meta.gps = gps(exif);
    if meta.width.is_none() {
        meta.width = field(Tag::PixelXDimension).and_then(|f| f.value.get_uint(0));
        meta.height = field(Tag::PixelYDimension).and_then(|f| f.value.get_uint(0));
    }
}

/// Whether the first image of a TIFF-based file is a reduced-resolution preview, as in most
/// camera raw files: its size is not the photo's.
pub(crate) fn primary_is_preview(exif: &Exif) -> bool {
    exif.get_field(NEW_SUBFILE_TYPE, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .is_some_and(|t| t & 1 == 1)
}

/// An EXIF date-time as ISO 8601 (`2024-05-01T12:34:56`), with the offset (`+02:00`) when the
/// file records one. Blank and impossible dates give `None`.
fn date_time(time: &Field, offset: Option<&Field>) -> Option<String> {
    let mut dt = exif::DateTime::from_ascii(first_ascii(time)?).ok()?;
    let valid = dt.year > 0
        && (1..=12).contains(&dt.month)
        && (1..=31).contains(&dt.day)
        && dt.hour < 24
        && dt.minute < 60
        && dt.second <= 60;
    if !valid {
        return None;
    }
    if let Some(offset) = offset.and_then(first_ascii) {
        // A blank or malformed offset just leaves the time local.
        let _ = dt.parse_offset(offset);
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
    );
    if let Some(minutes) = dt.offset {
        let sign = if minutes < 0 { '-' } else { '+' };
        let minutes = minutes.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
    }
    Some(out)
}

/// An ASCII field as trimmed text, without the NULs some cameras pad with.
fn text(field: &Field) -> Option<String> {
    let raw = first_ascii(field)?;
    let text = String::from_utf8_lossy(raw).replace('\0', "");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn first_ascii(field: &Field) -> Option<&[u8]> {
    match &field.value {
        Value::Ascii(values) => values.first().map(Vec::as_slice),
        _ => None,
    }
}

/// The position in signed decimal degrees. `(0, 0)` is what receivers without a fix write, not
/// a place anyone took a photo, so it counts as no position.
fn gps(exif: &Exif) -> Option<Gps> {
    let field = |tag| exif.get_field(tag, In::PRIMARY);
    let latitude = degrees(field(Tag::GPSLatitude)?)? * sign(field(Tag::GPSLatitudeRef), b'S');
    let longitude = degrees(field(Tag::GPSLongitude)?)? * sign(field(Tag::GPSLongitudeRef), b'W');
    let plausible = latitude.abs() <= 90.0 && longitude.abs() <= 180.0;
    if !plausible || (latitude == 0.0 && longitude == 0.0) {
        return None;
    }
    let altitude = field(Tag::GPSAltitude)
        .and_then(|f| rationals(&f.value)?.first().copied())
        .filter(|a| a.is_finite())
        .map(|a| {
            let below_sea = field(Tag::GPSAltitudeRef).and_then(|f| f.value.get_uint(0)) == Some(1);
            if below_sea { -a } else { a }
        });
    Some(Gps {
        latitude,
        longitude,
        altitude,
    })
}

/// Degrees, minutes and seconds (any trailing ones may be missing) as decimal degrees.
fn degrees(field: &Field) -> Option<f64> {
    let parts = rationals(&field.value)?;
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let value: f64 = parts
        .iter()
        .zip([1.0, 60.0, 3600.0])
        .map(|(part, scale)| part / scale)
        .sum();
    value.is_finite().then_some(value)
}

fn rationals(value: &Value) -> Option<Vec<f64>> {
    match value {
        Value::Rational(parts) => Some(parts.iter().map(|r| r.to_f64()).collect()),
        _ => None,
    }
}

/// `-1.0` when the reference field says `negative` (`S`, `W`), else `1.0`.
fn sign(reference: Option<&Field>, negative: u8) -> f64 {
    let is_negative = reference
        .and_then(first_ascii)
        .and_then(|r| r.first())
        .is_some_and(|&r| r.eq_ignore_ascii_case(&negative));
    if is_negative { -1.0 } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exif::Rational;

    fn ascii(tag: Tag, text: &str) -> Field {
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![text.as_bytes().to_vec()]),
        }
    }

    fn rational(tag: Tag, parts: &[(u32, u32)]) -> Field {
        let parts = parts.iter().map(|&(num, denom)| Rational { num, denom });
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Rational(parts.collect()),
        }
    }

    /// Writes `fields` as an EXIF block and reads them back through `read_raw`.
    fn round_trip(fields: &[Field]) -> MediaMetadata {
        let mut writer = exif::experimental::Writer::new();
        for field in fields {
            writer.push_field(field);
        }
        let mut tiff = std::io::Cursor::new(Vec::new());
        writer.write(&mut tiff, false).unwrap();
        let mut meta = MediaMetadata::default();
        read_raw(tiff.into_inner(), &mut meta);
        meta
    }

    #[test]
    fn times_with_and_without_offset() {
        let meta = round_trip(&[ascii(Tag::DateTimeOriginal, "2024:05:01 12:34:56")]);
        assert_eq!(meta.captured_at.as_deref(), Some("2024-05-01T12:34:56"));

        let meta = round_trip(&[
            ascii(Tag::DateTimeOriginal, "2024:05:01 12:34:56"),
            ascii(Tag::OffsetTimeOriginal, "-05:30"),
        ]);
        assert_eq!(
            meta.captured_at.as_deref(),
            Some("2024-05-01T12:34:56-05:30")
        );

        // Blank original: fall back to the file's date-time.
        let meta = round_trip(&[
            ascii(Tag::DateTimeOriginal, "0000:00:00 00:00:00"),
            ascii(Tag::DateTime, "2020:02:29 23:59:59"),
        ]);
        assert_eq!(meta.captured_at.as_deref(), Some("2020-02-29T23:59:59"));
        assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    }

    #[test]
    fn camera_names_are_trimmed() {
        let meta = round_trip(&[ascii(Tag::Make, "  Canon\0\0"), ascii(Tag::Model, "   ")]);
        assert_eq!(meta.camera_make.as_deref(), Some("Canon"));
        assert_eq!(meta.camera_model, None);
    }

    #[test]
    fn southern_and_western_positions_are_negative() {
        let meta = round_trip(&[
            ascii(Tag::GPSLatitudeRef, "S"),
            rational(Tag::GPSLatitude, &[(33, 1), (51, 1), (5400, 100)]),
            ascii(Tag::GPSLongitudeRef, "W"),
            rational(Tag::GPSLongitude, &[(70, 1), (30, 1), (0, 1)]),
            rational(Tag::GPSAltitude, &[(125, 10)]),
            Field {
                tag: Tag::GPSAltitudeRef,
                ifd_num: In::PRIMARY,
                value: Value::Byte(vec![1]),
            },
        ]);
        let gps = meta.gps.unwrap();
        assert!((gps.latitude + 33.865).abs() < 1e-9, "{gps:?}");
        assert!((gps.longitude + 70.5).abs() < 1e-9, "{gps:?}");
        assert_eq!(gps.altitude, Some(-12.5));
    }

    #[test]
    fn null_island_and_bad_rationals_are_no_position() {
        let meta = round_trip(&[
            rational(Tag::GPSLatitude, &[(0, 1), (0, 1), (0, 1)]),
            rational(Tag::GPSLongitude, &[(0, 1), (0, 1), (0, 1)]),
        ]);
        assert_eq!(meta.gps, None);
        let meta = round_trip(&[
            rational(Tag::GPSLatitude, &[(10, 0), (0, 1), (0, 1)]),
            rational(Tag::GPSLongitude, &[(1, 1), (0, 1), (0, 1)]),
        ]);
        assert_eq!(meta.gps, None);
    }

    #[test]
    fn orientation_out_of_range_is_ignored() {
        let field = |o| Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![o]),
        };
        assert_eq!(round_trip(&[field(8)]).orientation, Some(8));
        assert_eq!(round_trip(&[field(9)]).orientation, None);
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        let mut meta = MediaMetadata::default();
        read_raw(b"MM\0\x2a\xff\xff\xff\xff".to_vec(), &mut meta);
        assert_eq!(meta.problems.len(), 1, "{:?}", meta.problems);
        assert!(meta.problems[0].starts_with("cannot read"));
    }
}
