//! The band net's own convolution kernel: the net's few narrow, unpadded convolutions computed
//! directly on the CPU, one block of tiles at a time, instead of through ONNX Runtime.
//!
//! The band net is small (widths of 8 channels, 1,684 parameters for the shipped student) and
//! runs on a few dozen inputs of 30–142 × 30–142 cells a frame, where ONNX Runtime's general
//! convolution (im2col and a matrix product per layer and call, up to eight calls a frame)
//! spends most of its time outside the arithmetic (`results/band_net.md`: a third of the
//! multiply–accumulates bought a tenth of the time). Here each layer is a direct convolution
//! over channels-last activations, eight output channels at a time (one AVX2 register) for
//! eight neighbouring cells at once, so each weight vector is loaded once per eight
//! multiply–adds. The weights are read from the same ONNX file ([`CellConv::from_onnx`]): the
//! file stays the model, and a graph that is not a plain chain of convolutions and ReLUs goes
//! to ONNX Runtime as before. [`BandNet::load`](super::BandNet::load) also checks the two
//! against each other on a probe input before it uses this one.

use std::path::Path;

use onnx_protobuf::{Message, ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

/// Output channels computed together: one AVX2 register of `f32`.
const LANES: usize = 8;
/// Neighbouring output cells computed together (each with its own accumulators).
const BLOCK: usize = 8;

/// One convolution of the chain (BatchNorm already folded into it by the export).
#[derive(Debug, Clone)]
struct Layer {
    cin: usize,
    cout: usize,
    /// `cout` rounded up to [`LANES`]; the padding channels have zero weights and bias.
    cout_pad: usize,
    kernel: usize,
    dilation: usize,
    relu: bool,
    /// `[kernel²][cin][cout_pad]`: for each tap and input channel, the output channels' weights.
    weights: Vec<f32>,
    /// `[cout_pad]`.
    bias: Vec<f32>,
}

impl Layer {
    /// A layer from ONNX's weights `[cout][cin][kernel²]` and bias `[cout]`, laid out for the
    /// kernel (taps, then input channels, then the output channels padded to [`LANES`]).
    fn new(
        (cin, cout, kernel, dilation): (usize, usize, usize, usize),
        relu: bool,
        onnx_weights: &[f32],
        bias: &[f32],
    ) -> Self {
        let cout_pad = cout.div_ceil(LANES) * LANES;
        let taps = kernel * kernel;
        let mut weights = vec![0.0; taps * cin * cout_pad];
        for o in 0..cout {
            for i in 0..cin {
                for t in 0..taps {
                    weights[(t * cin + i) * cout_pad + o] = onnx_weights[(o * cin + i) * taps + t];
                }
            }
        }
        let mut padded_bias = vec![0.0; cout_pad];
        padded_bias[..cout].copy_from_slice(bias);
        Self {
            cin,
            cout,
            cout_pad,
            kernel,
            dilation,
            relu,
            weights,
            bias: padded_bias,
        }
    }

    /// Cells the layer takes off each side of its input.
    fn shrink(&self) -> usize {
        self.dilation * (self.kernel / 2)
    }
}

/// A plain chain of unpadded, stride-1 convolutions (each optionally followed by a ReLU), as the
/// band net's export writes it.
#[derive(Debug, Clone)]
pub struct CellConv {
    layers: Vec<Layer>,
}

/// Activation buffers of one thread, reused from block to block and frame to frame.
#[derive(Debug, Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl CellConv {
    /// Reads the chain of convolutions from the ONNX file at `path`. `Ok(None)`: the graph is a
    /// valid model of some other form, which ONNX Runtime runs instead; `Err`: the file cannot
    /// be read or parsed (the band net then leaves it to ONNX Runtime, which has already
    /// loaded it).
    pub fn from_onnx(path: &Path) -> Result<Option<Self>, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let model = ModelProto::parse_from_bytes(&bytes)
            .map_err(|e| format!("parsing {}: {e}", path.display()))?;
        Ok(Self::from_model(&model))
    }

    fn from_model(model: &ModelProto) -> Option<Self> {
        let graph = model.graph.as_ref()?;
        let initializer = |name: &str| graph.initializer.iter().find(|t| t.name == name);
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| initializer(&i.name).is_none())
            .collect();
        if inputs.len() != 1 || graph.output.len() != 1 {
            return None;
        }
        let mut current = inputs[0].name.clone();
        let mut layers: Vec<Layer> = Vec::new();
        let mut nodes = graph.node.iter().peekable();
        while let Some(node) = nodes.next() {
            if node.op_type != "Conv" || node.input.first() != Some(&current) {
                return None;
            }
            let mut layer = conv_layer(node, &initializer)?;
            if layers.last().is_some_and(|l| l.cout != layer.cin) {
                return None;
            }
            current = node.output.first()?.clone();
            if let Some(relu) = nodes.next_if(|n| n.op_type == "Relu") {
                if relu.input.first() != Some(&current) {
                    return None;
                }
                layer.relu = true;
                current = relu.output.first()?.clone();
            }
            layers.push(layer);
        }
        (!layers.is_empty() && current == graph.output[0].name).then_some(Self { layers })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.layers[0].cin
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.layers.last().map_or(0, |l| l.cout)
    }

    /// Cells the chain takes off each side of its input.
    pub fn shrink(&self) -> usize {
        self.layers.iter().map(Layer::shrink).sum()
    }

    /// Runs the chain on one input `[in_channels, height, width]` (planar, row-major) and
    /// writes `[out_channels, height − 2·shrink, width − 2·shrink]` to `output`.
    pub fn run(
        &self,
        input: &[f32],
        (height, width): (usize, usize),
        output: &mut [f32],
        scratch: &mut Scratch,
    ) {
        assert_eq!(
            input.len(),
            self.in_channels() * height * width,
            "input size"
        );
        let first = &self.layers[0];
        let (oh, ow) = (height - 2 * first.shrink(), width - 2 * first.shrink());
        let out = self.first_layer_output((oh, ow), scratch);
        conv(first, &Source::Planar(input), (height, width), out);
        self.run_after_first_layer((oh, ow), output, scratch);
    }

    /// Whether the first layer is 1×1, so that [`first_layer_row`](Self::first_layer_row) can
    /// compute it as the input is gathered.
    pub fn first_layer_is_pointwise(&self) -> bool {
        self.layers[0].kernel == 1
    }

    /// Values per cell of the first layer's output (channels-last).
    pub fn first_layer_stride(&self) -> usize {
        self.layers[0].cout_pad
    }

    /// The buffer for the first layer's output on `height × width` cells (channels-last,
    /// [`first_layer_stride`](Self::first_layer_stride) values a cell).
    pub fn first_layer_output<'a>(
        &self,
        (height, width): (usize, usize),
        scratch: &'a mut Scratch,
    ) -> &'a mut [f32] {
        let widest = self.layers.iter().map(|l| l.cout_pad).max().unwrap_or(0);
        scratch.a.resize(widest * height * width, 0.0);
        scratch.b.resize(widest * height * width, 0.0);
        &mut scratch.a[..height * width * self.first_layer_stride()]
    }

    /// Adds pixel row `i` (0 or 1) of a row of 2×2 cells to the pointwise first layer's output
    /// `cells` (one row of cells, channels-last): `values[k][u]` is pixel channel `k` of pixel
    /// column `u`, and the cells' input channel `(i·2 + j)·K + k` is channel `k` of the cell's
    /// pixel `(i, j)`, `K = values.len()` ([`super::cell_offset`]'s order). Row 0 starts from
    /// the bias; row 1 completes the cells (and applies the layer's ReLU).
    pub fn first_layer_row<const M: usize>(
        &self,
        i: usize,
        values: &[[f32; M]],
        cells: &mut [f32],
    ) {
        let layer = &self.layers[0];
        assert!(layer.kernel == 1 && i < 2 && layer.cin == 4 * values.len());
        assert!(2 * cells.len() / layer.cout_pad <= M);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            unsafe { avx2::pointwise_row(layer, i, values, cells) };
            return;
        }
        pointwise_row_scalar(layer, i, values, cells);
    }

    /// Runs the layers after the first on its output, left by [`run`](Self::run) or by
    /// [`first_layer_row`](Self::first_layer_row) in
    /// [`first_layer_output`](Self::first_layer_output)'s buffer (`height × width` cells), and
    /// writes the planar result to `output`.
    pub fn run_after_first_layer(
        &self,
        (height, width): (usize, usize),
        output: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let rest = self.shrink() - self.layers[0].shrink();
        let (ho, wo) = (height - 2 * rest, width - 2 * rest);
        assert_eq!(output.len(), self.out_channels() * ho * wo, "output size");
        let mut current = std::mem::take(&mut scratch.a);
        let mut next = std::mem::take(&mut scratch.b);
        let (mut h, mut w) = (height, width);
        for layer in &self.layers[1..] {
            let (oh, ow) = (h - 2 * layer.shrink(), w - 2 * layer.shrink());
            let source = Source::Interleaved(&current);
            conv(
                layer,
                &source,
                (h, w),
                &mut next[..oh * ow * layer.cout_pad],
            );
            std::mem::swap(&mut current, &mut next);
            (h, w) = (oh, ow);
        }
        let last = self.layers.last().expect("at least one layer");
        for (p, values) in current[..ho * wo * last.cout_pad]
            .chunks_exact(last.cout_pad)
            .enumerate()
        {
            for (c, &v) in values[..last.cout].iter().enumerate() {
                output[c * ho * wo + p] = v;
            }
        }
        (scratch.a, scratch.b) = (current, next);
    }
}

