//! slimmatte core library: the stages of the real-time matting pipeline, shared by the
//! GStreamer plugin (`plugins/`), the command line (`cli/`) and the training crate
//! (`training/`). No GStreamer, command line or plotting here (`cargo tree -p slimmatte`):
//! functions take frame views and caller-owned buffers.
//!
//! ```text
//! frame ─▶ segment (coarse person mask) ─▶ trimap (fg / unknown / bg) ─▶ matte (student net)
//!       ─▶ refine (closed-form matting of the band, warm-started by the net)
//!       ─▶ composite (background)
//! ```

pub mod band_net;
pub mod composite;
pub mod filter;
pub mod foreground;
pub mod frame;
pub mod matte;
pub mod model;
pub mod paths;
pub mod pose;
pub mod refine;
pub mod resize;
pub mod runtime;
pub mod segment;
pub mod temporal;
pub mod trimap;
