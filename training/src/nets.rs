//! The one layer table of the matting net, shared by the tch model ([`Net`]) and the ONNX
//! exporter ([`crate::export`]) so the two cannot drift.
//!
//! DIM-style encoder–decoder, RGB + trimap in, alpha out:
//!
//! ```text
//! input 4ch ─ enc0a (stride 2) ─ enc0b ─┬──────────────────────── + ─ dec0b ─ head ─ pixel-shuffle ─ sigmoid
//!   pool ─ enc1a ─ enc1b ───────────────┼────────────── + ─ dec1b ─ dec0a ─ up ┘
//!     pool ─ enc2a ─ enc2b ─────────────┼──── + ─ dec2b ─ dec1a ─ up ┘
//!       pool ─ enc3a ─ enc3b ─ dec2a ─ up ┘
//! ```
//!
//! Every conv is 3×3 + BatchNorm + ReLU except the head (3×3, bias, 4 channels that a 2×
//! pixel shuffle turns into the full-resolution alpha). Stage k runs at 1/2^(k+1) of the input:
//! nothing but the stem's input and the pixel shuffle touches full resolution, because 3×3
//! convs at 640×360 alone would eat the runtime's latency budget. The skip joins are additions
//! (the role of DIM's max-unpooling with the encoder's indices): `dec{k}a`'s output is added to
//! `enc{k}b`'s, so the two are *tied* and always keep the same channels when pruned.
//! One stride-2 conv and three 2× poolings: height and width must be multiples of 16.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

/// Encoder stages (stage k runs at 1/2^(k+1) of the input).
pub const LEVELS: usize = 4;
/// Number of BatchNorm conv layers (everything but the head).
pub const BN_LAYERS: usize = 14;
/// Index of the head conv in the table.
pub const HEAD: usize = 14;
/// The head's output channels (2×2 sub-pixels of the alpha).
pub const HEAD_CHANNELS: usize = 4;
/// Input channels: RGB + trimap.
pub const IN_CHANNELS: usize = 4;
/// BatchNorm epsilon (tch / PyTorch default).
pub const BN_EPS: f64 = 1e-5;

/// Which half of the net a layer belongs to (pruning thresholds are per half).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    Encoder,
    Decoder,
    Head,
}

/// One conv layer of the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayer {
    pub name: String,
    pub part: Part,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    /// BatchNorm after the conv (then the conv has no bias).
    pub bn: bool,
    pub relu: bool,
    /// Resolution level of the conv's output (1/2^level of the input).
    pub level: usize,
    /// Layer whose output channels are this layer's input channels (`None`: the net input).
    pub src: Option<usize>,
    /// Layer whose output is added to this one's (same channels, pruned together).
    pub tied: Option<usize>,
}

/// One step of the forward program; both the tch forward and the ONNX exporter walk it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Conv (+ BN + ReLU) of table layer `i` on the current tensor.
    Conv(usize),
    /// 2×2 max pooling, stride 2.
    Pool,
    /// Remember the current tensor as encoder feature / skip `k`.
    Save(usize),
    /// Nearest 2× upsampling, then add skip `k`.
    UpAdd(usize),
    /// 2× pixel shuffle (depth-to-space, CRD order): `[B, 4, h, w]` → `[B, 1, 2h, 2w]`.
    PixelShuffle,
    /// Sigmoid (alpha in 0..1).
    Sigmoid,
}

pub fn enc_a(k: usize) -> usize {
    2 * k
}
pub fn enc_b(k: usize) -> usize {
    2 * k + 1
}
pub fn dec_a(k: usize) -> usize {
    8 + 2 * (2 - k)
}
pub fn dec_b(k: usize) -> usize {
    9 + 2 * (2 - k)
}

/// Output widths of the 14 BatchNorm layers, in table order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    pub widths: Vec<usize>,
    /// A temporal net: the previous frame's matte is a fifth input channel (the ONNX file then
    /// has a second input, `prev_alpha`, concatenated to `input`).
    #[serde(default)]
    pub prev_input: bool,
}

