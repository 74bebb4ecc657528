use super::laplacian::{Level, sym_inverse, sym_mul};
use super::spans::Spans;
use super::*;
use ndarray::Array3;

/// An RGBA crop whose colour is `α·F + (1 − α)·B` with constant F and B (so alpha is an
/// exact affine function of colour in every window), trimap known where α is 0 or 1.
fn linear_model_scene(w: usize, h: usize) -> (Array3<u8>, Vec<f32>) {
    // 8-bit colours, so known pixels project to exactly 0 and 1.
    let (f, b) = (
        [230.0 / 255.0, 191.0 / 255.0, 51.0 / 255.0],
        [25.0 / 255.0, 76.0 / 255.0, 217.0 / 255.0],
    );
    let mut crop = Array3::<u8>::zeros((h, w, 4));
    let mut truth = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            let field = 0.5 + 0.9 * (xf / 7.0 + yf / 11.0).sin() * (yf / 5.0).cos();
            let a = field.clamp(0.0, 1.0);
            // Quantised like a camera would: α then follows from the 8-bit colour.
            let mut c = [0u8; 3];
            for i in 0..3 {
                c[i] = ((a * f[i] + (1.0 - a) * b[i]) * 255.0).round() as u8;
            }
            // Recover the exact α of the quantised colour (least squares along F − B).
            let (mut num, mut den) = (0.0f32, 0.0f32);
            for i in 0..3 {
                let d = f[i] - b[i];
                num += (c[i] as f32 / 255.0 - b[i]) * d;
                den += d * d;
            }
            let a = num / den;
            truth[y * w + x] = a;
            let t = if field <= 0.0 {
                0
            } else if field >= 1.0 {
                255
            } else {
                128
            };
            crop[[y, x, 0]] = c[0];
            crop[[y, x, 1]] = c[1];
            crop[[y, x, 2]] = c[2];
            crop[[y, x, 3]] = t;
        }
    }
    (crop, truth)
}

/// Largest |α − truth| after refining the linear scene from a flat 0.5 start.
fn linear_scene_error(iterations: u32, radius: u32, levels: u32) -> f32 {
    let (w, h) = (96, 80);
    let (crop, truth) = linear_model_scene(w, h);
    let mut alpha = vec![0.5f32; w * h];
    let settings = RefineSettings {
        iterations,
        radius,
        levels,
        epsilon: 1e-7,
        ..RefineSettings::default()
    };
    let report = LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
    assert!(report.unknown > w * h / 4, "scene has an unknown band");
    alpha
        .iter()
        .zip(&truth)
        .map(|(a, t)| (a - t).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn recovers_alpha_that_is_linear_in_colour() {
    let worst = linear_scene_error(600, 1, 3);
    assert!(worst < 1e-3, "max |α − truth| = {worst}");
}

#[test]
fn larger_windows_also_recover_the_linear_model() {
    let worst = linear_scene_error(300, 3, 2);
    assert!(worst < 1e-3, "max |α − truth| = {worst}");
}

fn noisy_scene(w: usize, h: usize, seed: u64) -> Array3<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut crop = Array3::<u8>::zeros((h, w, 4));
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let rad = w.min(h) as f32 / 3.0;
            for c in 0..3 {
                crop[[y, x, c]] = (next() % 256) as u8;
            }
            crop[[y, x, 3]] = if d < rad - 4.0 {
                255
            } else if d > rad + 4.0 {
                0
            } else {
                128
            };
        }
    }
    crop
}

