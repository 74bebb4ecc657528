//! Person stills framed the way photos and webcams frame people, which the centred silhouettes
//! of [`crate::sequence::still`] do not: off-centre, cut by the frame's edge, with an arm
//! raised, and two people. Each is the astronaut photograph on one or two soft-edged
//! silhouettes (exact alpha) over another real photograph, so the person segmenters see a
//! person. `eval --people N` scores them (test stills 0, 1, …; tuning stills 10000 and up).

use anyhow::{Result, ensure};

use crate::sequence::{Sample, Silhouette, composite, cover, is_person, pair_name, person_canvas};
use slimmatte::composite::RgbaImage;
use slimmatte_measure::rng::Rng;

/// How person still `index` is framed: `index % 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Near the left or right edge, whole.
    OffCentre,
    /// Half out of the frame at the left or right.
    CutByEdge,
    /// One arm raised beside the head.
    ArmRaised,
    /// Two people side by side, smaller.
    TwoPeople,
}

impl Layout {
    pub fn of(index: usize) -> Self {
        [
            Layout::OffCentre,
            Layout::CutByEdge,
            Layout::ArmRaised,
            Layout::TwoPeople,
        ][index % 4]
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::OffCentre => "offcentre",
            Layout::CutByEdge => "cut",
            Layout::ArmRaised => "arm",
            Layout::TwoPeople => "two",
        }
    }
}

/// Person still `index` at `w × h` (deterministic): the astronaut over the `index`-th other
/// picture in turn, framed by [`Layout::of`].
pub fn people_still(
    textures: &[(String, RgbaImage)],
    index: usize,
    w: usize,
    h: usize,
) -> Result<Sample> {
    ensure!(w >= 16 && h >= 16, "person stills need at least 16×16");
    let fi = textures
        .iter()
        .position(|(name, _)| is_person(name))
        .ok_or_else(|| anyhow::anyhow!("person stills need the astronaut photograph"))?;
    let others: Vec<usize> = (0..textures.len()).filter(|&i| i != fi).collect();
    ensure!(
        !others.is_empty(),
        "person stills need a background picture"
    );
    let bi = others[index % others.len()];
    let mut rng = Rng::new(0x9E0_91E5 + index as u64);
    let layout = Layout::of(index);
    let (wf, hf) = (w as f32, h as f32);
    let side = |rng: &mut Rng, near: f32, far: f32| {
        let x = rng.range(near, far);
        if rng.below(2) == 0 { x } else { 1.0 - x }
    };
    let people = match layout {
        Layout::OffCentre => {
            let scale = hf * rng.range(0.55, 0.75);
            let cx = wf * side(&mut rng, 0.14, 0.22);
            vec![Silhouette::placed(&mut rng, h, scale, cx)]
        }
        Layout::CutByEdge => {
            let scale = hf * rng.range(0.65, 0.85);
            let cx = wf * side(&mut rng, 0.0, 0.06);
            vec![Silhouette::placed(&mut rng, h, scale, cx)]
        }
        Layout::ArmRaised => {
            let scale = hf * rng.range(0.5, 0.65);
            let cx = wf * rng.range(0.35, 0.65);
            let mut s = Silhouette::placed(&mut rng, h, scale, cx);
            let (hx, hy, hr) = s.head;
            let (tx, ty, rx, ry) = s.torso;
            let dir = if rng.below(2) == 0 { -1.0 } else { 1.0 };
            let shoulder = (tx + dir * 0.7 * rx, ty - 0.6 * ry);
            let hand = (
                hx + dir * rng.range(1.6, 2.4) * hr,
                hy - rng.range(0.8, 1.6) * hr,
            );
            s.arm = Some((shoulder, hand, 0.3 * hr));
            vec![s]
        }
        Layout::TwoPeople => {
            let scale = hf * rng.range(0.45, 0.6);
            let left = wf * rng.range(0.22, 0.32);
            let right = wf * rng.range(0.68, 0.78);
            let second = scale * rng.range(0.9, 1.1);
            vec![
                Silhouette::placed(&mut rng, h, scale, left),
                Silhouette::placed(&mut rng, h, second, right),
            ]
        }
    };
    let bg = cover(&textures[bi].1, w, h)?;
    let mut alpha = vec![0.0f32; w * h];
    let mut fg = vec![0u8; 3 * w * h];
    for person in &people {
        let a = person.alpha(w, h);
        let mut canvas = person_canvas(&textures[fi].1, person.head, w, h, 0.0);
        if let Some((shoulder, hand, _)) = person.arm {
            sleeve(&mut canvas, w, h, shoulder, hand, person.torso);
        }
        // Where people overlap, the nearer (later) one is in front.
        for (k, (o, &ak)) in alpha.iter_mut().zip(&a).enumerate() {
            if ak > 0.0 && ak >= *o {
                fg[3 * k..3 * k + 3].copy_from_slice(&canvas[3 * k..3 * k + 3]);
            }
            *o = 1.0 - (1.0 - *o) * (1.0 - ak);
        }
    }
    let rgba = composite(&alpha, w, h, &fg, w, (0, 0), &bg, w, (0, 0));
    Ok(Sample {
        name: pair_name(
            &format!("people_{index:03}_{}", layout.name()),
            textures,
            (fi, bi),
        ),
        width: w,
        height: h,
        rgba,
        alpha,
        foreground: Some(fg),
    })
}