impl Arch {
    /// The unpruned shape: `c[k]` channels everywhere at level k.
    pub fn from_levels(c: [usize; LEVELS]) -> Self {
        let mut widths = vec![0; BN_LAYERS];
        for (k, &ck) in c.iter().enumerate() {
            widths[enc_a(k)] = ck;
            widths[enc_b(k)] = ck;
            if k + 1 < LEVELS {
                widths[dec_a(k)] = ck;
                widths[dec_b(k)] = ck;
            }
        }
        Self {
            widths,
            prev_input: false,
        }
    }

    /// The same shape with the previous frame's matte as an extra input channel.
    pub fn temporal(&self) -> Self {
        Self {
            prev_input: true,
            ..self.clone()
        }
    }

    /// Input channels of the first conv: RGB + trimap (+ previous matte).
    pub fn in_channels(&self) -> usize {
        IN_CHANNELS + self.prev_input as usize
    }

    /// The layer table of this shape. Panics when tied layers have different widths.
    pub fn table(&self) -> Vec<ConvLayer> {
        assert_eq!(
            self.widths.len(),
            BN_LAYERS,
            "arch needs {BN_LAYERS} widths"
        );
        let w = &self.widths;
        let mut t: Vec<ConvLayer> = Vec::with_capacity(BN_LAYERS + 1);
        let conv = |name: String, part, cin, cout, level, src, tied| ConvLayer {
            name,
            part,
            cin,
            cout,
            k: 3,
            stride: 1,
            bn: true,
            relu: true,
            level,
            src,
            tied,
        };
        for k in 0..LEVELS {
            let (cin, src) = if k == 0 {
                (self.in_channels(), None)
            } else {
                (w[enc_b(k - 1)], Some(enc_b(k - 1)))
            };
            let tied = if k + 1 < LEVELS { Some(dec_a(k)) } else { None };
            let mut a = conv(
                format!("enc{k}a"),
                Part::Encoder,
                cin,
                w[enc_a(k)],
                k + 1,
                src,
                None,
            );
            if k == 0 {
                a.stride = 2;
            }
            t.push(a);
            t.push(conv(
                format!("enc{k}b"),
                Part::Encoder,
                w[enc_a(k)],
                w[enc_b(k)],
                k + 1,
                Some(enc_a(k)),
                tied,
            ));
        }
        for k in (0..LEVELS - 1).rev() {
            let src = if k == LEVELS - 2 {
                enc_b(LEVELS - 1)
            } else {
                dec_b(k + 1)
            };
            // dec{k}a runs at stage k+1's resolution, then is upsampled and added to enc{k}b.
            t.push(conv(
                format!("dec{k}a"),
                Part::Decoder,
                w[src],
                w[dec_a(k)],
                k + 2,
                Some(src),
                Some(enc_b(k)),
            ));
            t.push(conv(
                format!("dec{k}b"),
                Part::Decoder,
                w[dec_a(k)],
                w[dec_b(k)],
                k + 1,
                Some(dec_a(k)),
                None,
            ));
        }
        t.push(ConvLayer {
            name: "head".into(),
            part: Part::Head,
            cin: w[dec_b(0)],
            cout: HEAD_CHANNELS,
            k: 3,
            stride: 1,
            bn: false,
            relu: false,
            level: 1,
            src: Some(dec_b(0)),
            tied: None,
        });
        for l in &t {
            if let Some(o) = l.tied {
                assert_eq!(
                    l.cout, t[o].cout,
                    "tied layers {} and {} must have equal widths",
                    l.name, t[o].name
                );
            }
        }
        t
    }

    /// Multiply–accumulates of one forward pass at `h × w` (convs only; pooling, upsampling,
    /// adds and activations are a rounding error). Convs are counted at their output size.
    pub fn macs(&self, h: usize, w: usize) -> u64 {
        self.table()
            .iter()
            .map(|l| {
                let px = (h >> l.level) as u64 * (w >> l.level) as u64;
                px * (l.cin * l.cout * l.k * l.k) as u64
            })
            .sum()
    }

