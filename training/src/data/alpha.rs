//! The procedural ground-truth alpha: person-like or object blobs (rotated ellipses) with soft
//! edges, boundary wobble, holes, semi-transparent veils, thin semi-transparent hair-like strands
//! and sometimes motion blur.

use slimmatte_measure::rng::Rng;

/// Smoothstep on 0..1 (clamped).
pub(super) fn smoothstep01(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// A rotated ellipse; `dist` is an approximate signed distance in pixels (negative inside).
#[derive(Clone, Copy, Debug)]
pub(super) struct Ellipse {
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
    cos: f32,
    sin: f32,
}

impl Ellipse {
    pub(super) fn new(cx: f32, cy: f32, rx: f32, ry: f32, angle: f32) -> Self {
        Self {
            cx,
            cy,
            rx: rx.max(1.0),
            ry: ry.max(1.0),
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }
    /// An ellipse with its centre coordinates drawn from `centre`, its radii from `radii` (both
    /// times `scale`, x before y) and its angle from 0..3.14, in that order.
    pub(super) fn random(r: &mut Rng, centre: (f32, f32), radii: (f32, f32), scale: f32) -> Self {
        Self::new(
            r.range(centre.0, centre.1) * scale,
            r.range(centre.0, centre.1) * scale,
            r.range(radii.0, radii.1) * scale,
            r.range(radii.0, radii.1) * scale,
            r.range(0.0, 3.14),
        )
    }

    pub(super) fn dist(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = (dx * self.cos + dy * self.sin) / self.rx;
        let v = (-dx * self.sin + dy * self.cos) / self.ry;
        ((u * u + v * v).sqrt() - 1.0) * self.rx.min(self.ry)
    }
}

/// Bilinear sample of a `w × h` plane at (x, y), edges clamped.
pub(super) fn bilinear(v: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = v[y0 * w + x0] * (1.0 - fx) + v[y0 * w + x1] * fx;
    let bot = v[y1 * w + x0] * (1.0 - fx) + v[y1 * w + x1] * fx;
    top * (1.0 - fy) + bot * fy
}

/// Colours of the hair-like strands of one sample: `rgb` (HWC, `s × s`) holds the colour of
/// the strand that sets each pixel's alpha, `set` marks those pixels. The compositor paints
/// them into the foreground, so strands have their own colour (with per-strand variation)
/// instead of the texture's.
pub(super) struct StrandColours {
    pub rgb: Vec<f32>,
    pub set: Vec<bool>,
}

impl StrandColours {
    pub(super) fn new(s: usize) -> Self {
        Self {
            rgb: vec![0.0; s * s * 3],
            set: vec![false; s * s],
        }
    }

    /// Paints the strand colours into the foreground `fg` (HWC).
    pub(super) fn paint(&self, fg: &mut [f32]) {
        for (i, _) in self.set.iter().enumerate().filter(|&(_, &on)| on) {
            fg[i * 3..i * 3 + 3].copy_from_slice(&self.rgb[i * 3..i * 3 + 3]);
        }
    }
}

/// Hair colours strands are drawn around (black, dark and light brown, blond, red, grey).
const HAIR_COLOURS: [[f32; 3]; 6] = [
    [0.06, 0.05, 0.05],
    [0.25, 0.15, 0.09],
    [0.50, 0.36, 0.22],
    [0.85, 0.72, 0.48],
    [0.55, 0.22, 0.10],
    [0.70, 0.70, 0.70],
];

/// The ground-truth alpha of a `s × s` sample (draws from `r` in a fixed order), and the
/// colours of its strands.
pub(super) fn alpha(r: &mut Rng, s: usize) -> (Vec<f32>, StrandColours) {
    let sf = s as f32;
    let shapes = shapes(r, sf);
    let edge = if r.chance(0.3) {
        r.range(2.0, 6.0)
    } else {
        r.range(0.6, 2.0)
    };
    let wob_a = r.range(0.0, 3.0);
    let (wf1, wf2) = (r.range(0.05, 0.3), r.range(0.05, 0.3));
    let (wp1, wp2) = (r.range(0.0, 6.28), r.range(0.0, 6.28));
    let holes: Vec<Ellipse> = if r.chance(0.4) {
        (0..1 + r.below(3))
            .map(|_| {
                let e = shapes[r.below(shapes.len())];
                Ellipse::new(
                    e.cx + r.range(-0.5, 0.5) * e.rx,
                    e.cy + r.range(-0.5, 0.5) * e.ry,
                    r.range(0.02, 0.08) * sf,
                    r.range(0.02, 0.08) * sf,
                    r.range(0.0, 3.14),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let veil: Option<(Ellipse, f32)> = if r.chance(0.35) {
        Some((
            Ellipse::random(r, (0.2, 0.8), (0.1, 0.35), sf),
            r.range(0.2, 0.8),
        ))
    } else {
        None
    };
    let mut a = vec![0.0f32; s * s];
    for y in 0..s {
        for x in 0..s {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let mut d = f32::MAX;
            for e in &shapes {
                d = d.min(e.dist(fx, fy));
            }
            d += wob_a * (fx * wf1 + wp1).sin() * (fy * wf2 + wp2).sin();
            let mut v = smoothstep01(0.5 - d / edge);
            for h in &holes {
                v *= smoothstep01(0.5 + h.dist(fx, fy) / 1.5);
            }
            if let Some((e, t)) = &veil {
                let inside = smoothstep01(0.5 - e.dist(fx, fy) / 3.0);
                v *= 1.0 - inside * (1.0 - t);
            }
            a[y * s + x] = v;
        }
    }
    let mut colours = StrandColours::new(s);
    if r.chance(0.7) {
        strands(r, &mut a, s, &mut colours);
    }
    if r.chance(0.25) {
        motion_blur(r, &mut a, s);
    }
    (a, colours)
}

/// The solid shapes of an alpha in a `sf × sf` crop: person-like (body, head, maybe arms,
/// often cut by the frame) or one to four object blobs.
fn shapes(r: &mut Rng, sf: f32) -> Vec<Ellipse> {
    let mut shapes: Vec<Ellipse> = Vec::new();
    if r.chance(0.65) {
        let cx = r.range(0.25, 0.75) * sf;
        let body_top = r.range(0.35, 0.8) * sf;
        let rx = r.range(0.18, 0.45) * sf;
        let ry = r.range(0.3, 0.6) * sf;
        shapes.push(Ellipse::new(cx, body_top + ry, rx, ry, r.range(-0.2, 0.2)));
        let hr = r.range(0.1, 0.22) * sf;
        shapes.push(Ellipse::new(
            cx + r.range(-0.1, 0.1) * sf,
            body_top - hr * r.range(0.4, 0.9),
            hr * r.range(0.8, 1.0),
            hr,
            r.range(-0.3, 0.3),
        ));
        for _ in 0..r.below(3) {
            shapes.push(Ellipse::new(
                cx + r.range(-0.5, 0.5) * sf,
                body_top + r.range(0.0, 0.5) * sf,
                r.range(0.04, 0.1) * sf,
                r.range(0.15, 0.35) * sf,
                r.range(-1.5, 1.5),
            ));
        }
    } else {
        for _ in 0..1 + r.below(4) {
            shapes.push(Ellipse::random(r, (0.1, 0.9), (0.08, 0.4), sf));
        }
    }
    shapes
}

/// Thin hair-like strands (0.35–3 px wide, tapering, curling) growing outwards from the
/// boundary, in clumps around one hair colour with per-strand variation.
pub(super) fn strands(r: &mut Rng, a: &mut [f32], s: usize, colours: &mut StrandColours) {
    let base = a.to_vec();
    let hair = HAIR_COLOURS[r.below(HAIR_COLOURS.len())];
    let n = 5 + r.below(36);
    for _ in 0..n {
        // A boundary point.
        let mut start = None;
        for _ in 0..200 {
            let (x, y) = (r.below(s), r.below(s));
            let v = base[y * s + x];
            if v > 0.2 && v < 0.8 {
                start = Some((x as f32 + 0.5, y as f32 + 0.5));
                break;
            }
        }
        let Some((mut px, mut py)) = start else {
            return;
        };
        // Outward = down the alpha gradient.
        let gx = bilinear(&base, s, s, px + 2.0, py) - bilinear(&base, s, s, px - 2.0, py);
        let gy = bilinear(&base, s, s, px, py + 2.0) - bilinear(&base, s, s, px, py - 2.0);
        let mut ang = if gx.abs() + gy.abs() > 1e-3 {
            (-gy).atan2(-gx)
        } else {
            r.range(0.0, 6.28)
        } + r.range(-0.6, 0.6);
        let len = r.range(0.08, 0.35) * s as f32;
        let width = if r.chance(0.2) {
            r.range(1.5, 3.0)
        } else {
            r.range(0.35, 1.5)
        };
        let opacity = r.range(0.3, 1.0);
        let curl = r.range(-0.08, 0.08);
        let shade = r.range(0.75, 1.25);
        let colour = hair.map(|c| (c * shade + r.range(-0.04, 0.04)).clamp(0.0, 1.0));
        let steps = (len / 1.5) as usize;
        for i in 0..steps {
            ang += curl + r.range(-0.1, 0.1);
            let (nx, ny) = (px + 1.5 * ang.cos(), py + 1.5 * ang.sin());
            let taper = 1.0 - i as f32 / steps.max(1) as f32 * 0.7;
            let stroke = Stroke {
                width: width * taper,
                opacity: opacity * taper,
                colour,
            };
            draw_segment(a, s, (px, py), (nx, ny), &stroke, colours);
            px = nx;
            py = ny;
        }
    }
}

/// Width (px), opacity and colour of a strand segment.
struct Stroke {
    width: f32,
    opacity: f32,
    colour: [f32; 3],
}

fn draw_segment(
    a: &mut [f32],
    s: usize,
    p0: (f32, f32),
    p1: (f32, f32),
    stroke: &Stroke,
    colours: &mut StrandColours,
) {
    let (width, opacity) = (stroke.width, stroke.opacity);
    let half = width * 0.5;
    let pad = half + 1.0;
    let x_lo = (p0.0.min(p1.0) - pad).floor().max(0.0) as usize;
    let y_lo = (p0.1.min(p1.1) - pad).floor().max(0.0) as usize;
    let x_hi = ((p0.0.max(p1.0) + pad).ceil() as isize).clamp(0, s as isize - 1) as usize;
    let y_hi = ((p0.1.max(p1.1) + pad).ceil() as isize).clamp(0, s as isize - 1) as usize;
    if p0.0 + pad < 0.0 || p0.1 + pad < 0.0 || x_lo >= s || y_lo >= s {
        return;
    }
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let l2 = (dx * dx + dy * dy).max(1e-6);
    for y in y_lo..=y_hi {
        for x in x_lo..=x_hi {
            let (qx, qy) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = (((qx - p0.0) * dx + (qy - p0.1) * dy) / l2).clamp(0.0, 1.0);
            let (cx, cy) = (p0.0 + t * dx - qx, p0.1 + t * dy - qy);
            let d = (cx * cx + cy * cy).sqrt();
            // Area coverage of a line of width `width` (thin lines: partial coverage).
            let cov = (half + 0.5 - d).clamp(0.0, 1.0).min(width.min(1.0)) * opacity;
            let i = y * s + x;
            if cov > a[i] {
                a[i] = cov;
                colours.rgb[i * 3..i * 3 + 3].copy_from_slice(&stroke.colour);
                colours.set[i] = true;
            }
        }
    }
}

fn motion_blur(r: &mut Rng, a: &mut [f32], s: usize) {
    let len = 3 + r.below(9);
    let ang = r.range(0.0, 3.14);
    let (dx, dy) = (ang.cos(), ang.sin());
    let src = a.to_vec();
    for y in 0..s {
        for x in 0..s {
            let mut acc = 0.0;
            for t in 0..len {
                let o = t as f32 - (len - 1) as f32 / 2.0;
                acc += bilinear(&src, s, s, x as f32 + o * dx, y as f32 + o * dy);
            }
            a[y * s + x] = acc / len as f32;
        }
    }
}
