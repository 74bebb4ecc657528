//! Rotated square regions of a frame and the bilinear resampling between a region and a
//! network's square input: the landmark network sees its region upright at 256×256, the
//! detector sees the whole frame letterboxed into 224×224 (a region as wide as the frame's
//! long side, centred on it).

use crate::frame::RgbaView;

/// A square region of the frame, `size` pixels wide, centred on (`cx`, `cy`) and turned by
/// `rotation` radians; a network's `n × n` input is this region resampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub cx: f32,
    pub cy: f32,
    pub size: f32,
    pub rotation: f32,
}

/// A region's mapping between an `n × n` network input and the frame, with the rotation's
/// sine and cosine computed once (it is applied to every pixel of the input and of the mask).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mapping {
    region: Region,
    /// Side of the network input, in pixels.
    n: f32,
    sin: f32,
    cos: f32,
}

impl Mapping {
    /// Frame coordinates of the point (`u`, `v`) of the network's input (pixels, 0..n).
    pub(crate) fn frame_point(&self, u: f32, v: f32) -> (f32, f32) {
        let (r, s, c) = (&self.region, self.sin, self.cos);
        let (du, dv) = ((u / self.n - 0.5) * r.size, (v / self.n - 0.5) * r.size);
        (r.cx + du * c - dv * s, r.cy + du * s + dv * c)
    }

    /// The network's input coordinates (pixels, 0..n) of the frame point (`x`, `y`).
    pub(crate) fn input_point(&self, x: f32, y: f32) -> (f32, f32) {
        let (r, s, c) = (&self.region, self.sin, self.cos);
        let (dx, dy) = (x - r.cx, y - r.cy);
        let scale = self.n / r.size;
        (
            (dx * c + dy * s) * scale + self.n / 2.0,
            (-dx * s + dy * c) * scale + self.n / 2.0,
        )
    }
}

impl Region {
    /// The region's mapping to an `n × n` network input.
    pub(crate) fn mapping(self, n: usize) -> Mapping {
        let (sin, cos) = self.rotation.sin_cos();
        Mapping {
            region: self,
            n: n as f32,
            sin,
            cos,
        }
    }

    /// The whole `width × height` frame letterboxed into a square: centred, as wide as the
    /// long side, upright (MediaPipe's `keep_aspect_ratio` image-to-tensor transform).
    pub fn letterbox(width: usize, height: usize) -> Region {
        Region {
            cx: width as f32 / 2.0,
            cy: height as f32 / 2.0,
            size: width.max(height) as f32,
            rotation: 0.0,
        }
    }

    /// The region MediaPipe's pose graph derives from two points in frame pixels: centred on
    /// `centre` (the hips' centre), `2·|scale − centre|·margin` wide, turned so that `scale`
    /// stands straight above `centre` (`AlignmentPointsRectsCalculator` with a target angle
    /// of 90°, then `RectTransformationCalculator` with `square_long`).
    pub fn aligned(centre: (f32, f32), scale: (f32, f32), margin: f32) -> Region {
        let ((hx, hy), (sx, sy)) = (centre, scale);
        let size = 2.0 * (sx - hx).hypot(sy - hy) * margin;
        let angle = std::f32::consts::FRAC_PI_2 - (-(sy - hy)).atan2(sx - hx);
        let tau = std::f32::consts::TAU;
        let rotation = angle - tau * ((angle + std::f32::consts::PI) / tau).floor();
        Region {
            cx: hx,
            cy: hy,
            size,
            rotation,
        }
    }

    /// Whether the region is usable: finite and at least `min_size` pixels wide.
    pub fn is_valid(&self, min_size: f32) -> bool {
        self.cx.is_finite()
            && self.cy.is_finite()
            && self.rotation.is_finite()
            && self.size.is_finite()
            && self.size >= min_size
    }
}

/// The taps of a bilinear sample at (`x`, `y`) of a `w × h` grid (pixel centres at `i + 0.5`)
/// that fall inside it: `tap(column, row, horizontal weight, vertical weight)` for each; the
/// taps outside count as zero.
#[inline(always)]
fn bilinear_taps(x: f32, y: f32, w: usize, h: usize, mut tap: impl FnMut(usize, usize, f32, f32)) {
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (ax, ay) = (fx - x0, fy - y0);
    for (dy, wy) in [(0, 1.0 - ay), (1, ay)] {
        for (dx, wx) in [(0, 1.0 - ax), (1, ax)] {
            let (xi, yi) = (x0 as i64 + dx, y0 as i64 + dy);
            if xi >= 0 && yi >= 0 && (xi as usize) < w && (yi as usize) < h {
                tap(xi as usize, yi as usize, wx, wy);
            }
        }
    }
}