    /// FLOPs = 2 × MACs.
    pub fn flops(&self, h: usize, w: usize) -> u64 {
        2 * self.macs(h, w)
    }

    /// Parameters of the deployed model (BatchNorm folded: conv weight + one bias per channel).
    pub fn params(&self) -> u64 {
        self.table()
            .iter()
            .map(|l| (l.cin * l.cout * l.k * l.k + l.cout) as u64)
            .sum()
    }

    /// Per-layer widths as `name=width` for cards.
    pub fn describe(&self) -> Vec<(String, usize)> {
        self.table().into_iter().map(|l| (l.name, l.cout)).collect()
    }
}

/// The forward program over the table.
pub fn program() -> Vec<Op> {
    let mut p = Vec::new();
    for k in 0..LEVELS {
        if k > 0 {
            p.push(Op::Pool);
        }
        p.push(Op::Conv(enc_a(k)));
        p.push(Op::Conv(enc_b(k)));
        p.push(Op::Save(k));
    }
    for k in (0..LEVELS - 1).rev() {
        p.push(Op::Conv(dec_a(k)));
        p.push(Op::UpAdd(k));
        p.push(Op::Conv(dec_b(k)));
    }
    p.push(Op::Conv(HEAD));
    p.push(Op::PixelShuffle);
    p.push(Op::Sigmoid);
    p
}

/// How the BatchNorms start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnInit {
    /// Initial γ (1.0 normally; 0.5 for the pruning stage of the paper).
    pub gamma: f64,
    /// BN biases fixed at 0 (the pruning stage: a channel with γ = 0 then outputs exactly 0).
    pub freeze_beta: bool,
}

impl BnInit {
    pub const STANDARD: BnInit = BnInit {
        gamma: 1.0,
        freeze_beta: false,
    };
    pub const PRUNING: BnInit = BnInit {
        gamma: 0.5,
        freeze_beta: true,
    };
}

/// The tch model built from the table.
#[derive(Debug)]
pub struct Net {
    pub arch: Arch,
    pub table: Vec<ConvLayer>,
    pub convs: Vec<nn::Conv2D>,
    pub bns: Vec<Option<nn::BatchNorm>>,
}

/// What a forward pass returns.
pub struct Forward {
    /// Alpha in 0..1, `[B, 1, H, W]`.
    pub alpha: Tensor,
    /// Encoder stage outputs (`enc{k}b` after ReLU), k = 0..3, for feature distillation.
    pub features: Vec<Tensor>,
}

impl Net {
    pub fn new(vs: &nn::Path, arch: &Arch, init: BnInit) -> Net {
        let table = arch.table();
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for l in &table {
            let cfg = nn::ConvConfig {
                padding: (l.k / 2) as i64,
                stride: l.stride as i64,
                bias: !l.bn,
                ..Default::default()
            };
            convs.push(nn::conv2d(
                vs / l.name.as_str(),
                l.cin as i64,
                l.cout as i64,
                l.k as i64,
                cfg,
            ));
            if l.bn {
                let bcfg = nn::BatchNormConfig {
                    ws_init: nn::Init::Const(init.gamma),
                    bs_init: nn::Init::Const(0.0),
                    ..Default::default()
                };
                let mut bn = nn::batch_norm2d(vs / format!("{}_bn", l.name), l.cout as i64, bcfg);
                if init.freeze_beta
                    && let Some(bs) = bn.bs.as_mut()
                {
                    let _ = bs.set_requires_grad(false);
                }
                bns.push(Some(bn));
            } else {
                bns.push(None);
            }
        }
        Net {
            arch: arch.clone(),
            table,
            convs,
            bns,
        }
    }