#[test]
fn residual_falls_and_known_pixels_never_change() {
    let (w, h) = (64, 48);
    let crop = noisy_scene(w, h, 7);
    let mut alpha: Vec<f32> = (0..w * h).map(|i| (i % 7) as f32 / 6.0).collect();
    alpha[5] = f32::NAN;
    alpha[w * h / 2 + w / 2] = f32::NAN;
    let settings = RefineSettings {
        iterations: 60,
        levels: 1,
        ..RefineSettings::default()
    };
    let mut solver = LaplacianSolver::new();
    solver.refine(&crop.view(), &mut alpha, &settings);
    let res = solver.residuals();
    assert!(res.len() > 40, "initial residual plus one per iteration");
    let last = res[res.len() - 1];
    assert!(last < 1e-3 * res[0], "residual {} → {last}", res[0]);
    for k in [10, 20, 40] {
        assert!(res[k] < res[k / 2], "residual at {k} not below {}", k / 2);
    }
    for (i, a) in alpha.iter().enumerate() {
        let t = crop[[i / w, i % w, 3]];
        match t {
            0 => assert_eq!(*a, 0.0),
            255 => assert_eq!(*a, 1.0),
            _ => assert!((0.0..=1.0).contains(a), "unknown alpha {a}"),
        }
    }
}

#[test]
fn data_term_pulls_towards_the_net() {
    let (w, h) = (64, 48);
    let crop = noisy_scene(w, h, 3);
    let net: Vec<f32> = (0..w * h)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let dist = |lambda: f32| {
        let mut alpha = net.clone();
        let settings = RefineSettings {
            iterations: 80,
            lambda,
            ..RefineSettings::default()
        };
        LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
        alpha
            .iter()
            .zip(&net)
            .enumerate()
            .filter(|(i, _)| crop[[i / w, i % w, 3]] == 128)
            .map(|(_, (a, n))| (a - n).abs() as f64)
            .sum::<f64>()
    };
    let (free, some, held) = (dist(0.0), dist(10.0), dist(1000.0));
    assert!(
        some < free && held < 0.2 * some,
        "moved {free} > {some} > {held}"
    );
}

#[test]
fn trust_holds_only_what_the_net_is_sure_of() {
    let (w, h) = (64, 48);
    let crop = noisy_scene(w, h, 5);
    let unknown = |i: usize| crop[[i / w, i % w, 3]] == 128;
    let refine = |net: &[f32], trust: f32| {
        let mut alpha = net.to_vec();
        let settings = RefineSettings {
            iterations: 20,
            lambda: 0.0,
            trust,
            ..RefineSettings::default()
        };
        LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
        alpha
    };
    // Sure (1.0) on the left half, undecided (0.5) on the right.
    let net: Vec<f32> = (0..w * h)
        .map(|i| if i % w < w / 2 { 1.0 } else { 0.5 })
        .collect();
    let left_moved = |alpha: &[f32]| {
        (0..w * h)
            .filter(|&i| unknown(i) && i % w < w / 2 - 4)
            .map(|i| (alpha[i] - 1.0).abs() as f64)
            .sum::<f64>()
    };
    let (free, held) = (
        left_moved(&refine(&net, 0.0)),
        left_moved(&refine(&net, 50.0)),
    );
    assert!(free > 1.0 && held < 0.2 * free, "moved {free} vs {held}");
    // A net undecided everywhere (0.5) gets no weight at all: trust changes nothing.
    let flat = vec![0.5f32; w * h];
    assert_eq!(refine(&flat, 0.0), refine(&flat, 50.0));
}

#[test]
fn the_net_matters_unless_no_data_term_on_the_full_pyramid() {
    let d = RefineSettings::default();
    assert!(
        !d.uses_net(),
        "the default refinement does not depend on the net"
    );
    assert!(RefineSettings::none().uses_net());
    assert!(RefineSettings { trust: 0.5, ..d }.uses_net());
    assert!(RefineSettings { lambda: 0.1, ..d }.uses_net());
    assert!(RefineSettings { levels: 3, ..d }.uses_net());
    assert!(RefineSettings { iterations: 0, ..d }.uses_net());
    assert!(RefineSettings { size: 0, ..d }.uses_net());
    assert!(RefineSettings { size: 1024, ..d }.uses_net());
    assert!(!RefineSettings { size: 256, ..d }.uses_net());
    assert!(!RefineSettings::quality().uses_net());
}

