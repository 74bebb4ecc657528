//! ONNX export written from Rust (tch has no ONNX export): walks the same layer table and
//! forward program as the tch model ([`crate::nets`]), with BatchNorm folded into the convs.
//!
//! Graph: the core's matting-model contract ([`slimmatte::matte::spec`]): input `input` float32
//! `[1, 4, height, width]` (height/width dynamic, multiples of 16), output `alpha` float32
//! `[1, 1, height, width]`; opset 13; ops Conv, Relu, MaxPool, Resize (nearest, asymmetric,
//! floor = tch's `upsample_nearest2d` at scale 2), Add, DepthToSpace (CRD = tch's
//! `pixel_shuffle`), Sigmoid.

use std::path::Path;

use anyhow::{Context, Result};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_proto::DataType,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};

use slimmatte::matte::{self, INPUT_NAME, OUTPUT_NAME, PREV_INPUT_NAME};
use slimmatte::model::{Dim, TensorSpec};

use crate::nets::{ConvLayer, LEVELS, Net, Op, program};

pub const OPSET: i64 = 13;

/// ONNX names of the free axes of the matting tensors, by position (`[N, C, H, W]`).
const AXES: [&str; 4] = ["batch", "channels", "height", "width"];

pub(crate) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::STRING.into(),
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub(crate) fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let mut raw = Vec::with_capacity(data.len() * 4);
    for v in data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::FLOAT as i32,
        raw_data: raw,
        ..Default::default()
    }
}

pub(crate) fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute: attrs,
        ..Default::default()
    }
}

