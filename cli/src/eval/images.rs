//! The images `eval` measures on: synthetic stills and moving sequences with exact alpha, and
//! folders of (image, trimap?, alpha) triples; and the export of the stills as such a folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::{ALPHAMAT_DIR, EvalArgs, EvalImage};
use crate::sequence::{self, Sample};
use slimmatte::composite::RgbaImage;

fn load_rgba(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode image {}", path.display()))?
        .to_rgba8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((img.into_raw(), w, h))
}

/// A grey image (alpha or trimap) as 0..1 floats; 16-bit PNGs keep their precision.
fn load_grey(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode image {}", path.display()))?
        .to_luma16();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((
        img.into_raw().iter().map(|&v| v as f32 / 65535.0).collect(),
        w,
        h,
    ))
}

const IMAGE_DIRS: &[&str] = &["image", "images", "input_images", "input", "merged", "rgb"];
const TRIMAP_DIRS: &[&str] = &["trimap", "trimaps"];
const ALPHA_DIRS: &[&str] = &[
    "alpha",
    "alphas",
    "gt",
    "alpha_gt",
    "output_mattes",
    "matte",
];
const EXTS: &[&str] = &["png", "jpg", "jpeg"];
const SUFFIXES: &[&str] = &["_result", "_alpha", "_gt", "_trimap", "_matte"];

fn stem_key(p: &Path) -> String {
    let s = p
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    for suf in SUFFIXES {
        if let Some(base) = s.strip_suffix(suf) {
            return base.to_string();
        }
    }
    s
}

fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    v.sort();
    Ok(v)
}

fn subdir(root: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| root.join(n)).find(|p| p.is_dir())
}

/// The images of `dir` by [`stem_key`].
fn images_by_key(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    Ok(images_in(dir)?
        .into_iter()
        .map(|p| (stem_key(&p), p))
        .collect())
}

/// (image, trimap?, alpha) paths found in `root`.
pub fn find_triples(root: &Path) -> Result<Vec<(PathBuf, Option<PathBuf>, PathBuf)>> {
    ensure!(
        root.is_dir(),
        "evaluation folder {} does not exist",
        root.display()
    );
    let mut out = Vec::new();
    if let (Some(idir), Some(adir)) = (subdir(root, IMAGE_DIRS), subdir(root, ALPHA_DIRS)) {
        let alphas = images_by_key(&adir)?;
        let trimaps = match subdir(root, TRIMAP_DIRS) {
            Some(t) => images_by_key(&t)?,
            None => BTreeMap::new(),
        };
        for img in images_in(&idir)? {
            let key = stem_key(&img);
            let Some(alpha) = alphas.get(&key) else {
                bail!(
                    "{}: no ground-truth alpha named {key}.* in {}",
                    img.display(),
                    adir.display()
                );
            };
            out.push((img.clone(), trimaps.get(&key).cloned(), alpha.clone()));
        }
    } else {
        let files = images_in(root)?;
        let has = |key: &str, suffix: &str| {
            files
                .iter()
                .find(|p| {
                    p.file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s == format!("{key}{suffix}"))
                })
                .cloned()
        };
        for f in &files {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if SUFFIXES.iter().any(|s| stem.ends_with(s)) {
                continue;
            }
            let Some(alpha) = has(stem, "_alpha").or_else(|| has(stem, "_gt")) else {
                bail!(
                    "{}: no ground-truth alpha {stem}_alpha.png next to it",
                    f.display()
                );
            };
            out.push((f.clone(), has(stem, "_trimap"), alpha));
        }
    }
    ensure!(
        !out.is_empty(),
        "no (image, alpha) pairs found in {} (expected image/ + alpha/ subfolders, or \
         NAME.png + NAME_alpha.png)",
        root.display()
    );
    Ok(out)
}

/// Loads a folder's triples; a missing trimap is made from the ground truth.
pub fn load_folder(root: &Path, set: &str, radius: usize) -> Result<Vec<EvalImage>> {
    let mut out = Vec::new();
    for (img, trimap, alpha) in find_triples(root)? {
        let (rgba, w, h) = load_rgba(&img)?;
        let (gt, aw, ah) = load_grey(&alpha)?;
        ensure!(
            (aw, ah) == (w, h),
            "{} is {aw}×{ah} but its image {} is {w}×{h}",
            alpha.display(),
            img.display()
        );
        let trimap = match trimap {
            Some(t) => load_trimap(&t, &img, (w, h))?,
            None => sequence::trimap_from_alpha(&gt, w, h, radius),
        };
        out.push(EvalImage {
            set: set.to_string(),
            sample: Sample {
                name: stem_key(&img),
                width: w,
                height: h,
                rgba,
                alpha: gt,
                foreground: None,
            },
            trimap,
        });
    }
    Ok(out)
}

