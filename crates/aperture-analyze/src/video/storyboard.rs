//! The storyboard: a small frame every few seconds in one sprite sheet, and the WebVTT track
//! that players (and our UI) use to show the tile under the scrub bar.

use std::collections::BTreeMap;

use aperture_core::human::clock_millis;
use aperture_core::value;
use image::RgbImage;

/// Most tiles in one storyboard: a long video gets a longer interval, not a larger sprite.
pub const MAX_TILES: u32 = 100;
/// Tiles per row.
const COLUMNS: u32 = 10;

/// Collects tiles as frames stream by: tile `n` is the first frame shown from
/// `n × interval`. Tiles may come from several decoders (the parts of a long video), each
/// offering its own stretch.
pub struct Builder {
    interval_ms: u64,
    tiles: BTreeMap<u32, RgbImage>,
    size: Option<(u32, u32)>,
}

impl Builder {
    /// A storyboard for a video of `duration_ms` (a guess is fine: tiles stop at
    /// [`MAX_TILES`]).
    pub fn new(duration_ms: u64) -> Self {
        let interval_ms = (duration_ms / u64::from(MAX_TILES))
            .max(1000)
            .div_ceil(1000)
            * 1000;
        Self {
            interval_ms,
            tiles: BTreeMap::new(),
            size: None,
        }
    }

    /// Offers the frame shown at `time_ms`; it is kept when its tile has none yet.
    pub fn offer(&mut self, time_ms: u64, frame: &RgbImage) {
        self.offer_since(0, time_ms, frame);
    }

    /// Offers the frame shown at `time_ms` for a stretch that starts at `since_ms`: kept only
    /// for a tile due in the stretch (a tile due earlier is the stretch before's).
    pub fn offer_since(&mut self, since_ms: u64, time_ms: u64, frame: &RgbImage) {
        let n = time_ms / self.interval_ms;
        if n * self.interval_ms >= since_ms
            && n < u64::from(MAX_TILES)
            && !self.tiles.contains_key(&(n as u32))
        {
            self.insert(n as u32, frame.clone());
        }
    }

    /// Sets tile `n` (one found elsewhere); tiles past [`MAX_TILES`] are dropped.
    pub fn insert(&mut self, n: u32, tile: RgbImage) {
        if n >= MAX_TILES {
            return;
        }
        let (w, h) = *self.size.get_or_insert(tile.dimensions());
        let tile = if tile.dimensions() == (w, h) {
            tile
        } else {
            image::imageops::resize(&tile, w, h, image::imageops::FilterType::Triangle)
        };
        self.tiles.insert(n, tile);
    }

    /// The tiles kept, by number.
    pub fn into_tiles(self) -> BTreeMap<u32, RgbImage> {
        self.tiles
    }

    /// The sprite sheet (JPEG), the WebVTT track and their description; `None` without
    /// frames. `duration_ms` ends the last cue.
    pub fn finish(
        self,
        duration_ms: u64,
        sprite_name: &str,
        vtt_name: &str,
    ) -> Option<(Vec<u8>, String, value::Storyboard)> {
        let (w, h) = self.size?;
        // Up to the last tile, a missing one (a gap in the stream) showing the one before.
        let count = self.tiles.keys().next_back().map_or(0, |n| n + 1);
        let columns = COLUMNS.min(count);
        let rows = count.div_ceil(columns);
        let mut sheet = RgbImage::new(w * columns, h * rows);
        let mut vtt = String::from("WEBVTT\n\n");
        let mut shown = self.tiles.values().next()?;
        for n in 0..count {
            shown = self.tiles.get(&n).unwrap_or(shown);
            let (x, y) = ((n % columns) * w, (n / columns) * h);
            image::imageops::replace(&mut sheet, shown, i64::from(x), i64::from(y));
            let start = u64::from(n) * self.interval_ms;
            let end = (start + self.interval_ms).min(duration_ms.max(start + 1));
            vtt.push_str(&format!(
                "{} --> {}\n{sprite_name}#xywh={x},{y},{w},{h}\n\n",
                clock_millis(start),
                clock_millis(end)
            ));
        }
        let jpeg = crate::thumbnail::jpeg(&sheet, 70, sprite_name).ok()?;
        Some((
            jpeg,
            vtt,
            value::Storyboard {
                sprite: sprite_name.into(),
                vtt: vtt_name.into(),
                tile_width: w,
                tile_height: h,
                columns,
                tiles: count,
                interval_ms: self.interval_ms,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_every_interval_with_a_cue_each() {
        let mut b = Builder::new(12_500);
        assert_eq!(b.interval_ms, 1000);
        for i in 0..(12_500 / 40) {
            let frame = RgbImage::from_pixel(16, 9, image::Rgb([i as u8, 0, 0]));
            b.offer(i * 40, &frame);
        }
        let (jpeg, vtt, sb) = b
            .finish(12_500, "storyboard.jpg", "storyboard.vtt")
            .unwrap();
        assert_eq!((sb.tiles, sb.columns, sb.tile_width), (13, 10, 16));
        let sheet = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((sheet.width(), sheet.height()), (160, 18));
        assert!(vtt.starts_with(
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard.jpg#xywh=0,0,16,9\n"
        ));
        assert!(
            vtt.contains("00:00:12.000 --> 00:00:12.500\nstoryboard.jpg#xywh=32,9,16,9"),
            "{vtt}"
        );
        // A long video keeps to the tile limit.
        assert_eq!(Builder::new(6 * 3_600_000).interval_ms, 216_000);
    }
}
