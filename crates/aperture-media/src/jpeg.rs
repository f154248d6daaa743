//! Walking a JPEG's marker segments up to its first scan, without reading the image data.
//!
//! The `image` crate's JPEG decoder reads the whole file into memory even to report the size,
//! so the size comes from the frame header (SOF) found on this walk, with the EXIF block; the
//! compressed image data after the first scan header is never read, only seeked over.

use std::io::{self, BufReader, ErrorKind, Read, Seek, SeekFrom};

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP1: u8 = 0xE1;
const EXIF_ID: &[u8] = b"Exif\0\0";

/// More segments than any real JPEG has before its first scan: a bound on hostile input.
const MAX_SEGMENTS: usize = 4096;
/// How much of the end of the file may follow the end-of-image marker (padding, small
/// trailers) and still count as complete.
const TAIL_WINDOW: u64 = 4096;

/// What the walk found.
#[derive(Debug)]
pub(crate) struct Header {
    /// Width and height from the frame header.
    pub(crate) size: Option<(u32, u32)>,
    /// The TIFF structure from the first `Exif` APP1 segment.
    pub(crate) exif: Option<Vec<u8>>,
    /// Where the compressed data of the first scan starts, or what stopped the walk before it.
    pub(crate) scan_start: Result<u64, String>,
}

/// Walks the segments from the start of `reader` to the first scan.
pub(crate) fn read_header<R: Read + Seek>(reader: R) -> io::Result<Header> {
    let mut reader = BufReader::new(reader);
    reader.seek(SeekFrom::Start(0))?;
    let mut header = Header {
        size: None,
        exif: None,
        scan_start: Err(String::new()),
    };
    header.scan_start = match walk(&mut reader, &mut header) {
        Ok(scan_start) => Ok(scan_start),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            Err("truncated jpeg: ends inside its header".to_owned())
        }
        Err(e) if e.kind() == ErrorKind::InvalidData => Err(format!("corrupt jpeg header: {e}")),
        Err(e) => return Err(e),
    };
    Ok(header)
}

/// Reads segments up to the first SOS, filling in `header`; returns where the scan data starts.
fn walk<R: Read + Seek>(reader: &mut BufReader<R>, header: &mut Header) -> io::Result<u64> {
    let mut soi = [0; 2];
    reader.read_exact(&mut soi)?;
    if soi != [0xFF, SOI] {
        return Err(invalid("no start-of-image marker"));
    }
    for _ in 0..MAX_SEGMENTS {
        let marker = next_marker(reader)?;
        match marker {
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            SOI => return Err(invalid("second start-of-image marker")),
            EOI => return Err(invalid("end-of-image marker before any image data")),
            _ => {}
        }
        let mut len = [0; 2];
        reader.read_exact(&mut len)?;
        let payload_len = u16::from_be_bytes(len)
            .checked_sub(2)
            .ok_or_else(|| invalid("segment length below 2"))?;
        if marker == APP1 && header.exif.is_none() {
            let payload = read_payload(reader, payload_len)?;
            header.exif = payload.strip_prefix(EXIF_ID).map(<[u8]>::to_vec);
        } else if is_frame_header(marker) && header.size.is_none() {
            let payload = read_payload(reader, payload_len)?;
            header.size = frame_size(&payload);
        } else {
            reader.seek_relative(i64::from(payload_len))?;
        }
        if marker == SOS {
            return reader.stream_position();
        }
    }
    Err(invalid("too many segments before the image data"))
}

/// Reads the next marker code, skipping the fill bytes (`FF`) allowed before it.
fn next_marker<R: Read>(reader: &mut R) -> io::Result<u8> {
    let mut byte = [0; 1];
    reader.read_exact(&mut byte)?;
    if byte[0] != 0xFF {
        return Err(invalid("marker expected"));
    }
    while byte[0] == 0xFF {
        reader.read_exact(&mut byte)?;
    }
    Ok(byte[0])
}

fn read_payload<R: Read>(reader: &mut R, len: u16) -> io::Result<Vec<u8>> {
    let mut payload = vec![0; usize::from(len)];
    reader.read_exact(&mut payload)?;
    Ok(payload)
}

/// SOF0–SOF15, less the three codes in that range that are not frame headers (DHT, JPG, DAC).
fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Width and height from a frame header: precision (1 byte), height, width (2 bytes each).
/// A zero height means "given later" (DNL marker), which we do not chase.
fn frame_size(payload: &[u8]) -> Option<(u32, u32)> {
    let height = u16::from_be_bytes([*payload.get(1)?, *payload.get(2)?]);
    let width = u16::from_be_bytes([*payload.get(3)?, *payload.get(4)?]);
    (width > 0 && height > 0).then(|| (u32::from(width), u32::from(height)))
}

/// Whether an end-of-image marker follows the first scan within the last few KiB of the file.
/// Entropy-coded data never contains `FF D9`, so one found after the scan start is the real end.
pub(crate) fn has_end_marker<R: Read + Seek>(mut reader: R, scan_start: u64) -> io::Result<bool> {
    let len = reader.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(TAIL_WINDOW).max(scan_start);
    if start >= len {
        return Ok(false);
    }
    reader.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    reader.take(len - start).read_to_end(&mut tail)?;
    Ok(tail.windows(2).any(|pair| pair == [0xFF, EOI]))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).unwrap();
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn tiny_jpeg(scan: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, SOI];
        out.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        out.extend(segment(APP1, b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0"));
        out.extend(segment(0xE2, &[7; 100]));
        out.extend(segment(0xC0, b"\x08\x00\x30\x00\x40\x01\x01\x11\x00"));
        out.extend(segment(SOS, b"\x01\x01\x00\x00\x3f\x00"));
        out.extend_from_slice(scan);
        out
    }

    #[test]
    fn walks_to_the_first_scan() {
        let jpeg = tiny_jpeg(b"\x12\x34\xFF\x00\x56\xFF\xD9");
        let header = read_header(Cursor::new(&jpeg)).unwrap();
        assert_eq!(header.exif.as_deref(), Some(&b"MM\0\x2a\0\0\0\x08\0\0"[..]));
        let scan_start = header.scan_start.unwrap();
        assert_eq!(&jpeg[scan_start as usize..][..2], b"\x12\x34");
        assert_eq!(header.size, Some((64, 48)));
        assert!(has_end_marker(Cursor::new(&jpeg), scan_start).unwrap());
    }

    #[test]
    fn notices_a_missing_end() {
        let jpeg = tiny_jpeg(b"\x12\x34\xFF\x00\x56");
        let scan_start = read_header(Cursor::new(&jpeg)).unwrap().scan_start.unwrap();
        assert!(!has_end_marker(Cursor::new(&jpeg), scan_start).unwrap());
        // Padding after the end is fine.
        let mut padded = tiny_jpeg(b"\x12\x34\xFF\xD9");
        padded.extend_from_slice(&[0; 300]);
        assert!(has_end_marker(Cursor::new(&padded), scan_start).unwrap());
    }

    #[test]
    fn reports_a_cut_header() {
        let jpeg = tiny_jpeg(b"");
        let header = read_header(Cursor::new(&jpeg[..40])).unwrap();
        assert_eq!(
            header.scan_start.unwrap_err(),
            "truncated jpeg: ends inside its header"
        );
    }

    #[test]
    fn reports_garbage_between_segments() {
        let mut jpeg = vec![0xFF, SOI];
        jpeg.extend_from_slice(b"garbage");
        let header = read_header(Cursor::new(&jpeg)).unwrap();
        assert_eq!(
            header.scan_start.unwrap_err(),
            "corrupt jpeg header: marker expected"
        );
    }
}
