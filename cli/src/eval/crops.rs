//! `eval --crops N`: what the mattes look like where it matters. For the N still images with
//! the most soft ground-truth pixels of each set (and opencv-doc's alphamat photograph), a PNG
//! of the most detailed 128×128 window, enlarged 2×: the image, then each matting model's net
//! alone given the true trimap (no refinement, so the nets are compared, not the solver), then
//! the refinement alone (the classical pipeline, `band-net=false`) and the refinement with the
//! band net (the default), both given the true trimap, then the ground truth. `crops.md` lists
//! the order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::refine::RefineSettings;

use super::models::model_label;
use super::{EvalArgs, EvalImage, matte_given_trimap};

/// Writes `<out>/crops/<set>_<index>.png` and `<out>/crops/crops.md`.
pub fn write(args: &EvalArgs, images: &[EvalImage], models: &[PathBuf]) -> Result<()> {
    let dir = args.out.join("crops");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let settings = MatteSettings {
        refine: RefineSettings::none(),
        ..args.refine.matte_settings(args.working_size)
    };
    let chosen = choose(images, args.crops);
    let mut refiners = Vec::new();
    for m in models {
        refiners.push(MatteRefiner::load(m, args.threads)?);
    }
    let mut md = String::from(
        "# Matte crops\n\nThe most detailed 128×128 window of each image (2× nearest-neighbour), \
         left to right: image",
    );
    for m in models {
        let _ = write!(md, " | `{}` (net alone, true trimap)", model_label(m));
    }
    // The refinement without and with the band net (when `--band-net` is on).
    let refined = MatteSettings {
        refine: args.refine.settings(),
        ..settings
    };
    let mut stage = Vec::new();
    if let Some(m) = models.first()
        && refined.refine.enabled()
    {
        stage.push(MatteRefiner::load(m, args.threads)?);
        md.push_str(" | refinement alone (`band-net=false`), true trimap");
        if args.refine.band_net {
            let mut r = MatteRefiner::load(m, args.threads)?;
            args.refine.load_band_net(&mut r, args.threads)?;
            stage.push(r);
            md.push_str(" | refinement + band net (the default), true trimap");
        }
    }
    md.push_str(" | ground truth.\n\n");
    let mut alpha = Vec::new();
    for &i in &chosen {
        let img = &images[i];
        let mut tiles = Vec::new();
        for r in refiners.iter_mut() {
            matte_given_trimap(r, img, &settings, &mut alpha)?;
            tiles.push(alpha.clone());
        }
        for r in stage.iter_mut() {
            matte_given_trimap(r, img, &refined, &mut alpha)?;
            tiles.push(alpha.clone());
        }
        tiles.push(img.sample.alpha.clone());
        let name = format!("{}_{i}.png", set_key(&img.set));
        tiles_png(img, &tiles, &dir.join(&name))?;
        let _ = writeln!(md, "- `{name}`: {} image {i}", img.set);
    }
    std::fs::write(dir.join("crops.md"), md)?;
    println!("wrote {} crop(s) to {}", chosen.len(), dir.display());
    Ok(())
}

/// A set's name as a file-name part: "alphamat (opencv-doc)" → "alphamat_opencv_doc".
pub fn set_key(set: &str) -> String {
    set.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Per set, the `n` images with the most soft ground-truth pixels (indices into `images`).
pub fn choose(images: &[EvalImage], n: usize) -> Vec<usize> {
    let soft = |img: &EvalImage| {
        img.sample
            .alpha
            .iter()
            .filter(|&&a| a > 0.05 && a < 0.95)
            .count()
    };
    let mut sets: Vec<&str> = images.iter().map(|i| i.set.as_str()).collect();
    sets.dedup();
    let mut out = Vec::new();
    for set in sets {
        let mut idx: Vec<usize> = (0..images.len())
            .filter(|&i| images[i].set == set)
            .collect();
        idx.sort_by_key(|&i| std::cmp::Reverse(soft(&images[i])));
        out.extend(idx.into_iter().take(n));
    }
    out
}

/// Side-by-side crops of the window with the most soft ground-truth pixels: the image, then
/// each alpha in `tiles`, each enlarged 2× (nearest neighbour, so strands are not smoothed).
pub fn tiles_png(img: &EvalImage, tiles: &[Vec<f32>], path: &Path) -> Result<()> {
    let rgba = &img.sample.rgba;
    let mut colour: Vec<Tile<'_>> = vec![Box::new(|k| {
        let p = &rgba[k * 4..k * 4 + 3];
        [p[0], p[1], p[2]]
    })];
    for alpha in tiles {
        colour.push(Box::new(|k| {
            let v = (alpha[k].clamp(0.0, 1.0) * 255.0).round() as u8;
            [v, v, v]
        }));
    }
    save_tiles(img, &colour, path)
}

/// One tile of a crop strip: the RGB to show for pixel `k` (row-major index) of the image.
pub type Tile<'a> = Box<dyn Fn(usize) -> [u8; 3] + 'a>;

/// The `side × side` window (its top-left corner and side) with the most soft ground-truth
/// pixels, on an 8-px grid.
fn soft_window(img: &EvalImage) -> (usize, usize, usize) {
    let (w, h) = (img.sample.width, img.sample.height);
    let side = 128.min(w).min(h);
    let soft: Vec<u32> = img
        .sample
        .alpha
        .iter()
        .map(|&a| (a > 0.05 && a < 0.95) as u32)
        .collect();
    let (mut best, mut best_xy) = (0u32, (0, 0));
    for y in (0..=h - side).step_by(8) {
        for x in (0..=w - side).step_by(8) {
            let mut s = 0;
            for yy in (y..y + side).step_by(2) {
                for xx in (x..x + side).step_by(2) {
                    s += soft[yy * w + xx];
                }
            }
            if s > best {
                best = s;
                best_xy = (x, y);
            }
        }
    }
    (best_xy.0, best_xy.1, side)
}

/// Writes the tiles of the image's most detailed window side by side, each enlarged 2×
/// (nearest neighbour, so strands are not smoothed), 4 px apart.
pub fn save_tiles(img: &EvalImage, tiles: &[Tile<'_>], path: &Path) -> Result<()> {
    let w = img.sample.width;
    let (x0, y0, side) = soft_window(img);
    let scale = 2;
    let n = tiles.len();
    let gap = 4;
    let tw = side * scale;
    let (ow, oh) = (n * tw + (n - 1) * gap, tw);
    let mut out = vec![255u8; ow * oh * 3];
    for (t, tile) in tiles.iter().enumerate() {
        for y in 0..oh {
            for x in 0..tw {
                let (sx, sy) = (x0 + x / scale, y0 + y / scale);
                let o = (y * ow + t * (tw + gap) + x) * 3;
                out[o..o + 3].copy_from_slice(&tile(sy * w + sx));
            }
        }
    }
    image::save_buffer(path, &out, ow as u32, oh as u32, image::ColorType::Rgb8)
        .with_context(|| format!("writing {}", path.display()))
}
