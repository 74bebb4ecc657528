//! ONNX export written from Rust (tch has no ONNX export): walks the same layer table and
//! forward program as the tch model ([`crate::nets`]), with BatchNorm folded into the convs.
//!
//! Graph: input `input` float32 `[1, 4, height, width]` (height/width dynamic, multiples of 16),
//! output `alpha` float32 `[1, 1, height, width]`, opset 13; ops Conv, Relu, MaxPool, Resize
//! (nearest, asymmetric, floor = tch's `upsample_nearest2d` at scale 2), Add, DepthToSpace
//! (CRD = tch's `pixel_shuffle`), Sigmoid.

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

use crate::nets::{Net, Op, program};

pub const INPUT: &str = "input";
pub const OUTPUT: &str = "alpha";
pub const OPSET: i64 = 13;

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::STRING.into(),
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
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

fn node(
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

fn value_info(name: &str, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Ok(v) => dimension::Value::DimValue(*v),
                    Err(p) => dimension::Value::DimParam(p.to_string()),
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
        name: name.into(),
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
    let folded = net.folded();
    let mut g = GraphProto {
        name: "slimmatte_matting".into(),
        ..Default::default()
    };
    g.input.push(value_info(
        INPUT,
        &[Ok(1), Ok(4), Err("height"), Err("width")],
    ));
    g.output.push(value_info(
        OUTPUT,
        &[Ok(1), Ok(1), Err("height"), Err("width")],
    ));
    g.initializer
        .push(tensor_f32("up_scales", &[4], &[1.0, 1.0, 2.0, 2.0]));

    let mut cur = INPUT.to_string();
    let mut saved: Vec<String> = vec![String::new(); crate::nets::LEVELS];
    let mut n = 0usize;
    let prog = program();
    let last = prog.len() - 1;
    for (pi, op) in prog.into_iter().enumerate() {
        n += 1;
        let out = if pi == last {
            OUTPUT.to_string()
        } else {
            format!("t{n}")
        };
        match op {
            Op::Conv(i) => {
                let l = &net.table[i];
                let (w, b) = &folded[i];
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
                    out.clone()
                };
                g.node.push(node(
                    "Conv",
                    &l.name,
                    &[&cur, &wn, &bn],
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
                        &out,
                        vec![],
                    ));
                }
            }
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
            Op::UpAdd(k) => {
                let up = format!("up{k}");
                g.node.push(node(
                    "Resize",
                    &up,
                    &[&cur, "", "up_scales"],
                    &up,
                    vec![
                        attr_str("mode", "nearest"),
                        attr_str("coordinate_transformation_mode", "asymmetric"),
                        attr_str("nearest_mode", "floor"),
                    ],
                ));
                g.node.push(node(
                    "Add",
                    &format!("skip{k}"),
                    &[&up, &saved[k]],
                    &out,
                    vec![],
                ));
            }
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
    assert_eq!(cur, OUTPUT, "the program ends with the output");
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
        graph: Some(g).into(),
        ..Default::default()
    }
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

/// The spec the runtime checks the matting model against.
pub fn model_spec() -> slimmatte::model::ModelSpec {
    use slimmatte::model::{Dim, ModelSpec, TensorSpec};
    ModelSpec {
        input: TensorSpec::new(INPUT, &[Dim::Fixed(1), Dim::Fixed(4), Dim::Any, Dim::Any]),
        output: TensorSpec::new(OUTPUT, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Any, Dim::Any]),
    }
}