/// A float32 graph input / output with the name and shape of `t`: fixed axes as values, free
/// ones as parameters named after [`AXES`].
pub(crate) fn value_info(t: &TensorSpec) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: t
            .dims
            .iter()
            .zip(AXES)
            .map(|(d, axis)| Dimension {
                value: Some(match d {
                    Dim::Fixed(v) => dimension::Value::DimValue(*v),
                    Dim::Any => dimension::Value::DimParam(axis.to_string()),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: Some(shape).into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: t.name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

/// The ONNX model of `net` (eval mode: BatchNorm running statistics folded into the convs).
pub fn to_onnx(net: &Net, doc: &str) -> ModelProto {
    model_proto(graph(net), doc)
}

/// An opset-13 model of `graph`, produced by this crate, with `doc` as its doc string.
pub(crate) fn model_proto(graph: GraphProto, doc: &str) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "slimmatte-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(graph).into(),
        ..Default::default()
    }
}

/// The graph: the forward [`program`] node by node, tensors named `t1`, `t2`, … in between.
fn graph(net: &Net) -> GraphProto {
    let folded = net.folded();
    let spec = matte::spec();
    let mut g = GraphProto {
        name: "slimmatte_matting".into(),
        ..Default::default()
    };
    g.input.push(value_info(&spec.input));
    g.output.push(value_info(&spec.output));
    let mut cur = INPUT_NAME.to_string();
    if net.arch.prev_input {
        // A temporal net: the previous matte is a second input, joined to the first as a
        // fifth channel.
        g.input.push(value_info(&TensorSpec::new(
            PREV_INPUT_NAME,
            &[Dim::Fixed(1), Dim::Fixed(1), Dim::Any, Dim::Any],
        )));
        let mut axis = attr_ints("axis", &[]);
        axis.type_ = AttributeType::INT.into();
        axis.i = 1;
        g.node.push(node(
            "Concat",
            "join_prev_alpha",
            &[INPUT_NAME, PREV_INPUT_NAME],
            "t0",
            vec![axis],
        ));
        cur = "t0".into();
    }
    g.initializer
        .push(tensor_f32("up_scales", &[4], &[1.0, 1.0, 2.0, 2.0]));

    let mut saved: Vec<String> = vec![String::new(); LEVELS];
    let mut n = 0usize;
    let prog = program();
    let last = prog.len() - 1;
    for (pi, op) in prog.into_iter().enumerate() {
        n += 1;
        let out = if pi == last {
            OUTPUT_NAME.to_string()
        } else {
            format!("t{n}")
        };
        match op {
            Op::Conv(i) => conv(&mut g, &net.table[i], &folded[i], &cur, &out),
            Op::Pool => {
                g.node.push(node(
                    "MaxPool",
                    &format!("pool{n}"),
                    &[&cur],
                    &out,
                    vec![
                        attr_ints("kernel_shape", &[2, 2]),
                        attr_ints("strides", &[2, 2]),
                    ],
                ));
            }
            Op::Save(k) => {
                saved[k] = cur.clone();
                continue;
            }
            Op::UpAdd(k) => up_add(&mut g, k, &cur, &saved[k], &out),
            Op::PixelShuffle => {
                let mut a = attr_ints("blocksize", &[]);
                a.type_ = AttributeType::INT.into();
                a.i = 2;
                g.node.push(node(
                    "DepthToSpace",
                    "pixel_shuffle",
                    &[&cur],
                    &out,
                    vec![a, attr_str("mode", "CRD")],
                ));
            }
            Op::Sigmoid => {
                g.node
                    .push(node("Sigmoid", "sigmoid", &[&cur], &out, vec![]));
            }
        }
        cur = out;
    }
    assert_eq!(cur, OUTPUT_NAME, "the program ends with the output");
    g
}

/// Conv `l` (BatchNorm folded into `(weight, bias)`) from `cur` to `out`, with its ReLU.
fn conv(g: &mut GraphProto, l: &ConvLayer, (w, b): &(Vec<f32>, Vec<f32>), cur: &str, out: &str) {
    let wn = format!("{}.weight", l.name);
    let bn = format!("{}.bias", l.name);
    g.initializer.push(tensor_f32(
        &wn,
        &[l.cout as i64, l.cin as i64, l.k as i64, l.k as i64],
        w,
    ));
    g.initializer.push(tensor_f32(&bn, &[l.cout as i64], b));
    let p = (l.k / 2) as i64;
    let conv_out = if l.relu {
        format!("{}_conv", l.name)
    } else {
        out.to_string()
    };
    g.node.push(node(
        "Conv",
        &l.name,
        &[cur, &wn, &bn],
        &conv_out,
        vec![
            attr_ints("kernel_shape", &[l.k as i64, l.k as i64]),
            attr_ints("pads", &[p, p, p, p]),
            attr_ints("strides", &[l.stride as i64, l.stride as i64]),
            attr_ints("dilations", &[1, 1]),
        ],
    ));
    if l.relu {
        g.node.push(node(
            "Relu",
            &format!("{}_relu", l.name),
            &[&conv_out],
            out,
            vec![],
        ));
    }
}

/// Nearest 2× upsampling of `cur`, plus skip `k` (the tensor `skip`), into `out`.
fn up_add(g: &mut GraphProto, k: usize, cur: &str, skip: &str, out: &str) {
    let up = format!("up{k}");
    g.node.push(node(
        "Resize",
        &up,
        &[cur, "", "up_scales"],
        &up,
        vec![
            attr_str("mode", "nearest"),
            attr_str("coordinate_transformation_mode", "asymmetric"),
            attr_str("nearest_mode", "floor"),
        ],
    ));
    g.node
        .push(node("Add", &format!("skip{k}"), &[&up, skip], out, vec![]));
}

/// Runs an exported net with ONNX Runtime on one CHW input `x` of `h × w` into `out`: RGB +
/// trimap, and for a temporal net (its file has [`PREV_INPUT_NAME`]) the previous matte as a
/// fifth channel, fed as that second input.
pub fn run_onnx(
    model: &mut slimmatte::model::Model,
    x: &[f32],
    h: usize,
    w: usize,
    out: &mut [f32],
) -> Result<()> {
    let n = h * w;
    if x.len() == 5 * n {
        model.run_with_extra(
            &x[..4 * n],
            &[1, 4, h, w],
            &[(PREV_INPUT_NAME, &x[4 * n..], &[1, 1, h, w])],
            out,
        )?;
    } else {
        model.run(x, &[1, 4, h, w], out)?;
    }
    Ok(())
}

/// Writes `net` as ONNX to `path`.
pub fn export(net: &Net, path: &Path, doc: &str) -> Result<()> {
    let model = to_onnx(net, doc);
    let bytes = model.write_to_bytes().context("serialising ONNX")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{Arch, BnInit, IN_CHANNELS};

    #[test]
    fn the_graph_declares_the_cores_matting_contract() {
        let spec = matte::spec();
        assert_eq!(spec.input.dims[1], Dim::Fixed(IN_CHANNELS as i64));
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = Net::new(
            &vs.root(),
            &Arch::from_levels([8, 8, 16, 16]),
            BnInit::STANDARD,
        );
        let g = graph(&net);
        for (info, t) in [(&g.input, &spec.input), (&g.output, &spec.output)] {
            assert_eq!(info.len(), 1);
            assert_eq!(info[0], value_info(t));
            assert_eq!(info[0].name, t.name);
        }
        assert_eq!(g.node.last().unwrap().output, vec![OUTPUT_NAME.to_string()]);
    }

    #[test]
    fn a_temporal_graph_adds_the_prev_alpha_input_as_a_fifth_channel() {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = Net::new(
            &vs.root(),
            &Arch::from_levels([8, 8, 16, 16]).temporal(),
            BnInit::STANDARD,
        );
        let g = graph(&net);
        let spec = matte::spec();
        let names: Vec<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, [INPUT_NAME, PREV_INPUT_NAME]);
        assert_eq!(g.input[0], value_info(&spec.input));
        // The core's optional input, declared the same way (shared H/W parameters).
        let prev = spec
            .extra_inputs
            .iter()
            .find(|t| t.name == PREV_INPUT_NAME)
            .expect("the core declares prev_alpha");
        assert_eq!(g.input[1], value_info(prev));
        let join = &g.node[0];
        assert_eq!(join.op_type, "Concat");
        assert_eq!(join.input, [INPUT_NAME, PREV_INPUT_NAME]);
        // The first conv reads the joined tensor with 5 input channels.
        assert_eq!(g.node[1].input[0], join.output[0]);
        let w = g
            .initializer
            .iter()
            .find(|t| t.name == g.node[1].input[1])
            .expect("first conv weights");
        assert_eq!(w.dims[1], IN_CHANNELS as i64 + 1);
    }
}
