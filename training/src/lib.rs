//! slimmatte-training: distillation-based channel pruning (Yoon, Cho, Park 2022) of the
//! slimmatte matting net with tch, at a scale that trains on a 2-core CPU, with ONNX export
//! written from Rust. See `training/README.md`.

pub mod band;
pub mod card;
pub mod compare;
pub mod data;
pub mod distill;
pub mod export;
pub mod nets;
pub mod pipeline;
pub mod plots;
pub mod prune;
pub mod temporal;