    /// The device the net's variables live on (CPU or a CUDA GPU, `--device`).
    pub fn device(&self) -> tch::Device {
        self.convs[0].ws.device()
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Forward {
        let mut cur = x.shallow_clone();
        let mut saved: Vec<Option<Tensor>> = (0..LEVELS).map(|_| None).collect();
        for op in program() {
            cur = match op {
                Op::Conv(i) => {
                    let mut y = cur.apply(&self.convs[i]);
                    if let Some(bn) = &self.bns[i] {
                        y = y.apply_t(bn, train);
                    }
                    if self.table[i].relu { y.relu() } else { y }
                }
                Op::Pool => cur.max_pool2d_default(2),
                Op::Save(k) => {
                    saved[k] = Some(cur.shallow_clone());
                    cur
                }
                Op::UpAdd(k) => {
                    let s = saved[k].as_ref().expect("skip saved before use");
                    let (h, w) = (s.size()[2], s.size()[3]);
                    cur.upsample_nearest2d([h, w], Some(2.0), Some(2.0)) + s
                }
                Op::PixelShuffle => cur.pixel_shuffle(2),
                Op::Sigmoid => cur.sigmoid(),
            };
        }
        Forward {
            alpha: cur,
            features: saved
                .into_iter()
                .map(|s| s.expect("all stages saved"))
                .collect(),
        }
    }

    /// |γ| of every BatchNorm layer (14 vectors).
    pub fn gammas(&self) -> Vec<Vec<f32>> {
        self.bns
            .iter()
            .flatten()
            .map(|bn| {
                let g = bn
                    .ws
                    .as_ref()
                    .expect("affine BN")
                    .abs()
                    .to_kind(Kind::Float)
                    .to_device(tch::Device::Cpu);
                Vec::<f32>::try_from(&g).expect("gamma to vec")
            })
            .collect()
    }

    /// L1 norm of every output filter of the BatchNorm layers (uniform pruning's importance).
    pub fn filter_norms(&self) -> Vec<Vec<f32>> {
        tch::no_grad(|| {
            self.convs
                .iter()
                .take(BN_LAYERS)
                .map(|c| {
                    let n =
                        c.ws.abs()
                            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
                    Vec::<f32>::try_from(&n.to_device(tch::Device::Cpu)).expect("norms to vec")
                })
                .collect()
        })
    }

    /// The γ tensors (for the L1 sparsity term), split into encoder and decoder ones.
    pub fn gamma_tensors(&self) -> (Vec<&Tensor>, Vec<&Tensor>) {
        let mut enc = Vec::new();
        let mut dec = Vec::new();
        for (l, bn) in self.table.iter().zip(&self.bns) {
            if let Some(bn) = bn {
                let g = bn.ws.as_ref().expect("affine BN");
                match l.part {
                    Part::Encoder => enc.push(g),
                    Part::Decoder => dec.push(g),
                    Part::Head => {}
                }
            }
        }
        (enc, dec)
    }

    /// Conv weights and biases with the BatchNorm (running statistics) folded in, per layer:
    /// `(weight [cout, cin, k, k] row-major, bias [cout])`.
    pub fn folded(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        tch::no_grad(|| {
            self.table
                .iter()
                .zip(self.convs.iter().zip(&self.bns))
                .map(|(l, (conv, bn))| {
                    let w = conv.ws.to_kind(Kind::Double);
                    let (w, b) = match bn {
                        Some(bn) => {
                            let gamma = bn.ws.as_ref().unwrap().to_kind(Kind::Double);
                            let beta = bn.bs.as_ref().unwrap().to_kind(Kind::Double);
                            let mean = bn.running_mean.to_kind(Kind::Double);
                            let var = bn.running_var.to_kind(Kind::Double);
                            let scale = &gamma / (var + BN_EPS).sqrt();
                            let w = &w * scale.view([l.cout as i64, 1, 1, 1]);
                            let b = beta - mean * &scale;
                            (w, b)
                        }
                        None => (
                            w,
                            conv.bs
                                .as_ref()
                                .map(|b| b.to_kind(Kind::Double))
                                .unwrap_or_else(|| {
                                    Tensor::zeros([l.cout as i64], (Kind::Double, conv.ws.device()))
                                }),
                        ),
                    };
                    let cpu = |t: &Tensor| t.to_kind(Kind::Float).to_device(tch::Device::Cpu);
                    let w = Vec::<f32>::try_from(&cpu(&w).flatten(0, -1)).unwrap();
                    let b = Vec::<f32>::try_from(&cpu(&b)).unwrap();
                    (w, b)
                })
                .collect()
        })
    }

    /// Copies the convolution weights (and the head's bias) of `src`, a net of the same arch;
    /// BatchNorm keeps its own initialisation.
    /// Copies a single-frame net of the same widths into this temporal one: every layer as it
    /// is, the first conv's weights of the previous-matte channel zero, so the temporal net
    /// starts out computing exactly what `src` computes and learns to use the extra channel.
    pub fn copy_from_single_frame(&mut self, src: &Net) {
        assert!(
            self.arch.prev_input && !src.arch.prev_input,
            "temporal ← single-frame"
        );
        assert_eq!(self.arch.widths, src.arch.widths, "same widths");
        tch::no_grad(|| {
            for (i, (d, s)) in self.convs.iter_mut().zip(&src.convs).enumerate() {
                if i == enc_a(0) {
                    let _ = d.ws.zero_();
                    d.ws.narrow(1, 0, IN_CHANNELS as i64).copy_(&s.ws);
                } else {
                    d.ws.copy_(&s.ws);
                }
                if let (Some(db), Some(sb)) = (d.bs.as_mut(), s.bs.as_ref()) {
                    db.copy_(sb);
                }
            }
        });
        self.copy_bns_from(src);
    }

    /// Copies every BatchNorm (γ, β, running statistics) of a net of the same widths.
    pub fn copy_bns_from(&mut self, src: &Net) {
        assert_eq!(self.arch.widths, src.arch.widths, "same widths");
        tch::no_grad(|| {
            for (d, s) in self.bns.iter_mut().zip(&src.bns) {
                if let (Some(d), Some(s)) = (d.as_mut(), s.as_ref()) {
                    d.ws.as_mut()
                        .expect("affine BN")
                        .copy_(s.ws.as_ref().expect("affine BN"));
                    d.bs.as_mut()
                        .expect("affine BN")
                        .copy_(s.bs.as_ref().expect("affine BN"));
                    d.running_mean.copy_(&s.running_mean);
                    d.running_var.copy_(&s.running_var);
                }
            }
        });
    }

    pub fn copy_convs_from(&mut self, src: &Net) {
        assert_eq!(self.arch.widths, src.arch.widths, "same arch");
        tch::no_grad(|| {
            for (d, s) in self.convs.iter_mut().zip(&src.convs) {
                d.ws.copy_(&s.ws);
                if let (Some(db), Some(sb)) = (d.bs.as_mut(), s.bs.as_ref()) {
                    db.copy_(sb);
                }
            }
        });
    }

    /// Copies the weights of the channels `keep[i]` (output channels of layer i; the head keeps
    /// all its channels) from `src` (a net of a wider arch) into `self`.
    pub fn copy_from_pruned(&mut self, src: &Net, keep: &[Vec<usize>]) {
        assert_eq!(keep.len(), BN_LAYERS, "keep lists");
        let device = src.device();
        let idx = |v: &[usize]| {
            Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(device)
        };
        let all_in: Vec<usize> = (0..IN_CHANNELS).collect();
        tch::no_grad(|| {
            for (i, l) in self.table.clone().iter().enumerate() {
                let out_keep: Vec<usize> = if i == HEAD {
                    (0..HEAD_CHANNELS).collect()
                } else {
                    keep[i].clone()
                };
                let in_keep: &[usize] = match l.src {
                    None => &all_in,
                    Some(s) => &keep[s],
                };
                assert_eq!(out_keep.len(), l.cout, "layer {} keep/out width", l.name);
                assert_eq!(in_keep.len(), l.cin, "layer {} keep/in width", l.name);
                let (oi, ii) = (idx(&out_keep), idx(in_keep));
                let w = src.convs[i].ws.index_select(0, &oi).index_select(1, &ii);
                self.convs[i].ws.copy_(&w);
                if let (Some(d), Some(s)) = (self.convs[i].bs.as_mut(), src.convs[i].bs.as_ref()) {
                    d.copy_(&s.index_select(0, &oi));
                }
                if let (Some(d), Some(s)) = (self.bns[i].as_mut(), src.bns[i].as_ref()) {
                    d.ws.as_mut()
                        .unwrap()
                        .copy_(&s.ws.as_ref().unwrap().index_select(0, &oi));
                    d.bs.as_mut()
                        .unwrap()
                        .copy_(&s.bs.as_ref().unwrap().index_select(0, &oi));
                    d.running_mean.copy_(&s.running_mean.index_select(0, &oi));
                    d.running_var.copy_(&s.running_var.index_select(0, &oi));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let a = Arch::from_levels([8, 16, 24, 32]);
        let t = a.table();
        assert_eq!(t.len(), BN_LAYERS + 1);
        for l in &t {
            match l.src {
                None => assert_eq!(l.cin, IN_CHANNELS),
                Some(s) => assert_eq!(l.cin, t[s].cout, "{}", l.name),
            }
        }
        // Names are unique (the exporter looks layers up by position, tch by name).
        let mut names: Vec<_> = t.iter().map(|l| l.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), t.len());
        assert!(a.macs(64, 64) > 0);
        assert_eq!(a.flops(32, 32), 2 * a.macs(32, 32));
    }

    #[test]
    #[should_panic(expected = "tied layers")]
    fn untied_widths_are_rejected() {
        let mut a = Arch::from_levels([8, 16, 24, 32]);
        a.widths[enc_b(1)] = 10;
        let _ = a.table();
    }

    #[test]
    fn a_temporal_copy_of_a_single_frame_net_ignores_the_previous_matte_until_trained() {
        tch::manual_seed(1);
        let arch = Arch::from_levels([8, 8, 16, 16]);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let single = Net::new(&vs.root(), &arch, BnInit::STANDARD);
        // Non-trivial BatchNorm statistics, so that copying them matters.
        tch::no_grad(|| {
            for bn in single.bns.iter().flatten() {
                let _ = bn.running_mean.shallow_clone().uniform_(-0.2, 0.2);
                let _ = bn.running_var.shallow_clone().uniform_(0.5, 2.0);
            }
        });
        let tvs = nn::VarStore::new(tch::Device::Cpu);
        let mut temporal = Net::new(&tvs.root(), &arch.temporal(), BnInit::STANDARD);
        assert_eq!(temporal.table[enc_a(0)].cin, IN_CHANNELS + 1);
        temporal.copy_from_single_frame(&single);
        let x = Tensor::rand([2, 4, 32, 48], (Kind::Float, tch::Device::Cpu));
        let want = single.forward(&x, false).alpha;
        for prev in [0.0, 1.0] {
            let p = Tensor::full([2, 1, 32, 48], prev, (Kind::Float, tch::Device::Cpu));
            let got = temporal.forward(&Tensor::cat(&[&x, &p], 1), false).alpha;
            let d = (&got - &want).abs().max().double_value(&[]);
            assert!(d < 1e-6, "prev {prev}: differs by {d}");
        }
        // A fresh temporal net does depend on the extra channel (the test can fail).
        let fresh = Net::new(&(tvs.root() / "fresh"), &arch.temporal(), BnInit::STANDARD);
        let a = fresh
            .forward(&Tensor::cat(&[&x, &x.narrow(1, 0, 1)], 1), false)
            .alpha;
        let zero = x.narrow(1, 0, 1) * 0.0;
        let b = fresh.forward(&Tensor::cat(&[&x, &zero], 1), false).alpha;
        assert!((a - b).abs().max().double_value(&[]) > 1e-4);
    }
}