#[test]
fn degenerate_crops_do_not_panic() {
    let mut solver = LaplacianSolver::new();
    let settings = RefineSettings::default();
    for (w, h, t) in [
        (1, 1, 128u8),
        (1, 1, 255),
        (3, 1, 128),
        (1, 5, 128),
        (2, 2, 0),
        (17, 9, 128),
    ] {
        let mut crop = Array3::<u8>::zeros((h, w, 4));
        crop.slice_mut(ndarray::s![.., .., 3]).fill(t);
        let mut alpha = vec![0.3f32; w * h];
        solver.refine(&crop.view(), &mut alpha, &settings);
        for a in &alpha {
            assert!(a.is_finite() && (0.0..=1.0).contains(a), "{w}×{h}: {a}");
        }
        if t == 255 {
            assert!(alpha.iter().all(|&a| a == 1.0));
        }
    }
    // Buffers are reused across sizes: a big crop after small ones and back.
    let crop = noisy_scene(200, 120, 1);
    let mut alpha = vec![0.5f32; 200 * 120];
    solver.refine(&crop.view(), &mut alpha, &settings);
    let crop = noisy_scene(30, 20, 2);
    let mut alpha = vec![0.5f32; 30 * 20];
    solver.refine(&crop.view(), &mut alpha, &settings);
    assert!(alpha.iter().all(|a| a.is_finite()));
}

/// `L·p` written out window by window (Levin et al. eq. 12 with clipped windows).
fn brute_force_product(level: &Level, p: &[f64], r: usize, eps: f64) -> Vec<f64> {
    let (w, h) = (level.w, level.h);
    let mut out = vec![0.0; w * h];
    for ky in 0..h {
        for kx in 0..w {
            let ys = ky.saturating_sub(r)..=(ky + r).min(h - 1);
            let xs = kx.saturating_sub(r)..=(kx + r).min(w - 1);
            let pix: Vec<usize> = ys
                .flat_map(|y| xs.clone().map(move |x| y * w + x))
                .collect();
            let n = pix.len() as f64;
            let mut m = [0.0; 3];
            for &i in &pix {
                for (mc, &ic) in m.iter_mut().zip(&level.img[i]) {
                    *mc += ic as f64 / n;
                }
            }
            let mut cov = [0.0; 6];
            for &i in &pix {
                let d = [
                    level.img[i][0] as f64 - m[0],
                    level.img[i][1] as f64 - m[1],
                    level.img[i][2] as f64 - m[2],
                ];
                let prods = [
                    d[0] * d[0],
                    d[0] * d[1],
                    d[0] * d[2],
                    d[1] * d[1],
                    d[1] * d[2],
                    d[2] * d[2],
                ];
                for c in 0..6 {
                    cov[c] += prods[c] / n;
                }
            }
            for c in [0, 3, 5] {
                cov[c] += eps / n;
            }
            let inv = sym_inverse(cov);
            for &i in &pix {
                let di = [
                    level.img[i][0] as f64 - m[0],
                    level.img[i][1] as f64 - m[1],
                    level.img[i][2] as f64 - m[2],
                ];
                let g = sym_mul(&inv, di);
                for &j in &pix {
                    let dj = [
                        level.img[j][0] as f64 - m[0],
                        level.img[j][1] as f64 - m[1],
                        level.img[j][2] as f64 - m[2],
                    ];
                    let l = (i == j) as u8 as f64
                        - (1.0 + g[0] * dj[0] + g[1] * dj[1] + g[2] * dj[2]) / n;
                    out[i] += l * p[j];
                }
            }
        }
    }
    out
}