/// Textures a raised arm with the suit: each pixel near the segment `shoulder → hand` takes
/// the colour of the torso's pixel as far below the shoulder as it is along the arm.
fn sleeve(
    canvas: &mut [u8],
    w: usize,
    h: usize,
    shoulder: (f32, f32),
    hand: (f32, f32),
    (tx, ty, _, ry): (f32, f32, f32, f32),
) {
    let (dx, dy) = (hand.0 - shoulder.0, hand.1 - shoulder.1);
    let len = dx.hypot(dy).max(1.0);
    let reach = len * 0.5;
    let (x0, x1) = (
        shoulder.0.min(hand.0) - reach,
        shoulder.0.max(hand.0) + reach,
    );
    let (y0, y1) = (
        shoulder.1.min(hand.1) - reach,
        shoulder.1.max(hand.1) + reach,
    );
    let clampx = |v: f32| (v.max(0.0) as usize).min(w);
    let clampy = |v: f32| (v.max(0.0) as usize).min(h);
    for y in clampy(y0)..clampy(y1) {
        for x in clampx(x0)..clampx(x1) {
            let (px, py) = (x as f32 + 0.5 - shoulder.0, y as f32 + 0.5 - shoulder.1);
            let along = ((px * dx + py * dy) / len).clamp(0.0, len);
            let across = (px * dy - py * dx) / len;
            // The source: on the torso, below its top, `along` further down, `across` aside.
            let sx = (tx + across).clamp(0.0, w as f32 - 1.0) as usize;
            let sy = (ty - 0.3 * ry + 0.5 * along).clamp(0.0, h as f32 - 1.0) as usize;
            let (src, dst) = (3 * (sy * w + sx), 3 * (y * w + x));
            let c = [canvas[src], canvas[src + 1], canvas[src + 2]];
            canvas[dst..dst + 3].copy_from_slice(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tex() -> Vec<(String, RgbaImage)> {
        crate::sequence::textures().unwrap()
    }

    #[test]
    fn layouts_frame_the_person_as_named() {
        let t = tex();
        let (w, h) = (160usize, 90usize);
        let cover_x = |s: &Sample| {
            let cols: Vec<f32> = (0..w)
                .map(|x| (0..h).map(|y| s.alpha[y * w + x]).sum::<f32>())
                .collect();
            let mass: f32 = cols.iter().sum();
            let mean = cols
                .iter()
                .enumerate()
                .map(|(x, c)| x as f32 * c)
                .sum::<f32>()
                / mass;
            (mean / w as f32, cols)
        };
        for i in 0..8 {
            let s = people_still(&t, i, w, h).unwrap();
            assert_eq!(
                s.rgba,
                people_still(&t, i, w, h).unwrap().rgba,
                "deterministic"
            );
            assert!(s.alpha.iter().any(|&a| a > 0.99) && s.alpha.contains(&0.0));
            let (mean, cols) = cover_x(&s);
            match Layout::of(i) {
                Layout::OffCentre => assert!(!(0.3..0.7).contains(&mean), "{i}: {mean}"),
                // The body reaches the frame's edge column.
                Layout::CutByEdge => assert!(cols[0] > 5.0 || cols[w - 1] > 5.0, "{i}"),
                // Rows with two person runs: the head and the raised arm beside it.
                Layout::ArmRaised => {
                    let runs = |y: usize| {
                        (1..w)
                            .filter(|&x| s.alpha[y * w + x] > 0.5 && s.alpha[y * w + x - 1] <= 0.5)
                            .count()
                    };
                    let rows = (0..h).filter(|&y| runs(y) >= 2).count();
                    assert!(
                        rows >= 3,
                        "{i}: no raised arm beside the head ({rows} rows)"
                    );
                }
                // Background between the two people in the middle columns.
                Layout::TwoPeople => {
                    let mid = cols[w / 2];
                    let side = cols[w / 4].max(cols[3 * w / 4]);
                    assert!(mid < 0.5 * side, "{i}: middle {mid}, sides {side}");
                }
            }
        }
    }
}
