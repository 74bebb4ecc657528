//! The exported ONNX model, run by the project's own ONNX Runtime wrapper, matches the tch
//! model on the same input (max abs difference ≤ 1e-4), for the full and a pruned shape, at
//! square and non-square sizes. And pruning with copied weights is exact when the dropped
//! channels have γ = 0 and β = 0 (what stage 1 drives them to).

use slimmatte_measure::rng::Rng;
use slimmatte_training::export;
use slimmatte_training::nets::{Arch, BN_LAYERS, BnInit, Net};
use slimmatte_training::prune;
use tch::{Device, Kind, Tensor, nn};

fn randomise_bn(net: &mut Net, seed: u64) {
    let mut r = Rng::new(seed);
    tch::no_grad(|| {
        for bn in net.bns.iter_mut().flatten() {
            let n = bn.running_mean.size()[0] as usize;
            let v = |r: &mut Rng, a: f32, b: f32| {
                Tensor::from_slice(&(0..n).map(|_| r.range(a, b)).collect::<Vec<_>>())
            };
            bn.running_mean.copy_(&v(&mut r, -0.5, 0.5));
            bn.running_var.copy_(&v(&mut r, 0.2, 2.0));
            bn.ws.as_mut().unwrap().copy_(&v(&mut r, 0.3, 1.5));
            if bn.bs.as_ref().unwrap().requires_grad() {
                bn.bs.as_mut().unwrap().copy_(&v(&mut r, -0.3, 0.3));
            }
        }
    });
}

fn input(seed: u64, h: usize, w: usize) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..4 * h * w)
        .enumerate()
        .map(|(i, _)| {
            if i >= 3 * h * w {
                [0.0, 0.5, 1.0][r.below(3)]
            } else {
                r.f32()
            }
        })
        .collect()
}

fn tch_forward(net: &Net, x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let t = tch::no_grad(|| {
        net.forward(
            &Tensor::from_slice(x).view([1, 4, h as i64, w as i64]),
            false,
        )
        .alpha
    });
    Vec::<f32>::try_from(&t.to_kind(Kind::Float).flatten(0, -1)).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_parity(net: &Net, dir: &std::path::Path, name: &str) {
    let path = dir.join(format!("{name}.onnx"));
    export::export(net, &path, "test").unwrap();
    let mut model = slimmatte::model::Model::load(&path, &slimmatte::matte::spec(), 2).unwrap();
    for (h, w, seed) in [(64, 64, 1), (48, 80, 2), (96, 32, 3)] {
        let x = input(seed, h, w);
        let mut out = vec![0.0f32; h * w];
        let shape = model.run(&x, &[1, 4, h, w], &mut out).unwrap();
        assert_eq!(shape, vec![1, 1, h, w]);
        let t = tch_forward(net, &x, h, w);
        let d = max_diff(&out, &t);
        assert!(d <= 1e-4, "{name} at {h}x{w}: ONNX vs tch max abs diff {d}");
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn onnx_matches_tch_full_and_pruned() {
    tch::manual_seed(0);
    let dir = tempfile::tempdir().unwrap();
    let arch = Arch::from_levels([16, 24, 32, 40]);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Net::new(&vs.root(), &arch, BnInit::STANDARD);
    randomise_bn(&mut net, 5);
    check_parity(&net, dir.path(), "full");

    let gam = net.gammas();
    let keep = prune::select_by_gamma(&arch, &gam, 0.5, 1);
    let parch = prune::arch_of(&keep);
    assert_ne!(parch, arch);
    let pvs = nn::VarStore::new(Device::Cpu);
    let mut pruned = Net::new(&pvs.root(), &parch, BnInit::STANDARD);
    pruned.copy_from_pruned(&net, &keep);
    check_parity(&pruned, dir.path(), "pruned");
}

#[test]
fn pruning_zero_gamma_channels_is_exact() {
    tch::manual_seed(1);
    let arch = Arch::from_levels([8, 16, 16, 24]);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Net::new(&vs.root(), &arch, BnInit::PRUNING);
    randomise_bn(&mut net, 9);
    let gam = net.gammas();
    let keep = prune::select_by_gamma(&arch, &gam, 0.4, 1);
    // Zero γ of every dropped channel (β is 0 and frozen in the pruning init).
    tch::no_grad(|| {
        for (i, bn) in net.bns.iter_mut().enumerate().take(BN_LAYERS) {
            let bn = bn.as_mut().unwrap();
            let c = arch.widths[i];
            let mask: Vec<f32> = (0..c)
                .map(|j| if keep[i].contains(&j) { 1.0 } else { 0.0 })
                .collect();
            let g = bn.ws.as_ref().unwrap() * Tensor::from_slice(&mask);
            bn.ws.as_mut().unwrap().copy_(&g);
        }
    });
    let pvs = nn::VarStore::new(Device::Cpu);
    let mut pruned = Net::new(&pvs.root(), &prune::arch_of(&keep), BnInit::STANDARD);
    pruned.copy_from_pruned(&net, &keep);
    let (h, w) = (32, 48);
    let x = input(4, h, w);
    let d = max_diff(
        &tch_forward(&net, &x, h, w),
        &tch_forward(&pruned, &x, h, w),
    );
    assert!(
        d < 1e-5,
        "pruned net differs from the masked full net by {d}"
    );
}

#[test]
fn features_and_shapes() {
    let arch = Arch::from_levels([8, 16, 16, 24]);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), &arch, BnInit::STANDARD);
    let f = net.forward(
        &Tensor::zeros([2, 4, 64, 96], (Kind::Float, Device::Cpu)),
        true,
    );
    assert_eq!(f.alpha.size(), vec![2, 1, 64, 96]);
    assert_eq!(f.features.len(), 4);
    assert_eq!(f.features[0].size(), vec![2, 8, 32, 48]);
    assert_eq!(f.features[3].size(), vec![2, 24, 4, 6]);
}