/// The portable build of [`CellConv::first_layer_row`].
fn pointwise_row_scalar<const M: usize>(
    layer: &Layer,
    i: usize,
    values: &[[f32; M]],
    cells: &mut [f32],
) {
    let (cp, k_count) = (layer.cout_pad, values.len());
    for (cu, acc) in cells.chunks_exact_mut(cp).enumerate() {
        if i == 0 {
            acc.copy_from_slice(&layer.bias);
        }
        for j in 0..2 {
            for (k, channel) in values.iter().enumerate() {
                let v = channel[2 * cu + j];
                let row = &layer.weights[((i * 2 + j) * k_count + k) * cp..][..cp];
                for (a, &wt) in acc.iter_mut().zip(row) {
                    *a += v * wt;
                }
            }
        }
        if i == 1 && layer.relu {
            for a in acc.iter_mut() {
                *a = a.max(0.0);
            }
        }
    }
}

/// Where a layer reads its input: the planar network input, or a channels-last activation
/// (`cout_pad` values per cell).
enum Source<'a> {
    Planar(&'a [f32]),
    Interleaved(&'a [f32]),
}

/// The `Conv` node `node` as a layer, if it is unpadded, stride 1, ungrouped and square.
fn conv_layer<'a>(
    node: &NodeProto,
    initializer: &impl Fn(&str) -> Option<&'a TensorProto>,
) -> Option<Layer> {
    let weight = initializer(node.input.get(1)?)?;
    let dims: Vec<usize> = weight
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let [cout, cin, kh, kw] = dims[..] else {
        return None;
    };
    if kh != kw || kh.is_multiple_of(2) {
        return None;
    }
    let mut dilation = 1;
    for attr in &node.attribute {
        let all = |v: i64| attr.ints.iter().all(|&i| i == v);
        match attr.name.as_str() {
            "kernel_shape" if all(kh as i64) => {}
            "pads" if all(0) => {}
            "strides" if all(1) => {}
            "group" if attr.i == 1 => {}
            "auto_pad" if matches!(&attr.s[..], b"NOTSET" | b"VALID") => {}
            "dilations" if attr.ints.len() == 2 && attr.ints[0] == attr.ints[1] => {
                dilation = usize::try_from(attr.ints[0]).ok().filter(|&d| d >= 1)?;
            }
            _ => return None,
        }
    }
    let w = floats(weight)?;
    let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
        Some(name) => floats(initializer(name)?)?,
        None => vec![0.0; cout],
    };
    if w.len() != cout * cin * kh * kw || bias.len() != cout {
        return None;
    }
    Some(Layer::new((cin, cout, kh, dilation), false, &w, &bias))
}

