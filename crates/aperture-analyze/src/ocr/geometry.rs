//! The geometry of text detection: regions of a probability map, their smallest enclosing
//! rotated rectangles, and sampling a rotated rectangle out of an image.

use image::{Rgb, RgbImage};

/// A rotated rectangle: centre, unit vector along its long side (pointing right), and the
/// lengths along that side (`len_u`) and across it (`len_v`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    pub cx: f32,
    pub cy: f32,
    pub ux: f32,
    pub uy: f32,
    pub len_u: f32,
    pub len_v: f32,
}

impl RotatedRect {
    /// The unit vector across the long side, pointing down.
    pub fn v(&self) -> (f32, f32) {
        (-self.uy, self.ux)
    }

    /// Corners clockwise from the top left (in image coordinates, y down).
    pub fn corners(&self) -> [(f32, f32); 4] {
        let (vx, vy) = self.v();
        let (hu, hv) = (self.len_u / 2.0, self.len_v / 2.0);
        let at = |su: f32, sv: f32| {
            (
                self.cx + su * hu * self.ux + sv * hv * vx,
                self.cy + su * hu * self.uy + sv * hv * vy,
            )
        };
        [at(-1.0, -1.0), at(1.0, -1.0), at(1.0, 1.0), at(-1.0, 1.0)]
    }

    pub fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (vx, vy) = self.v();
        (dx * self.ux + dy * self.uy).abs() <= self.len_u / 2.0
            && (dx * vx + dy * vy).abs() <= self.len_v / 2.0
    }

    /// Grown by `d` on every side.
    pub fn grown(&self, d: f32) -> Self {
        Self {
            len_u: self.len_u + 2.0 * d,
            len_v: self.len_v + 2.0 * d,
            ..*self
        }
    }

    /// Scaled by `sx` across and `sy` down. An uneven scale makes a rotated rectangle a
    /// parallelogram; the result keeps the centre and the scaled long side, and the lengths
    /// of both sides, which for the small tilts of text lines is the same box.
    pub fn scaled(&self, sx: f32, sy: f32) -> Self {
        let (vx, vy) = self.v();
        let (ux, uy) = (self.ux * sx, self.uy * sy);
        let (su, sv) = (
            (ux * ux + uy * uy).sqrt(),
            ((vx * sx).powi(2) + (vy * sy).powi(2)).sqrt(),
        );
        Self {
            cx: self.cx * sx,
            cy: self.cy * sy,
            ux: ux / su,
            uy: uy / su,
            len_u: self.len_u * su,
            len_v: self.len_v * sv,
        }
    }

    /// The axis-aligned bounding box: (x0, y0, x1, y1).
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        self.corners().iter().fold(
            (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
            |(x0, y0, x1, y1), &(x, y)| (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
        )
    }
}

/// Connected regions (8-neighbourhood) of `mask` (`width × height`, row-major), each as the
/// leftmost and rightmost pixel of every row it covers: enough for its convex hull. Regions
/// after the first `max` are ignored.
pub fn regions(mask: &[bool], width: usize, height: usize, max: usize) -> Vec<Vec<(i32, i32)>> {
    let mut label = vec![0u32; mask.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        if out.len() == max {
            break;
        }
        let id = out.len() as u32 + 1;
        label[start] = id;
        stack.push(start);
        // Per row: (min x, max x).
        let mut rows: std::collections::BTreeMap<i32, (i32, i32)> = Default::default();
        while let Some(p) = stack.pop() {
            let (x, y) = ((p % width) as i32, (p / width) as i32);
            let e = rows.entry(y).or_insert((x, x));
            e.0 = e.0.min(x);
            e.1 = e.1.max(x);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= width as i32 || ny >= height as i32 {
                        continue;
                    }
                    let q = ny as usize * width + nx as usize;
                    if mask[q] && label[q] == 0 {
                        label[q] = id;
                        stack.push(q);
                    }
                }
            }
        }
        out.push(
            rows.into_iter()
                .flat_map(|(y, (x0, x1))| [(x0, y), (x1, y)])
                .collect(),
        );
    }
    out
}

