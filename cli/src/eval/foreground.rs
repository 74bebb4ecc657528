//! The compositor's foreground colour estimation (`slimmatte::foreground::BlurFusion`,
//! `bgreplace estimate-foreground=true`) against compositing the observed colour, given the
//! true alpha, so
//! that only the colour is compared: the colour error on the soft pixels (where the old
//! background shows through) on the images whose true foreground is known, and, with
//! `--crops N`, crops of the most detailed window composited over green.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use slimmatte::foreground::BlurFusion;
use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};

use super::EvalImage;
use super::crops::{Tile, choose, save_tiles, set_key};

/// The new background of the crops: a green screen's green, where halos show.
const GREEN: [f32; 3] = [0.0, 177.0, 64.0];

/// One image's frame with its true alpha in the alpha channel, as the compositor receives
/// it, and the same frame after blur fusion.
fn observed_and_fused(img: &EvalImage, fusion: &mut BlurFusion) -> Result<(Vec<u8>, Vec<u8>)> {
    let (w, h) = (img.sample.width, img.sample.height);
    let mut observed = img.sample.rgba.clone();
    for (px, &a) in observed.chunks_exact_mut(4).zip(&img.sample.alpha) {
        px[3] = (a.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    }
    let mut fused = observed.clone();
    fusion.apply(&mut rgba_view_mut(&mut fused, w, h, w * 4)?);
    Ok((observed, fused))
}

/// Mean over soft pixels (0 < α < 1, 8-bit) of `α · |X − F|` averaged over the channels, in
/// 8-bit levels: the colour error a composite over any new background shows there.
fn soft_colour_error(frame: &[u8], truth: &[u8]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (px, f) in frame.chunks_exact(4).zip(truth.chunks_exact(3)) {
        if px[3] == 0 || px[3] == 255 {
            continue;
        }
        let a = px[3] as f64 / 255.0;
        let d: f64 = (0..3).map(|c| (px[c] as f64 - f[c] as f64).abs()).sum();
        sum += a * d / 3.0;
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// The shipped pipeline's matte of an image: `trimapgen` then the matting stage, with eval's
/// settings (the elements' defaults).
pub struct PipelineMatte<'a> {
    pub trimapgen: &'a mut TrimapGenerator,
    pub trimap: TrimapSettings,
    pub refiner: &'a mut MatteRefiner,
    pub matte: MatteSettings,
}

impl PipelineMatte<'_> {
    /// The image with the pipeline's matte in alpha.
    fn frame(&mut self, img: &EvalImage) -> Result<Vec<u8>> {
        let (w, h) = (img.sample.width, img.sample.height);
        let mut frame = img.sample.rgba.clone();
        let mut view = rgba_view_mut(&mut frame, w, h, w * 4)?;
        self.trimapgen
            .process(&mut view, &self.trimap, AlphaOutput::Trimap)?;
        self.refiner.process(&mut view, &self.matte)?;
        Ok(frame)
    }
}

/// Mean over the frame's soft pixels of the composite's error over green against the true
/// composite `α·F + (1−α)·green`, in 8-bit levels (mean of R, G, B): what a viewer sees
/// where the matte is soft, matte and colour errors together.
fn composite_error(frame: &[u8], alpha: &[f32], truth: &[u8]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for ((px, &a), f) in frame.chunks_exact(4).zip(alpha).zip(truth.chunks_exact(3)) {
        if px[3] == 0 || px[3] == 255 {
            continue;
        }
        let ah = px[3] as f64 / 255.0;
        let a = a as f64;
        let d: f64 = (0..3)
            .map(|c| {
                let g = GREEN[c] as f64;
                let shown = ah * px[c] as f64 + (1.0 - ah) * g;
                let want = a * f[c] as f64 + (1.0 - a) * g;
                (shown - want).abs()
            })
            .sum();
        sum += d / 3.0;
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Writes `<out>/foreground.md` (and crops under `<out>/foreground/` with `--crops N`);
/// returns the table.
pub fn write(
    images: &[EvalImage],
    crops: usize,
    pipeline: Option<PipelineMatte<'_>>,
    out: &Path,
) -> Result<String> {
    let mut fusion = BlurFusion::new();
    let mut md = table(
        images,
        "Foreground colour at soft edges, given the true alpha (so only the colour differs): \
         mean over the pixels with 0 < α < 1 of α·|X − F| (8-bit levels, mean of R, G, B), \
         X = the colour composited — the frame's own colour (`observed`, which still holds the \
         old background) or the blur-fusion estimate of `bgreplace estimate-foreground=true` \
         (Forte & Pitié 2021) — and F the true foreground colour, known for the synthetic \
         stills.",
        |img, truth| {
            let (observed, fused) = observed_and_fused(img, &mut fusion)?;
            let errors = (
                soft_colour_error(&observed, truth),
                soft_colour_error(&fused, truth),
            );
            Ok((observed, errors))
        },
    )?;
    if let Some(mut p) = pipeline {
        md.push('\n');
        md.push_str(&table(
            images,
            "With the shipped pipeline's matte (`trimapgen` + `slimmatte`, default settings) \
             instead of the true alpha: mean over the matte's soft pixels of the composite's \
             error over green against the true composite `α·F + (1−α)·green` (8-bit levels, \
             mean of R, G, B; matte and colour errors together).",
            |img, truth| {
                let (w, h) = (img.sample.width, img.sample.height);
                let observed = p.frame(img)?;
                let mut fused = observed.clone();
                fusion.apply(&mut rgba_view_mut(&mut fused, w, h, w * 4)?);
                let alpha = &img.sample.alpha;
                let errors = (
                    composite_error(&observed, alpha, truth),
                    composite_error(&fused, alpha, truth),
                );
                Ok((observed, errors))
            },
        )?);
    }
    if crops > 0 {
        md.push_str(&crop_strips(images, crops, &mut fusion, out)?);
    }
    std::fs::write(out.join("foreground.md"), &md)
        .with_context(|| format!("writing {}", out.join("foreground.md").display()))?;
    Ok(md)
}

/// Rows per set under `header`: the mean of `score`'s (observed, blur fusion) errors over the
/// images whose true foreground is known, with the soft pixels per image of the frame `score`
/// composited (the frame with its alpha, and the two errors).
fn table(
    images: &[EvalImage],
    header: &str,
    mut score: impl FnMut(&EvalImage, &[u8]) -> Result<(Vec<u8>, (f64, f64))>,
) -> Result<String> {
    let mut md = format!(
        "{header}\n\n| set | n | soft pixels per image | observed | blur fusion |\n\
         |---|---:|---:|---:|---:|\n"
    );
    let mut sets: Vec<&str> = images.iter().map(|i| i.set.as_str()).collect();
    sets.dedup();
    for set in sets {
        let (mut obs, mut fus, mut soft, mut n) = (0.0, 0.0, 0usize, 0usize);
        for img in images.iter().filter(|i| i.set == set) {
            let Some(truth) = &img.sample.foreground else {
                continue;
            };
            let (frame, (o, f)) = score(img, truth)?;
            obs += o;
            fus += f;
            soft += frame
                .chunks_exact(4)
                .filter(|p| p[3] != 0 && p[3] != 255)
                .count();
            n += 1;
        }
        if n > 0 {
            let k = n as f64;
            let _ = writeln!(
                md,
                "| {set} | {n} | {} | {:.2} | {:.2} |",
                soft / n,
                obs / k,
                fus / k
            );
        }
    }
    Ok(md)
}

/// Crops of the `n` most detailed images per set: image | observed colour over green | blur
/// fusion over green | the true foreground over green (where known), all with the true alpha.
fn crop_strips(
    images: &[EvalImage],
    n: usize,
    fusion: &mut BlurFusion,
    out: &Path,
) -> Result<String> {
    let dir = out.join("foreground");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut md = String::from(
        "\nCrops (`foreground/`, 2× nearest neighbour), left to right: image | observed colour \
         over green | blur fusion over green | true foreground over green (synthetic only); all \
         with the true alpha.\n\n",
    );
    for i in choose(images, n) {
        let img = &images[i];
        let (observed, fused) = observed_and_fused(img, fusion)?;
        let over_green = |frame: &[u8], k: usize| -> [u8; 3] {
            let a = frame[4 * k + 3] as f32 / 255.0;
            [0, 1, 2].map(|c| (a * frame[4 * k + c] as f32 + (1.0 - a) * GREEN[c] + 0.5) as u8)
        };
        let mut tiles: Vec<Tile<'_>> = vec![
            Box::new(|k| {
                let p = &img.sample.rgba[4 * k..4 * k + 3];
                [p[0], p[1], p[2]]
            }),
            Box::new(|k| over_green(&observed, k)),
            Box::new(|k| over_green(&fused, k)),
        ];
        if let Some(truth) = &img.sample.foreground {
            let observed = &observed;
            tiles.push(Box::new(move |k| {
                let a = observed[4 * k + 3] as f32 / 255.0;
                [0, 1, 2].map(|c| (a * truth[3 * k + c] as f32 + (1.0 - a) * GREEN[c] + 0.5) as u8)
            }));
        }
        let name = format!("{}_{i}.png", set_key(&img.set));
        save_tiles(img, &tiles, &dir.join(&name))?;
        let _ = writeln!(md, "- `foreground/{name}`: {} image {i}", img.set);
    }
    Ok(md)
}