/// A float tensor's values.
fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != DataType::FLOAT as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        return t.raw_data.len().is_multiple_of(4).then(|| {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        });
    }
    Some(t.float_data.clone())
}

/// One layer over an `h × w` input into `out` (channels-last, `cout_pad` per cell).
fn conv(layer: &Layer, source: &Source<'_>, (h, w): (usize, usize), out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { avx2::conv(layer, source, (h, w), out) };
        return;
    }
    conv_scalar(layer, source, (h, w), out);
}

/// Offsets of input cell `p`'s channel `c`: `p·cell + c·channel`.
fn strides<'a>(source: &Source<'a>, layer: &Layer, cells: usize) -> (usize, usize, &'a [f32]) {
    match *source {
        Source::Planar(data) => (1, cells, data),
        Source::Interleaved(data) => (layer.cin.div_ceil(LANES) * LANES, 1, data),
    }
}

/// The portable build of [`conv`].
fn conv_scalar(layer: &Layer, source: &Source<'_>, (h, w): (usize, usize), out: &mut [f32]) {
    let s = layer.shrink();
    let (oh, ow) = (h - 2 * s, w - 2 * s);
    let (cell, channel, data) = strides(source, layer, h * w);
    let (k, d, cp) = (layer.kernel, layer.dilation, layer.cout_pad);
    for y in 0..oh {
        for x in 0..ow {
            let acc = &mut out[(y * ow + x) * cp..(y * ow + x + 1) * cp];
            acc.copy_from_slice(&layer.bias);
            for ky in 0..k {
                for kx in 0..k {
                    let p = (y + ky * d) * w + x + kx * d;
                    let tap = &layer.weights[(ky * k + kx) * layer.cin * cp..];
                    for i in 0..layer.cin {
                        let v = data[p * cell + i * channel];
                        for (a, &wt) in acc.iter_mut().zip(&tap[i * cp..(i + 1) * cp]) {
                            *a += v * wt;
                        }
                    }
                }
            }
            if layer.relu {
                for a in acc.iter_mut() {
                    *a = a.max(0.0);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, LANES, Layer, Source, strides};

    /// [`super::conv`] with AVX2 + FMA: eight output channels per register, [`BLOCK`]
    /// neighbouring cells of a row at once.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn conv(
        layer: &Layer,
        source: &Source<'_>,
        (h, w): (usize, usize),
        out: &mut [f32],
    ) {
        let s = layer.shrink();
        let (oh, ow) = (h - 2 * s, w - 2 * s);
        let (cell, channel, data) = strides(source, layer, h * w);
        assert!(out.len() >= oh * ow * layer.cout_pad);
        for y in 0..oh {
            let mut x = 0;
            while x + BLOCK <= ow {
                block::<BLOCK>(layer, data, (cell, channel), w, (y, x), ow, out);
                x += BLOCK;
            }
            while x < ow {
                block::<1>(layer, data, (cell, channel), w, (y, x), ow, out);
                x += 1;
            }
        }
    }

    /// [`super::pointwise_row_scalar`] with AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn pointwise_row<const M: usize>(
        layer: &Layer,
        i: usize,
        values: &[[f32; M]],
        cells: &mut [f32],
    ) {
        let (cp, k_count) = (layer.cout_pad, values.len());
        let count = cells.len() / cp;
        assert!(2 * count <= M && layer.weights.len() >= 4 * k_count * cp);
        for g in (0..cp).step_by(LANES) {
            let mut cu = 0;
            while cu + BLOCK <= count {
                pointwise_block::<BLOCK, M>(layer, i, values, cells, cu, g);
                cu += BLOCK;
            }
            while cu < count {
                pointwise_block::<1, M>(layer, i, values, cells, cu, g);
                cu += 1;
            }
        }
    }

    /// Cells `cu .. cu + N` of output-channel group `g` of [`pointwise_row`]: `N` independent
    /// accumulators, each weight vector loaded once for all of them.
    #[target_feature(enable = "avx2,fma")]
    fn pointwise_block<const N: usize, const M: usize>(
        layer: &Layer,
        i: usize,
        values: &[[f32; M]],
        cells: &mut [f32],
        cu: usize,
        g: usize,
    ) {
        let (cp, k_count) = (layer.cout_pad, values.len());
        assert!(2 * (cu + N) <= M && (cu + N) * cp <= cells.len() && g + LANES <= cp);
        // SAFETY: the weights read are those of taps (i, 0..2) and channels 0..K, inside
        // `layer.weights` (asserted by the caller); the values read are columns < 2·(cu + N) <= M;
        // the cells read and written are below (cu + N)·cp <= cells.len().
        unsafe {
            let mut acc = [_mm256_setzero_ps(); N];
            for (c, a) in acc.iter_mut().enumerate() {
                *a = if i == 0 {
                    _mm256_loadu_ps(layer.bias.as_ptr().add(g))
                } else {
                    _mm256_loadu_ps(cells.as_ptr().add((cu + c) * cp + g))
                };
            }
            for j in 0..2 {
                for (k, channel) in values.iter().enumerate() {
                    let w = _mm256_loadu_ps(
                        layer
                            .weights
                            .as_ptr()
                            .add(((i * 2 + j) * k_count + k) * cp + g),
                    );
                    for (c, a) in acc.iter_mut().enumerate() {
                        let v = _mm256_broadcast_ss(channel.get_unchecked(2 * (cu + c) + j));
                        *a = _mm256_fmadd_ps(v, w, *a);
                    }
                }
            }
            let zero = _mm256_setzero_ps();
            for (c, a) in acc.iter().enumerate() {
                let v = if i == 1 && layer.relu {
                    _mm256_max_ps(*a, zero)
                } else {
                    *a
                };
                _mm256_storeu_ps(cells.as_mut_ptr().add((cu + c) * cp + g), v);
            }
        }
    }

    /// Output cells `(y, x .. x + N)` of every output-channel group.
    #[target_feature(enable = "avx2,fma")]
    fn block<const N: usize>(
        layer: &Layer,
        data: &[f32],
        (cell, channel): (usize, usize),
        w: usize,
        (y, x): (usize, usize),
        ow: usize,
        out: &mut [f32],
    ) {
        let (k, d, cp, cin) = (layer.kernel, layer.dilation, layer.cout_pad, layer.cin);
        // The last input value any cell of this block reads (bounds checked once).
        let last = ((y + (k - 1) * d) * w + x + N - 1 + (k - 1) * d) * cell + (cin - 1) * channel;
        assert!(last < data.len());
        assert!(layer.weights.len() >= k * k * cin * cp && layer.bias.len() >= cp);
        let zero = _mm256_setzero_ps();
        for g in (0..cp).step_by(LANES) {
            // SAFETY: every pointer below is inside `layer.weights`, `layer.bias`, `data` or
            // `out`, as the asserts above and in `conv` bound them.
            unsafe {
                let bias = _mm256_loadu_ps(layer.bias.as_ptr().add(g));
                let mut acc = [bias; N];
                for ky in 0..k {
                    for kx in 0..k {
                        let p = (y + ky * d) * w + x + kx * d;
                        let base = data.as_ptr().add(p * cell);
                        let tap = layer.weights.as_ptr().add((ky * k + kx) * cin * cp + g);
                        for i in 0..cin {
                            let wv = _mm256_loadu_ps(tap.add(i * cp));
                            let col = base.add(i * channel);
                            for (j, a) in acc.iter_mut().enumerate() {
                                let v = _mm256_broadcast_ss(&*col.add(j * cell));
                                *a = _mm256_fmadd_ps(v, wv, *a);
                            }
                        }
                    }
                }
                for (j, a) in acc.iter().enumerate() {
                    let v = if layer.relu {
                        _mm256_max_ps(*a, zero)
                    } else {
                        *a
                    };
                    _mm256_storeu_ps(out.as_mut_ptr().add((y * ow + x + j) * cp + g), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::max_abs_diff;
    use super::*;

    /// A layer with weights and bias from a fixed pseudo-random sequence.
    fn layer(
        cin: usize,
        cout: usize,
        kernel: usize,
        dilation: usize,
        relu: bool,
        seed: usize,
    ) -> Layer {
        let value = |i: usize| (((i + seed) * 2654435761) % 1000) as f32 / 500.0 - 1.0;
        let onnx: Vec<f32> = (0..cout * cin * kernel * kernel).map(value).collect();
        let bias: Vec<f32> = (0..cout).map(|o| value(7 * o + 3) * 0.1).collect();
        Layer::new((cin, cout, kernel, dilation), relu, &onnx, &bias)
    }

    /// The band net's shape: 1×1, 3×3 dilation 2, 3×3 dilation 4 (ReLU after each), 3×3 head.
    fn chain(cin: usize, width: usize) -> CellConv {
        CellConv {
            layers: vec![
                layer(cin, width, 1, 1, true, 1),
                layer(width, width, 3, 2, true, 2),
                layer(width, width, 3, 4, true, 3),
                layer(width, 4, 3, 1, false, 4),
            ],
        }
    }

    /// An unpadded convolution by its definition, planar in and out.
    fn reference(layer: &Layer, input: &[f32], (h, w): (usize, usize)) -> Vec<f32> {
        let s = layer.shrink();
        let (oh, ow) = (h - 2 * s, w - 2 * s);
        let (k, d, cp) = (layer.kernel, layer.dilation, layer.cout_pad);
        let mut out = vec![0.0; layer.cout * oh * ow];
        for o in 0..layer.cout {
            for y in 0..oh {
                for x in 0..ow {
                    let mut sum = layer.bias[o] as f64;
                    for i in 0..layer.cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let v = input[(i * h + y + ky * d) * w + x + kx * d];
                                let wt = layer.weights[((ky * k + kx) * layer.cin + i) * cp + o];
                                sum += v as f64 * wt as f64;
                            }
                        }
                    }
                    let v = sum as f32;
                    out[(o * oh + y) * ow + x] = if layer.relu { v.max(0.0) } else { v };
                }
            }
        }
        out
    }

    fn input(channels: usize, (h, w): (usize, usize)) -> Vec<f32> {
        (0..channels * h * w)
            .map(|i| ((i * 7919) % 997) as f32 / 996.0)
            .collect()
    }

    #[test]
    fn the_chain_computes_the_convolutions_by_their_definition() {
        // Widths 8 (one register) and 12 (a padded second group); runs of one and three tiles.
        for (cin, width, size) in [(24, 8, (30, 30)), (20, 12, (30, 62)), (24, 16, (22, 37))] {
            let net = chain(cin, width);
            let x = input(cin, size);
            let mut want = x.clone();
            let mut hw = size;
            for l in &net.layers {
                want = reference(l, &want, hw);
                hw = (hw.0 - 2 * l.shrink(), hw.1 - 2 * l.shrink());
            }
            let mut got = vec![0.0; want.len()];
            net.run(&x, size, &mut got, &mut Scratch::default());
            let worst = max_abs_diff(&want, &got);
            assert!(worst < 1e-3, "({cin}, {width}, {size:?}): off by {worst}");
            assert!(want.iter().any(|&v| v.abs() > 1.0), "a test that can fail");
            // The portable build agrees with the vectorised one.
            let mut portable = x.clone();
            let mut hw = size;
            for l in &net.layers {
                let (oh, ow) = (hw.0 - 2 * l.shrink(), hw.1 - 2 * l.shrink());
                let mut out = vec![0.0; oh * ow * l.cout_pad];
                let source = if std::ptr::eq(l, &net.layers[0]) {
                    Source::Planar(&portable)
                } else {
                    Source::Interleaved(&portable)
                };
                conv_scalar(l, &source, hw, &mut out);
                portable = out;
                hw = (oh, ow);
            }
            let last = net.layers.last().unwrap();
            for (p, v) in portable.chunks_exact(last.cout_pad).enumerate() {
                for c in 0..last.cout {
                    let g = got[c * hw.0 * hw.1 + p];
                    assert!((v[c] - g).abs() < 1e-4, "portable {} against {g}", v[c]);
                }
            }
        }
    }

    #[test]
    fn the_first_layer_computed_row_by_row_gives_what_the_planar_input_gives() {
        // Pixel channels K = 6 (a temporal net) and 5; the cells' channel (i·2 + j)·K + k.
        for k_count in [6, 5] {
            let net = chain(4 * k_count, 8);
            let (h, w) = (30, 46);
            let x = input(4 * k_count, (h, w));
            let s = net.shrink();
            let mut want = vec![0.0; 4 * (h - 2 * s) * (w - 2 * s)];
            net.run(&x, (h, w), &mut want, &mut Scratch::default());
            let mut scratch = Scratch::default();
            let stride = net.first_layer_stride();
            let first = net.first_layer_output((h, w), &mut scratch);
            // Pixel rows: 2h rows of 2w pixels, pixel (u, v) of channel k from the planar cells.
            for v in 0..2 * h {
                let mut values = [[0.0f32; 128]; 6];
                for (k, channel) in values.iter_mut().enumerate().take(k_count) {
                    for (u, value) in channel.iter_mut().enumerate().take(2 * w) {
                        let c = ((v % 2) * 2 + u % 2) * k_count + k;
                        *value = x[(c * h + v / 2) * w + u / 2];
                    }
                }
                let cells = &mut first[(v / 2) * w * stride..][..w * stride];
                net.first_layer_row(v % 2, &values[..k_count], cells);
            }
            let mut got = vec![0.0; want.len()];
            net.run_after_first_layer((h, w), &mut got, &mut scratch);
            let worst = max_abs_diff(&want, &got);
            assert!(worst < 1e-4, "K = {k_count}: off by {worst}");
            // The portable build of the row.
            let mut portable = vec![0.0; w * stride];
            let mut vectorised = vec![0.0; w * stride];
            let values = [[0.25f32; 128]; 6];
            for i in 0..2 {
                pointwise_row_scalar(&net.layers[0], i, &values[..k_count], &mut portable);
                net.first_layer_row(i, &values[..k_count], &mut vectorised);
            }
            for (a, b) in portable.iter().zip(&vectorised) {
                assert!((a - b).abs() < 1e-5, "portable {a} against {b}");
            }
        }
    }

    #[test]
    fn a_graph_other_than_a_chain_of_convolutions_is_left_to_onnx_runtime() {
        let models = crate::paths::project_root().join("models");
        // The crop matting net: pooling, resizing, additions.
        assert!(
            CellConv::from_onnx(&models.join("matting_student.onnx"))
                .unwrap()
                .is_none()
        );
        let net = CellConv::from_onnx(&models.join("band_student.onnx"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (net.in_channels(), net.out_channels(), net.shrink()),
            (24, 4, 7)
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.onnx");
        std::fs::write(&bad, b"not a protobuf at all").unwrap();
        assert!(CellConv::from_onnx(&bad).is_err());
    }
}
