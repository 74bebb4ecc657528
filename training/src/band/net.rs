//! The band net in tch: the full-resolution student that turns the closed-form refinement's
//! coarse matte into the final one, tile by tile ([`slimmatte::band_net`]).
//!
//! ```text
//! tile [N,6,60,60] ─ space-to-depth 2 ─ [N,24,30,30] ─ conv0 1×1 ─ conv1 3×3 dil 2 ─
//!       conv2 3×3 dil 4 ─ head 3×3 ─ [N,4,16,16] ─ depth-to-space 2 ─ [N,1,32,32]
//!       + coarse alpha of the tile's centre ─ clip 0..1
//! ```
//!
//! `conv0`, `conv1` and `conv2` have BatchNorm and ReLU (their BN γ are what DCP and Network
//! Slimming prune), the head has a bias. Working on 2×2 cells keeps all the full-resolution
//! information (each cell's four pixels are channels) at a quarter of the positions, and the
//! 1×1 first layer keeps the widest input cheap: on 2 cores ONNX Runtime's cost is the
//! convolutions' multiply–accumulates, and the net runs on every soft band tile of every frame.
//! The dilated layers give a receptive field of 7 cells (14 pixels) around the output's cell for
//! the cost of three 3×3 layers: measured on the band data's validation composites (2,500
//! teacher steps, widths 48), the teacher's SAD went from 8.73 with 2 cells (two layers, the
//! first band net) to 8.43 with 4 cells and 8.09 with 7 (the coarse matte alone: 9.52). The
//! tile's margin is exactly that field, and the exported convolutions are unpadded, so the
//! margin is used up layer by layer and the output is the tile's 32×32 centre; in tch the
//! layers are padded (same size out) and only the centre is used, which gives the same
//! values. The output is a residual on the coarse matte, so an untrained head (zero) gives
//! back the solver's matte.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn, nn::Module, nn::ModuleT};

use slimmatte::band_net::{CHANNELS, TEMPORAL_CHANNELS, TILE_MARGIN};

/// Space-to-depth block: the net works on `CELL × CELL` cells.
pub const CELL: i64 = 2;
/// Hidden layers (conv + BN + ReLU).
pub const HIDDEN: usize = 3;
/// Kernel side of each hidden layer: the first mixes a cell's channels (1×1), the others and
/// the head look at the 3×3 cells around.
pub const KERNELS: [usize; HIDDEN] = [1, 3, 3];
/// Dilation of each hidden layer.
pub const DILATIONS: [usize; HIDDEN] = [1, 2, 4];
/// Receptive field radius in cells: each hidden layer adds its dilation times its kernel's
/// half-width (a 1×1 conv adds nothing), the 3×3 head adds 1.
pub const FIELD_CELLS: usize = {
    let mut field = 1;
    let mut i = 0;
    while i < HIDDEN {
        field += DILATIONS[i] * (KERNELS[i] / 2);
        i += 1;
    }
    field
};

/// Widths of the hidden layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Widths(pub Vec<usize>);

impl Widths {
    /// Multiply–accumulates per full-resolution pixel of a net with `channels` pixel channels.
    pub fn macs_per_pixel(&self, channels: usize) -> f64 {
        let cin0 = channels * (CELL * CELL) as usize;
        let mut macs = 0usize;
        let mut cin = cin0;
        for (&c, k) in self.0.iter().zip(KERNELS) {
            macs += cin * c * k * k;
            cin = c;
        }
        macs += cin * (CELL * CELL) as usize * 9;
        macs as f64 / (CELL * CELL) as f64
    }
}

/// The tch band net.
#[derive(Debug)]
pub struct BandNetT {
    pub widths: Widths,
    /// Pixel channels: 5, or 6 for a temporal net (+ the previous matte).
    pub channels: usize,
    /// Ablation switch (training only, never exported): false = the net does not see the
    /// coarse alpha (its channel is 0.5) and its corrections start from 0.5, not from it.
    pub coarse_input: bool,
    pub convs: Vec<nn::Conv2D>,
    pub bns: Vec<nn::BatchNorm>,
    pub head: nn::Conv2D,
}

/// `[N, C, H, W]` → `[N, 4C, H/2, W/2]`, channel `(i·2 + j)·C + c` (ONNX SpaceToDepth order).
pub fn space_to_depth(x: &Tensor) -> Tensor {
    let s = x.size();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    x.view([n, c, h / CELL, CELL, w / CELL, CELL])
        .permute([0, 3, 5, 1, 2, 4])
        .reshape([n, c * CELL * CELL, h / CELL, w / CELL])
}

impl BandNetT {
    pub fn new(vs: &nn::Path, widths: &Widths, channels: usize) -> Self {
        assert_eq!(widths.0.len(), HIDDEN);
        // The exported net has no padding: the margin must be exactly its receptive field.
        assert_eq!(FIELD_CELLS * CELL as usize, TILE_MARGIN);
        assert!(channels == CHANNELS || channels == TEMPORAL_CHANNELS);
        let mut cin = channels as i64 * CELL * CELL;
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for (i, &c) in widths.0.iter().enumerate() {
            let conv_cfg = nn::ConvConfig {
                padding: (DILATIONS[i] * (KERNELS[i] / 2)) as i64,
                dilation: DILATIONS[i] as i64,
                bias: false,
                ..Default::default()
            };
            let k = KERNELS[i] as i64;
            convs.push(nn::conv2d(
                vs / format!("conv{i}"),
                cin,
                c as i64,
                k,
                conv_cfg,
            ));
            bns.push(nn::batch_norm2d(
                vs / format!("bn{i}"),
                c as i64,
                Default::default(),
            ));
            cin = c as i64;
        }
        let head = nn::conv2d(
            vs / "head",
            cin,
            CELL * CELL,
            3,
            nn::ConvConfig {
                padding: 1,
                ..Default::default()
            },
        );
        tch::no_grad(|| {
            let _ = head.ws.shallow_clone().fill_(0.0);
            if let Some(b) = &head.bs {
                let _ = b.shallow_clone().fill_(0.0);
            }
        });
        Self {
            widths: widths.clone(),
            channels,
            coarse_input: true,
            convs,
            bns,
            head,
        }
    }