#[test]
fn box_filter_product_equals_the_laplacian() {
    let (w, h) = (23, 17);
    let crop = noisy_scene(w, h, 11);
    for r in [1, 2, 3] {
        let mut solver = LaplacianSolver::new();
        let mut alpha: Vec<f32> = (0..w * h).map(|i| ((i * 13) % 17) as f32 / 16.0).collect();
        let settings = RefineSettings {
            iterations: 0,
            levels: 1,
            radius: r as u32,
            epsilon: 1e-4,
            ..RefineSettings::default()
        };
        solver.refine(&crop.view(), &mut alpha, &settings);
        let level = &mut solver.levels[0];
        level.prepare(r, 1e-4, &mut solver.masks);
        // A dense p (like the full alpha) and one that is zero outside U (a CG direction).
        let dense: Vec<f64> = (0..w * h).map(|i| ((i * 7) % 11) as f64 / 10.0).collect();
        let sparse: Vec<f64> = dense
            .iter()
            .zip(&level.known)
            .map(|(&v, &k)| if k == 0 { v } else { 0.0 })
            .collect();
        for (name, p) in [("dense", &dense), ("sparse", &sparse)] {
            let expect = brute_force_product(level, p, r, 1e-4);
            let is_x = name == "dense";
            if is_x {
                level.x.copy_from_slice(p);
            } else {
                level.d.copy_from_slice(p);
            }
            level.apply(is_x);
            for (i, (&want, &got)) in expect.iter().zip(&level.q).enumerate() {
                if level.known[i] == 0 {
                    let tol = 1e-6 * want.abs().max(1.0);
                    assert!(
                        (got - want).abs() < tol,
                        "r={r} {name} pixel {i}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn size_cap_solves_a_coarser_level_and_keeps_constraints() {
    let (w, h) = (200, 120);
    let crop = noisy_scene(w, h, 5);
    let mut solver = LaplacianSolver::new();
    let mut run = |size| {
        let mut alpha = vec![0.5f32; w * h];
        let settings = RefineSettings {
            size,
            ..RefineSettings::default()
        };
        let report = solver.refine(&crop.view(), &mut alpha, &settings);
        (report, alpha)
    };
    let (full, _) = run(0);
    assert_eq!(full.finest, (w, h));
    let (capped, alpha) = run(64);
    assert_eq!(capped.finest, (50, 30), "two levels down: 200 → 100 → 50");
    // 50×30 → 25×15 → 13×8 → 7×4: the pyramid stops where a level gets under 8 px.
    assert_eq!((full.levels, capped.levels), (5, 4));
    for (i, a) in alpha.iter().enumerate() {
        match crop[[i / w, i % w, 3]] {
            0 => assert_eq!(*a, 0.0),
            255 => assert_eq!(*a, 1.0),
            _ => assert!(a.is_finite() && (0.0..=1.0).contains(a)),
        }
    }
}

/// A black | white frame with a wide unknown band and the exact matte as the warm start:
/// that matte is already the minimiser, so the refinement must keep it (flat regions far
/// from the constraints are where an unconverged solve would drift to grey).
#[test]
fn an_exact_warm_start_is_kept() {
    let (w, h) = (350, 540);
    let mut crop = Array3::<u8>::zeros((h, w, 4));
    let mut alpha = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let v = if x >= w / 2 { 255 } else { 0 };
            crop[[y, x, 0]] = v;
            crop[[y, x, 1]] = v;
            crop[[y, x, 2]] = v;
            crop[[y, x, 3]] = if x < w / 3 {
                0
            } else if x >= 2 * w / 3 {
                255
            } else {
                128
            };
            alpha[y * w + x] = v as f32 / 255.0;
        }
    }
    let truth = alpha.clone();
    let settings = RefineSettings {
        size: 0,
        ..RefineSettings::default()
    };
    LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
    let worst = alpha
        .iter()
        .zip(&truth)
        .map(|(a, t)| (a - t).abs())
        .fold(0.0f32, f32::max);
    // Measured 0.025 (the guided filter's regularisation at the edge); carrying levels up
    // by plain bilinear interpolation instead left 0.25.
    assert!(worst < 0.05, "max |α − truth| = {worst}");
}

#[test]
fn dilation_is_a_rectangle() {
    let (w, h) = (9, 7);
    let mut known = vec![1u8; w * h];
    known[3 * w + 4] = 0;
    let (mut u, mut out, mut scratch) = (Spans::default(), Spans::default(), Vec::new());
    u.set_from_unknown(&known, w, h);
    assert_eq!(u.pixels(), 1);
    out.set_dilated(&u, w, 2, 1, &mut scratch);
    for y in 0..h {
        let want: &[(usize, usize)] = if (2..=4).contains(&y) { &[(2, 7)] } else { &[] };
        assert_eq!(out.row(y), want, "row {y}");
    }
}

#[test]
fn span_dilation_matches_a_mask_dilation() {
    // Random unknown sets (runs of every length, borders, words of eight known bytes) and
    // radii: the spans of the dilated set equal the dilated mask's, pixel by pixel.
    let mut rng = slimmatte_measure::rng::Rng::new(7);
    for case in 0..40 {
        let (w, h) = (1 + rng.below(37), 1 + rng.below(23));
        let density = rng.range(0.0, 0.5);
        let known: Vec<u8> = (0..w * h).map(|_| (rng.f32() >= density) as u8).collect();
        let (dx, dy) = (rng.below(4), rng.below(4));
        let (mut u, mut out, mut scratch) = (Spans::default(), Spans::default(), Vec::new());
        u.set_from_unknown(&known, w, h);
        out.set_dilated(&u, w, dx, dy, &mut scratch);
        for y in 0..h {
            let row_set = |s: &Spans, y: usize| {
                let mut m = vec![false; w];
                for &(x0, x1) in s.row(y) {
                    assert!(x0 < x1 && x1 <= w, "case {case}: empty or outside span");
                    m[x0..x1].iter_mut().for_each(|v| *v = true);
                }
                m
            };
            assert_eq!(
                row_set(&u, y),
                (0..w).map(|x| known[y * w + x] == 0).collect::<Vec<_>>(),
                "case {case}: unknown spans of row {y}"
            );
            let want: Vec<bool> = (0..w)
                .map(|x| {
                    (y.saturating_sub(dy)..=(y + dy).min(h - 1)).any(|yy| {
                        (x.saturating_sub(dx)..=(x + dx).min(w - 1))
                            .any(|xx| known[yy * w + xx] == 0)
                    })
                })
                .collect();
            assert_eq!(row_set(&out, y), want, "case {case}: dilated row {y}");
            // Disjoint, sorted and not touching (merged).
            assert!(
                out.row(y).windows(2).all(|p| p[0].1 < p[1].0),
                "case {case}"
            );
        }
    }
}

#[test]
fn coarse_levels_run_coarse_iterations_doubling_and_at_least_twice_the_finest() {
    let s = |iterations, coarse_iterations| RefineSettings {
        iterations,
        coarse_iterations,
        ..RefineSettings::default()
    };
    let schedule = |s: RefineSettings| (0..5).map(|k| s.level_iterations(k)).collect::<Vec<_>>();
    assert_eq!(schedule(s(1, 8)), [1, 8, 16, 32, 64]);
    // The floor: never fewer than twice the finest level's (the schedule before the setting).
    assert_eq!(schedule(s(1, 0)), [1, 2, 4, 8, 16]);
    assert_eq!(schedule(s(256, 8)), [256, 512, 1024, 2048, 4096]);
    assert_eq!(schedule(s(3, 7)), [3, 7, 14, 28, 56]);
}

#[test]
fn coarse_iterations_bring_a_one_iteration_solve_closer_to_the_solution() {
    let (w, h) = (96, 80);
    let (crop, truth) = linear_model_scene(w, h);
    let mean_error = |coarse_iterations| {
        let mut alpha = vec![0.5f32; w * h];
        let settings = RefineSettings {
            iterations: 1,
            coarse_iterations,
            levels: 4,
            epsilon: 1e-7,
            ..RefineSettings::default()
        };
        let report = LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
        assert_eq!(report.levels, 4);
        let sum: f32 = alpha.iter().zip(&truth).map(|(a, t)| (a - t).abs()).sum();
        sum / (w * h) as f32
    };
    let (few, more) = (mean_error(2), mean_error(16));
    assert!(
        more < 0.7 * few,
        "mean |α − truth|: {few} with 2, {more} with 16"
    );
}