/// The convex hull (Andrew's monotone chain), counter-clockwise, without repeats.
pub fn convex_hull(points: &[(i32, i32)]) -> Vec<(f32, f32)> {
    let mut pts: Vec<(i64, i64)> = points.iter().map(|&(x, y)| (x as i64, y as i64)).collect();
    pts.sort_unstable();
    pts.dedup();
    if pts.len() < 3 {
        return pts.iter().map(|&(x, y)| (x as f32, y as f32)).collect();
    }
    let cross = |o: (i64, i64), a: (i64, i64), b: (i64, i64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(i64, i64)> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(i64, i64)>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull.iter().map(|&(x, y)| (x as f32, y as f32)).collect()
}

/// The smallest-area rectangle around `hull` (rotating calipers over its edges), in the frame
/// where pixel `(i, j)` covers `[i, i + 1) × [j, j + 1)`: the hull's points are pixel indices,
/// and the rectangle covers their whole pixels, so one row of pixels is 1 thick.
pub fn min_area_rect(hull: &[(f32, f32)]) -> Option<RotatedRect> {
    if hull.is_empty() {
        return None;
    }
    let mut best: Option<(f32, RotatedRect)> = None;
    let n = hull.len();
    let edges: Vec<(f32, f32)> = if n < 2 {
        vec![(1.0, 0.0)]
    } else {
        (0..n)
            .map(|i| {
                let (a, b) = (hull[i], hull[(i + 1) % n]);
                (b.0 - a.0, b.1 - a.1)
            })
            .collect()
    };
    for (ex, ey) in edges {
        let len = (ex * ex + ey * ey).sqrt();
        if len == 0.0 {
            continue;
        }
        let (ux, uy) = (ex / len, ey / len);
        let (vx, vy) = (-uy, ux);
        let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for &(x, y) in hull {
            let (u, v) = (x * ux + y * uy, x * vx + y * vy);
            u0 = u0.min(u);
            u1 = u1.max(u);
            v0 = v0.min(v);
            v1 = v1.max(v);
        }
        // Pixel centres: the region covers half a pixel beyond each.
        let (lu, lv) = (u1 - u0 + 1.0, v1 - v0 + 1.0);
        let area = lu * lv;
        if best.as_ref().is_some_and(|(a, _)| *a <= area) {
            continue;
        }
        let (cu, cv) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
        // Pixel (i, j) covers [i, i + 1) × [j, j + 1): its centre is at i + 0.5.
        let (cx, cy) = (cu * ux + cv * vx + 0.5, cu * uy + cv * vy + 0.5);
        best = Some((area, oriented(cx, cy, ux, uy, lu, lv)));
    }
    best.map(|(_, r)| r)
}

/// A rectangle with `u` along its longer side, pointing right (or up when vertical).
fn oriented(cx: f32, cy: f32, ux: f32, uy: f32, lu: f32, lv: f32) -> RotatedRect {
    let (mut ux, mut uy, mut lu, mut lv) = (ux, uy, lu, lv);
    if lv > lu {
        (ux, uy) = (-uy, ux);
        std::mem::swap(&mut lu, &mut lv);
    }
    if ux < -1e-6 || (ux.abs() <= 1e-6 && uy > 0.0) {
        (ux, uy) = (-ux, -uy);
    }
    RotatedRect {
        cx,
        cy,
        ux,
        uy,
        len_u: lu,
        len_v: lv,
    }
}

/// The rectangle's pixels, upright (its long side horizontal), bilinear, edges repeated.
pub fn crop(image: &RgbImage, rect: &RotatedRect) -> RgbImage {
    let (w, h) = (
        (rect.len_u.round() as u32).max(1),
        (rect.len_v.round() as u32).max(1),
    );
    let (vx, vy) = rect.v();
    let [(x0, y0), ..] = rect.corners();
    let (iw, ih) = (image.width() as f32, image.height() as f32);
    RgbImage::from_fn(w, h, |i, j| {
        let (su, sv) = (
            (i as f32 + 0.5) * rect.len_u / w as f32,
            (j as f32 + 0.5) * rect.len_v / h as f32,
        );
        // Pixel centres sit at integer + 0.5 in this frame.
        let x = (x0 + su * rect.ux + sv * vx - 0.5).clamp(0.0, iw - 1.0);
        let y = (y0 + su * rect.uy + sv * vy - 0.5).clamp(0.0, ih - 1.0);
        bilinear(image, x, y)
    })
}

fn bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(image.width() - 1),
        (y0 + 1).min(image.height() - 1),
    );
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |x, y| image.get_pixel(x, y).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    Rgb(std::array::from_fn(|k| {
        let top = f32::from(a[k]) * (1.0 - fx) + f32::from(b[k]) * fx;
        let bottom = f32::from(c[k]) * (1.0 - fx) + f32::from(d[k]) * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The rectangle covers every pixel of the region, and is no larger than the
        /// region's axis-aligned box (which is one of the candidates).
        #[test]
        fn the_min_area_rect_covers_its_region(
            points in proptest::collection::vec((0i32..200, 0i32..200), 1..60)
        ) {
            let hull = convex_hull(&points);
            let rect = min_area_rect(&hull).unwrap();
            for &(x, y) in &points {
                // Pixel (x, y)'s centre, with a little room for rounding.
                let grown = rect.grown(0.01);
                prop_assert!(grown.contains(x as f32 + 0.5, y as f32 + 0.5), "{rect:?} misses ({x}, {y})");
            }
            let (x0, x1) = points.iter().fold((i32::MAX, i32::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
            let (y0, y1) = points.iter().fold((i32::MAX, i32::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
            let aabb = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32;
            prop_assert!(rect.len_u * rect.len_v <= aabb + 1e-2, "{rect:?} vs {aabb}");
            prop_assert!(rect.len_u >= rect.len_v && rect.ux >= -1e-6);
        }
    }

    #[test]
    fn an_upright_block_gets_its_own_box() {
        let (w, h) = (20, 10);
        let mut mask = vec![false; w * h];
        for y in 2..5 {
            for x in 3..15 {
                mask[y * w + x] = true;
            }
        }
        mask[9 * w + 19] = true;
        let found = regions(&mask, w, h, 10);
        assert_eq!(found.len(), 2);
        let rect = min_area_rect(&convex_hull(&found[0])).unwrap();
        assert!(
            (rect.len_u - 12.0).abs() < 1e-4 && (rect.len_v - 3.0).abs() < 1e-4,
            "{rect:?}"
        );
        assert!(
            (rect.cx - 9.0).abs() < 1e-4 && (rect.cy - 3.5).abs() < 1e-4,
            "{rect:?}"
        );
        assert!((rect.ux - 1.0).abs() < 1e-4, "{rect:?}");
        assert!(rect.contains(4.5, 3.5) && !rect.contains(4.5, 6.5));
        assert_eq!(regions(&mask, w, h, 1).len(), 1, "the cap holds");
    }

    #[test]
    fn a_tilted_line_gets_a_tilted_box() {
        // A bar 40 long and 4 thick, rotated by about 10 degrees.
        let (w, h) = (60, 40);
        let mut mask = vec![false; w * h];
        let (c, s) = (10f32.to_radians().cos(), 10f32.to_radians().sin());
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 30.0, y as f32 - 20.0);
                let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
                mask[y * w + x] = u.abs() <= 20.0 && v.abs() <= 2.0;
            }
        }
        let rect = min_area_rect(&convex_hull(&regions(&mask, w, h, 10)[0])).unwrap();
        let angle = rect.uy.atan2(rect.ux).to_degrees();
        assert!((angle - 10.0).abs() < 3.0, "{angle} {rect:?}");
        assert!(
            (rect.len_u - 41.0).abs() < 3.0 && rect.len_v < 8.0,
            "{rect:?}"
        );
    }

    #[test]
    fn uneven_scales_stretch_each_side_by_its_own_factor() {
        let rect = RotatedRect {
            cx: 10.0,
            cy: 10.0,
            ux: 1.0,
            uy: 0.0,
            len_u: 100.0,
            len_v: 10.0,
        };
        let scaled = rect.scaled(2.0, 0.5);
        assert_eq!((scaled.cx, scaled.cy), (20.0, 5.0));
        assert_eq!((scaled.len_u, scaled.len_v), (200.0, 5.0));
        assert_eq!((scaled.ux, scaled.uy), (1.0, 0.0));
    }

    #[test]
    fn crops_come_out_upright() {
        let mut image = RgbImage::from_pixel(30, 20, Rgb([255, 255, 255]));
        for x in 5..25 {
            for y in 8..12 {
                image.put_pixel(x, y, Rgb([0, 0, 0]));
            }
        }
        let rect = RotatedRect {
            cx: 15.0,
            cy: 10.0,
            ux: 1.0,
            uy: 0.0,
            len_u: 20.0,
            len_v: 4.0,
        };
        let out = crop(&image, &rect);
        assert_eq!(out.dimensions(), (20, 4));
        assert!(out.pixels().all(|p| p.0 == [0, 0, 0]));
    }
}