    /// The network proper, as exported: cells `[N, 20, C, C]` → corrections `[N, 4, C, C]`,
    /// with the hidden features (after each ReLU).
    pub fn cells(&self, cells: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let mut h = cells.shallow_clone();
        let mut feats = Vec::with_capacity(HIDDEN);
        for (conv, bn) in self.convs.iter().zip(&self.bns) {
            h = bn.forward_t(&conv.forward(&h), train).relu();
            feats.push(h.shallow_clone());
        }
        (self.head.forward(&h), feats)
    }

    /// The alpha `[N, 1, T, T]` of tiles `x` `[N, 5, T, T]` (pixel planes) as the runtime makes
    /// it (cells, corrections, added to the coarse alpha, clamped), and the hidden features.
    pub fn forward_features(&self, x: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        if !self.coarse_input {
            let blind = x.copy();
            let _ = blind.narrow(1, 4, 1).fill_(0.5);
            let (corrections, feats) = self.cells(&space_to_depth(&blind), train);
            return (
                (corrections.pixel_shuffle(CELL) + 0.5).clamp(0.0, 1.0),
                feats,
            );
        }
        let (corrections, feats) = self.cells(&space_to_depth(x), train);
        let coarse = x.narrow(1, 4, 1);
        (
            (coarse + corrections.pixel_shuffle(CELL)).clamp(0.0, 1.0),
            feats,
        )
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_features(x, train).0
    }

    /// |γ| of every hidden layer's BatchNorm.
    pub fn gammas(&self) -> Vec<Vec<f32>> {
        self.bns
            .iter()
            .map(|bn| {
                let g = bn
                    .ws
                    .as_ref()
                    .expect("BN weight")
                    .abs()
                    .to_kind(Kind::Float);
                Vec::<f32>::try_from(&g).expect("gamma to vec")
            })
            .collect()
    }

    /// L1 norm of every hidden conv's filters (uniform pruning's criterion).
    pub fn filter_norms(&self) -> Vec<Vec<f32>> {
        self.convs
            .iter()
            .map(|c| {
                let n =
                    c.ws.abs()
                        .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
                Vec::<f32>::try_from(&n).expect("norms to vec")
            })
            .collect()
    }

    /// Sum of |γ| (the sparsity term of DCP and Network Slimming).
    pub fn gamma_l1(&self) -> Tensor {
        self.bns
            .iter()
            .map(|bn| bn.ws.as_ref().expect("BN weight").abs().sum(Kind::Float))
            .reduce(|a, b| a + b)
            .expect("hidden layers")
    }

    /// Copies the channels `keep[i]` of every hidden layer of `self` into `dst` (whose widths
    /// are the kept counts).
    pub fn copy_pruned_into(&self, dst: &BandNetT, keep: &[Vec<usize>]) {
        tch::no_grad(|| {
            let mut prev: Option<Tensor> = None;
            for (i, kept) in keep.iter().enumerate().take(HIDDEN) {
                let idx = Tensor::from_slice(&kept.iter().map(|&k| k as i64).collect::<Vec<_>>());
                let mut w = self.convs[i].ws.index_select(0, &idx);
                if let Some(p) = &prev {
                    w = w.index_select(1, p);
                }
                dst.convs[i].ws.shallow_clone().copy_(&w);
                let (sb, db) = (&self.bns[i], &dst.bns[i]);
                for (s, d) in [
                    (sb.ws.as_ref(), db.ws.as_ref()),
                    (sb.bs.as_ref(), db.bs.as_ref()),
                ] {
                    let (s, d) = (s.expect("BN param"), d.expect("BN param"));
                    d.shallow_clone().copy_(&s.index_select(0, &idx));
                }
                db.running_mean
                    .shallow_clone()
                    .copy_(&sb.running_mean.index_select(0, &idx));
                db.running_var
                    .shallow_clone()
                    .copy_(&sb.running_var.index_select(0, &idx));
                prev = Some(idx);
            }
            let p = prev.expect("hidden layers");
            dst.head
                .ws
                .shallow_clone()
                .copy_(&self.head.ws.index_select(1, &p));
            if let (Some(s), Some(d)) = (&self.head.bs, &dst.head.bs) {
                d.shallow_clone().copy_(s);
            }
        });
    }

    /// Conv weights and biases with BatchNorm folded in (eval mode): hidden layers, then the
    /// head.
    pub fn folded(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        tch::no_grad(|| {
            let mut out = Vec::new();
            for (conv, bn) in self.convs.iter().zip(&self.bns) {
                let g = bn.ws.as_ref().expect("BN weight");
                let b = bn.bs.as_ref().expect("BN bias");
                let scale = g / (&bn.running_var + 1e-5).sqrt();
                let w = &conv.ws * scale.view([-1, 1, 1, 1]);
                let bias = b - &bn.running_mean * &scale;
                out.push((to_vec(&w), to_vec(&bias)));
            }
            let hb = self.head.bs.as_ref().expect("head bias");
            out.push((to_vec(&self.head.ws), to_vec(hb)));
            out
        })
    }
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.flatten(0, -1).to_kind(Kind::Float)).expect("tensor to vec")
}
