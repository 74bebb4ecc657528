//! ONNX export of the band net, written from Rust like the matting net's
//! ([`crate::export`]): the core's contract ([`slimmatte::band_net::spec`]), input `input`
//! `[N, 20, C, C]` (cells), output `residual` `[N, 4, C, C]` (N, C dynamic), opset 13: the
//! convolutions (BatchNorm folded) and their ReLUs, nothing else (the runtime lays out the
//! cells and adds the corrections to the coarse alpha).

use std::path::Path;

use anyhow::{Context, Result};
use onnx_protobuf::{GraphProto, Message, ModelProto};

use slimmatte::band_net;
use slimmatte::model::{Dim, TensorSpec};

use super::net::{BandNetT, CELL, DILATIONS, HIDDEN, KERNELS};
use crate::export::{attr_ints, model_proto, node, tensor_f32, value_info};

fn graph(net: &BandNetT) -> GraphProto {
    let spec = band_net::spec();
    let folded = net.folded();
    // The contract leaves the input channels free (20 or 24); the file declares its own.
    let input = TensorSpec::new(
        spec.input.name,
        &[
            Dim::Any,
            Dim::Fixed(net.channels as i64 * CELL * CELL),
            Dim::Any,
            Dim::Any,
        ],
    );
    let mut g = GraphProto {
        name: "band_net".into(),
        input: vec![value_info(&input)],
        output: vec![value_info(&spec.output)],
        ..Default::default()
    };
    let mut cur = spec.input.name.to_string();
    let mut cin = net.channels as i64 * CELL * CELL;
    for (i, (w, b)) in folded.iter().enumerate() {
        let last = i == HIDDEN;
        let cout = if last {
            CELL * CELL
        } else {
            net.widths.0[i] as i64
        };
        let name = if last {
            "head".to_string()
        } else {
            format!("conv{i}")
        };
        let k = if last { 3 } else { KERNELS[i] as i64 };
        let d = if last { 1 } else { DILATIONS[i] as i64 };
        let (wn, bn) = (format!("{name}.weight"), format!("{name}.bias"));
        g.initializer.push(tensor_f32(&wn, &[cout, cin, k, k], w));
        g.initializer.push(tensor_f32(&bn, &[cout], b));
        let out = if last {
            spec.output.name.to_string()
        } else {
            format!("{name}_out")
        };
        g.node.push(node(
            "Conv",
            &name,
            &[&cur, &wn, &bn],
            &out,
            vec![
                attr_ints("kernel_shape", &[k, k]),
                // No padding: each layer uses up its share of the tile's margin, and the head's
                // output is the tile's centre (what the runtime writes).
                attr_ints("pads", &[0, 0, 0, 0]),
                attr_ints("strides", &[1, 1]),
                attr_ints("dilations", &[d, d]),
            ],
        ));
        cur = out;
        if !last {
            let relu = format!("{name}_relu");
            g.node.push(node("Relu", &relu, &[&cur], &relu, vec![]));
            cur = relu;
        }
        cin = cout;
    }
    g
}

/// The ONNX model of `net` (eval mode).
pub fn to_onnx(net: &BandNetT, doc: &str) -> ModelProto {
    model_proto(graph(net), doc)
}

/// Writes `net` as ONNX to `path`.
pub fn export(net: &BandNetT, path: &Path, doc: &str) -> Result<()> {
    let bytes = to_onnx(net, doc)
        .write_to_bytes()
        .context("serialising ONNX")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