/// Bilinear sample of the `w × h` plane `plane` at (`x`, `y`) (pixel centres at `i + 0.5`),
/// zero outside it.
pub(crate) fn sample_zero_outside(plane: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let mut v = 0.0;
    bilinear_taps(x, y, w, h, |xi, yi, wx, wy| {
        v += plane[yi * w + xi] * wx * wy
    });
    v
}

/// Resamples `region` of `frame` (bilinear, black outside the frame) into the planar RGB
/// `n × n` input `input` (3 planes), each value `v` 0..255 written as `v·scale + offset`.
pub(crate) fn load_region(
    frame: &RgbaView<'_>,
    region: &Region,
    n: usize,
    (scale, offset): (f32, f32),
    input: &mut [f32],
) {
    let (width, height) = (frame.shape()[1], frame.shape()[0]);
    let plane = n * n;
    let map = region.mapping(n);
    for v in 0..n {
        for u in 0..n {
            let (x, y) = map.frame_point(u as f32 + 0.5, v as f32 + 0.5);
            let mut rgb = [0.0f32; 3];
            bilinear_taps(x, y, width, height, |xi, yi, wx, wy| {
                for (c, acc) in rgb.iter_mut().enumerate() {
                    *acc += frame[[yi, xi, c]] as f32 * wx * wy;
                }
            });
            let k = v * n + u;
            for (c, value) in rgb.iter().enumerate() {
                input[c * plane + k] = value * scale + offset;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_maps_there_and_back() {
        let r = Region {
            cx: 300.0,
            cy: 200.0,
            size: 400.0,
            rotation: 0.3,
        };
        let map = r.mapping(256);
        let (x, y) = map.frame_point(40.0, 200.0);
        let (u, v) = map.input_point(x, y);
        assert!(
            (u - 40.0).abs() < 1e-3 && (v - 200.0).abs() < 1e-3,
            "{u} {v}"
        );
        // The input's centre is the region's centre; its corners are `size/√2` away.
        assert_eq!(map.frame_point(128.0, 128.0), (300.0, 200.0));
        let (cx, cy) = map.frame_point(0.0, 0.0);
        let d = (cx - 300.0).hypot(cy - 200.0);
        assert!((d - 400.0 / 2f32.sqrt()).abs() < 1e-2, "{d}");
    }

    #[test]
    fn letterbox_puts_the_frame_in_the_middle_of_the_square() {
        let map = Region::letterbox(640, 360).mapping(224);
        // The frame's corners land at the input's left and right edges, its top and bottom
        // at (224 − 126) / 2 = 49 from the input's.
        let (u, v) = map.input_point(0.0, 0.0);
        assert!(u.abs() < 1e-4 && (v - 49.0).abs() < 1e-4, "{u} {v}");
        let (u, v) = map.input_point(640.0, 360.0);
        assert!(
            (u - 224.0).abs() < 1e-4 && (v - 175.0).abs() < 1e-4,
            "{u} {v}"
        );
    }

    #[test]
    fn aligned_stands_the_body_upright_around_the_hips() {
        let up = Region::aligned((320.0, 252.0), (320.0, 152.0), 1.25);
        assert!((up.cx - 320.0).abs() < 1e-3 && (up.cy - 252.0).abs() < 1e-3);
        assert!((up.size - 250.0).abs() < 1e-3, "{}", up.size);
        assert!(up.rotation.abs() < 1e-6, "{}", up.rotation);
        // The scale point to the right of the hips: the body lies on its side, turned by 90°.
        let turned = Region::aligned((320.0, 252.0), (420.0, 252.0), 1.25);
        assert!(
            (turned.rotation - std::f32::consts::FRAC_PI_2).abs() < 1e-5,
            "{}",
            turned.rotation
        );
        assert!(!Region::aligned((1.0, 1.0), (1.0, 1.0), 1.25).is_valid(16.0));
        assert!(up.is_valid(16.0));
    }

    #[test]
    fn sampling_is_zero_outside() {
        let plane = vec![1.0; 4];
        assert_eq!(sample_zero_outside(&plane, 2, 2, 1.0, 1.0), 1.0);
        assert_eq!(sample_zero_outside(&plane, 2, 2, -3.0, 1.0), 0.0);
        assert!((sample_zero_outside(&plane, 2, 2, 0.0, 1.0) - 0.5).abs() < 1e-6);
    }
}
