//! The refinement run to convergence is closed-form matting: on the one real photograph with a
//! reference matte that a Debian package ships (opencv-doc's `alphamat` plant, never used for
//! training or tuning), its SAD lands within 10 % of pymatting's `estimate_alpha_cf` (Levin et
//! al.'s direct solve) on the same image and trimap.
//!
//! Needs `opencv-doc` and the project's `.venv` with pymatting (both installed by
//! `scripts/setup.sh`). Without them the test says so and passes, unless
//! `SLIMMATTE_REQUIRE_ALPHAMAT=1` (set by `scripts/test.sh`, so CI cannot skip it).

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::Array3;
use slimmatte::refine::{LaplacianSolver, RefineMethod, RefineSettings};
use slimmatte_measure::metrics::sad;

const ALPHAMAT: &str = "/usr/share/doc/opencv-doc/examples/alphamat";

fn skip_or_fail(why: &str) {
    if std::env::var_os("SLIMMATTE_REQUIRE_ALPHAMAT").is_some() {
        panic!("{why} (SLIMMATTE_REQUIRE_ALPHAMAT is set)");
    }
    eprintln!("skipped: {why}");
}

fn grey(path: &Path) -> (Vec<u8>, usize, usize) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    (img.into_raw(), w, h)
}

#[test]
fn converged_refinement_matches_closed_form_matting_on_a_real_photo() {
    let dir = Path::new(ALPHAMAT);
    if !dir.is_dir() {
        return skip_or_fail(&format!("{ALPHAMAT} missing (apt-get install opencv-doc)"));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    if !python.is_file() {
        return skip_or_fail(".venv missing (bash scripts/setup.sh --no-demo)");
    }
    let image_path = dir.join("input_images/plant.jpg");
    let rgb = image::open(&image_path).unwrap().to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (trimap_raw, tw, th) = grey(&dir.join("trimaps/plant.png"));
    let (gt_raw, gw, gh) = grey(&dir.join("output_mattes/plant_result.png"));
    assert_eq!((tw, th, gw, gh), (w, h, w, h));
    let trimap: Vec<u8> = trimap_raw
        .iter()
        .map(|&t| match t {
            0..=10 => 0,
            245..=255 => 255,
            _ => 128,
        })
        .collect();
    let gt: Vec<f32> = gt_raw.iter().map(|&v| v as f32 / 255.0).collect();

    // pymatting's closed-form solve on the same image and (three-valued) trimap.
    let tmp = std::env::temp_dir().join(format!("slimmatte-refine-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (ip, tp, ap) = (
        tmp.join("image.png"),
        tmp.join("trimap.png"),
        tmp.join("cf.f32"),
    );
    rgb.save(&ip).unwrap();
    image::save_buffer(&tp, &trimap, w as u32, h as u32, image::ColorType::L8).unwrap();
    let jobs = tmp.join("jobs.txt");
    std::fs::write(
        &jobs,
        format!("{} {} {}\n", ip.display(), tp.display(), ap.display()),
    )
    .unwrap();
    let out = Command::new(&python)
        .arg(root.join("tools/closed_form.py"))
        .arg(&jobs)
        .output()
        .expect("running tools/closed_form.py");
    if !out.status.success() {
        return skip_or_fail(&format!(
            "tools/closed_form.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let cf: Vec<f32> = std::fs::read(&ap)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(cf.len(), w * h);

    // Our solver from a flat 0.5 start (no network), 3×3 windows and pymatting's ε = 1e-7.
    let mut crop = Array3::<u8>::zeros((h, w, 4));
    for (i, (p, &t)) in rgb.pixels().zip(&trimap).enumerate() {
        let (y, x) = (i / w, i % w);
        for c in 0..3 {
            crop[[y, x, c]] = p[c];
        }
        crop[[y, x, 3]] = t;
    }
    let mut alpha = vec![0.5f32; w * h];
    let settings = RefineSettings {
        method: RefineMethod::Laplacian,
        iterations: 300,
        coarse_iterations: 0,
        radius: 1,
        lambda: 0.0,
        levels: 5,
        epsilon: 1e-7,
        size: 0,
        trust: 0.0,
    };
    let mut solver = LaplacianSolver::new();
    solver.refine(&crop.view(), &mut alpha, &settings);
    let res = solver.residuals();
    assert!(
        res[res.len() - 1] < 1e-3 * res[0],
        "not converged: residual {} → {}",
        res[0],
        res[res.len() - 1]
    );

    let (ours, theirs) = (sad(&alpha, &gt, &trimap), sad(&cf, &gt, &trimap));
    eprintln!(
        "alphamat SAD: refinement to convergence {ours:.3}, pymatting closed-form {theirs:.3}"
    );
    assert!(
        (ours - theirs).abs() <= 0.1 * theirs,
        "SAD {ours:.3} vs closed-form {theirs:.3}"
    );
}