/// The trimap file `t` of `img` (which is `w`×`h`) as 0 / 128 / 255.
fn load_trimap(t: &Path, img: &Path, (w, h): (usize, usize)) -> Result<Vec<u8>> {
    let (tv, tw, th) = load_grey(t)?;
    ensure!(
        (tw, th) == (w, h),
        "{} is {tw}×{th} but its image {} is {w}×{h}",
        t.display(),
        img.display()
    );
    Ok(tv
        .iter()
        .map(|&v| {
            if v <= 10.0 / 255.0 {
                0
            } else if v >= 245.0 / 255.0 {
                255
            } else {
                128
            }
        })
        .collect())
}

/// A synthetic sample with its evaluation trimap (ground-truth soft region dilated by
/// `radius`).
pub(super) fn with_gt_trimap(set: &str, sample: Sample, radius: usize) -> EvalImage {
    let trimap = sequence::trimap_from_alpha(&sample.alpha, sample.width, sample.height, radius);
    EvalImage {
        set: set.into(),
        sample,
        trimap,
    }
}

/// Every still `eval` measures: the synthetic ones (exported when asked), the `--folder`s and
/// opencv-doc's alphamat example (a note when it is missing).
pub(super) fn stills(
    args: &EvalArgs,
    textures: &[(String, RgbaImage)],
    notes: &mut Vec<String>,
) -> Result<Vec<EvalImage>> {
    let mut images = Vec::new();
    for i in args.still_offset..args.still_offset + args.synthetic {
        let s = sequence::still(textures, i, args.width, args.height)?;
        images.push(with_gt_trimap("synthetic", s, args.trimap_radius));
    }
    for i in args.still_offset..args.still_offset + args.people {
        let s = crate::people::people_still(textures, i, args.width, args.height)?;
        images.push(with_gt_trimap("people", s, args.trimap_radius));
    }
    if let Some(dir) = &args.export {
        export(&images, dir)?;
        println!(
            "wrote {} synthetic images to {}",
            images.len(),
            dir.display()
        );
    }
    for f in &args.folder {
        let set = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("folder")
            .to_string();
        images.extend(load_folder(f, &set, args.trimap_radius)?);
    }
    if args.alphamat {
        let dir = Path::new(ALPHAMAT_DIR);
        if dir.is_dir() {
            images.extend(load_folder(
                dir,
                "alphamat (opencv-doc)",
                args.trimap_radius,
            )?);
        } else {
            let n = format!(
                "{ALPHAMAT_DIR} missing (`apt-get install opencv-doc`, 95 MB download): skipped"
            );
            eprintln!("note: {n}");
            notes.push(n);
        }
    }
    Ok(images)
}

/// Writes images as `dir/{image,trimap,alpha}/NAME.png` (alpha as 16-bit grey).
pub fn export(images: &[EvalImage], dir: &Path) -> Result<()> {
    for sub in ["image", "trimap", "alpha"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
    }
    for img in images {
        let (w, h) = (img.sample.width, img.sample.height);
        let name = format!("{}.png", img.sample.name);
        save_png_rgb(&dir.join("image").join(&name), &img.sample.rgba, w, h)?;
        image::save_buffer(
            dir.join("trimap").join(&name),
            &img.trimap,
            w as u32,
            h as u32,
            image::ColorType::L8,
        )?;
        let alpha16: Vec<u16> = img
            .sample
            .alpha
            .iter()
            .map(|&a| (a.clamp(0.0, 1.0) * 65535.0).round() as u16)
            .collect();
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w as u32, h as u32, alpha16)
            .context("alpha buffer")?
            .save(dir.join("alpha").join(&name))?;
    }
    Ok(())
}

/// Saves packed RGBA pixels as an RGB PNG.
pub(super) fn save_png_rgb(path: &Path, rgba: &[u8], w: usize, h: usize) -> Result<()> {
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    image::save_buffer(path, &rgb, w as u32, h as u32, image::ColorType::Rgb8)
        .with_context(|| format!("writing {}", path.display()))
}
