//! The band net: the pruned student that makes the matte at full resolution.
//!
//! The closed-form refinement ([`crate::refine`]) solves the unknown band on a pyramid whose
//! finest solved level is capped ([`RefineSettings::size`](crate::refine::RefineSettings)), so at
//! 640×360 and above it solves at half resolution or less and reaches full resolution by guided
//! upsampling, which smears strands thinner than two pixels. The band net takes that coarse
//! solution and makes the full-resolution matte, only where it can matter: the crop is cut into
//! [`TILE`]×[`TILE`] tiles on a grid anchored at the frame's corner, and a tile goes through the
//! net when one of its unknown pixels has a coarse alpha strictly between [`SOFT`] and `1 −
//! SOFT` (a band the solver settled to 0 or 1 is left to it). Each tile is read with
//! [`TILE_MARGIN`] pixels of context on every side (coordinates clamped at the frame border),
//! the net's receptive field: its convolutions are unpadded, so the margin is used up layer by
//! layer and the net answers for the tile's centre alone, as it would in a run over the whole
//! frame. So soft tiles side by side in a grid row go through the net as one input, a *run* of
//! up to [`MAX_RUN`] tiles (`[N, 4·K, C, k·16 + 14]` cells for `k` tiles), which reads and
//! computes their shared margins once and gives each tile what it gives alone. The net's alpha
//! replaces the coarse one at the unknown pixels of the tile's centre; known pixels stay
//! exactly 0 / 255.
//!
//! Model contract: the net works on 2×2 cells of the tile. Input [`INPUT_NAME`]
//! `[N, 4·K, C, C]` with `C` = [`CELLS`] and `K` pixel channels, 5 or 6: channel
//! `(i·2 + j)·K + k` at cell `(y, x)` is channel `k` of tile pixel `(2y + i, 2x + j)` (ONNX
//! SpaceToDepth's order, [`cell_offset`]): R, G, B 0..1, the trimap 0 / 0.5 / 1, the coarse
//! alpha 0..1 with known pixels 0 / 1 and, for a *temporal* band net (`K` = 6), the previous
//! frame's matte 0..1 as this stage wrote it — or, without usable history (first frame, reset,
//! size change, scene cut, `temporal=false`), the coarse alpha again. Output
//! [`OUTPUT_NAME`] `[N, 4, O, O]` with `O` = [`OUT_CELLS`], the cells of the tile's centre:
//! channel `i·2 + j` at cell `(y, x)` is the correction added to the coarse alpha of centre
//! pixel `(2y + i, 2x + j)` (DepthToSpace's order, [`cell_output_offset`]); the sum is clamped
//! to 0..1. [`BandNet::load`] runs one tile to check that size. The stage lays the tiles out
//! and adds the correction itself, so the network file holds nothing but its convolutions. The
//! training crate (`training/src/band/`) builds its samples with [`gather_tiles`] and
//! [`coarse_matte`], so it sees exactly what this stage feeds.
//!
//! Engine: when the file is a plain chain of unpadded convolutions and ReLUs (what the training
//! crate exports), [`BandNet`] can compute it with its own kernel ([`kernel`]: direct AVX2
//! convolutions, eight channels by eight cells, each block of tiles gathered and computed on
//! one of two threads). At load it checks on a probe input that the kernel answers as ONNX
//! Runtime does, times both on a probe batch and keeps the faster: the kernel for the narrow
//! nets the latency budget allows (the shipped student about 3× faster), ONNX Runtime for wide
//! ones (the teacher). Any other graph runs through ONNX Runtime. Same matte to within
//! rounding.

mod kernel;

use std::path::Path;
use std::time::Instant;

use ndarray::Axis;

use kernel::{CellConv, Scratch};

use crate::frame::RgbaView;
use crate::model::{Dim, Model, ModelError, ModelSpec, TensorSpec};
use crate::refine::{LaplacianSolver, RefineSettings, SolveReport};
use crate::trimap::{KNOWN_BG, KNOWN_FG, known_alpha};

/// Side of the square of pixels one tile's net output replaces.
pub const TILE: usize = 32;
/// Context read around a tile on every side: the net's receptive field radius, in pixels
/// (checked by the training crate when it builds a net). Its convolutions have no padding, so
/// the margin is used up on the way and the output covers the tile's centre alone.
pub const TILE_MARGIN: usize = 14;
/// Side of one tile's net input and output.
pub const TILE_INPUT: usize = TILE + 2 * TILE_MARGIN;
/// Channels of a tile pixel: RGB, trimap, coarse alpha.
pub const CHANNELS: usize = 5;
/// Channels of a tile pixel for a temporal band net: RGB, trimap, coarse alpha, previous matte.
pub const TEMPORAL_CHANNELS: usize = 6;
/// The coarse alpha's channel.
pub const COARSE_CHANNEL: usize = 4;
/// The previous matte's channel (temporal band nets).
pub const PREV_CHANNEL: usize = 5;
/// Side of the square cells the net works on.
pub const CELL: usize = 2;
/// Cells along a tile input's side.
pub const CELLS: usize = TILE_INPUT / CELL;
/// Cells along a tile output's side: the tile's centre, [`TILE`] pixels.
pub const OUT_CELLS: usize = TILE / CELL;
/// Input channels of a single-frame net: every channel of a cell's four pixels.
pub const CELL_CHANNELS: usize = CHANNELS * CELL * CELL;
/// Input channels of a temporal net.
pub const TEMPORAL_CELL_CHANNELS: usize = TEMPORAL_CHANNELS * CELL * CELL;
/// Output channels of the net: the correction of each of a cell's four pixels.
pub const CELL_OUTPUTS: usize = CELL * CELL;
/// A tile runs when one of its unknown pixels has a coarse alpha in `(SOFT, 1 − SOFT)`. The
/// student was trained on the tiles of 0.01; at 0.1 the band net's time fell by about 15 % at
/// 640×360 and 40 % at 1280×720 with the same matte on the tuning stills
/// (results/band_net.md).
pub const SOFT: f32 = 0.1;
/// Tiles per network run; more are run in several batches.
pub const MAX_BATCH: usize = 256;
/// At most this many soft tiles side by side in a grid row go through the net as one input
/// (a *run*): their margins overlap, so a run of `k` reads `k·32 + 28` columns instead of
/// `k·60` and the net computes each shared margin once. The unpadded net gives every tile of
/// a run what it gives the tile alone.
pub const MAX_RUN: usize = 8;
/// Input columns of the longest run.
const MAX_RUN_INPUT: usize = run_input_width(MAX_RUN);
/// Name of the band net's input tensor.
pub const INPUT_NAME: &str = "input";
/// Name of the band net's output tensor.
pub const OUTPUT_NAME: &str = "residual";

/// Offset, inside one tile's input (`4·channels × CELLS²`), of channel `k` of tile pixel
/// `(u, v)` for a net with `channels` pixel channels.
pub fn cell_offset(k: usize, u: usize, v: usize, channels: usize) -> usize {
    run_cell_offset(k, u, v, channels, 1)
}

/// Offset, inside one tile's output (`CELL_OUTPUTS × OUT_CELLS²`), of pixel `(u, v)` of the
/// tile's centre (`0..TILE`).
pub fn cell_output_offset(u: usize, v: usize) -> usize {
    run_output_offset(u, v, 1)
}

/// The input/output contract of a band net (the input's channels, 20 or 24, and the output's
/// size for one tile are checked by [`BandNet::load`]).
pub fn spec() -> ModelSpec {
    ModelSpec {
        input: TensorSpec::new(INPUT_NAME, &[Dim::Any, Dim::Any, Dim::Any, Dim::Any]),
        extra_inputs: Vec::new(),
        output: TensorSpec::new(
            OUTPUT_NAME,
            &[
                Dim::Any,
                Dim::Fixed(CELL_OUTPUTS as i64),
                Dim::Any,
                Dim::Any,
            ],
        ),
        extra_outputs: Vec::new(),
    }
}

/// A region of a frame: x, y, width, height.
pub type Crop = (usize, usize, usize, usize);

/// The bounding box of the trimap's unknown pixels (alpha strictly between [`KNOWN_BG`] and
/// [`KNOWN_FG`]) grown by `margin` and clipped to the frame, with the number of unknown pixels;
/// `None` without unknown pixels. This is the crop the matting stage solves.
pub fn band_crop(frame: &RgbaView<'_>, margin: usize) -> Option<(Crop, usize)> {
    let (width, height) = (frame.shape()[1], frame.shape()[0]);
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
    let mut unknown = 0;
    let is_unknown = |px: &[u8]| px[3] > KNOWN_BG && px[3] < KNOWN_FG;
    crate::frame::for_each_row(frame, |y, row| {
        // Rows without an unknown pixel are read once.
        let Some(first) = row.chunks_exact(4).position(is_unknown) else {
            return;
        };
        let last = row.chunks_exact(4).rposition(is_unknown).unwrap_or(first);
        unknown += row[4 * first..4 * (last + 1)]
            .chunks_exact(4)
            .filter(|px| is_unknown(px))
            .count();
        x0 = x0.min(first);
        x1 = x1.max(last);
        y0 = y0.min(y);
        y1 = y1.max(y);
    });
    (unknown > 0).then(|| {
        let (cx, cy) = (x0.saturating_sub(margin), y0.saturating_sub(margin));
        let (cw, ch) = (
            (x1 + margin + 1).min(width) - cx,
            (y1 + margin + 1).min(height) - cy,
        );
        ((cx, cy, cw, ch), unknown)
    })
}

/// The classical refinement's matte of `crop` as the matting stage computes it without a net:
/// a flat 0.5 start solved by `solver` with `settings`; `alpha` (resized to the crop) holds the
/// result, known pixels exactly 0 / 1.
pub fn coarse_matte(
    frame: &RgbaView<'_>,
    (cx, cy, cw, ch): Crop,
    settings: &RefineSettings,
    solver: &mut LaplacianSolver,
    alpha: &mut Vec<f32>,
) -> SolveReport {
    alpha.clear();
    alpha.resize(cw * ch, 0.5);
    let view = frame.slice(ndarray::s![cy..cy + ch, cx..cx + cw, ..]);
    solver.refine(&view, alpha, settings)
}

/// The tiles of one frame that go through the net: their inputs, back to back, and where each
/// tile's centre is in the frame.
#[derive(Debug, Default, Clone)]
pub struct TileBatch {
    /// `tiles × CELL_CHANNELS × CELLS²`, each tile laid out as [`cell_offset`] says.
    pub input: Vec<f32>,
    /// Top-left corner, in the frame, of each tile's `TILE × TILE` centre.
    pub origins: Vec<(usize, usize)>,
    /// Which tiles of the current row of the grid are soft (scratch).
    soft: Vec<bool>,
}

impl TileBatch {
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

fn is_unknown(t: u8) -> bool {
    t > KNOWN_BG && t < KNOWN_FG
}

/// Whether any of `alphas` is soft, strictly between [`SOFT`] and 1 − [`SOFT`] (no early exit:
/// the fold over a tile's row vectorises).
fn any_soft(alphas: &[f32]) -> bool {
    alphas
        .iter()
        .fold(false, |soft, &a| soft | ((a > SOFT) & (a < 1.0 - SOFT)))
}

/// Collects the tiles of `crop` that go through the net: `frame` holds the trimap in alpha and
/// `coarse` the crop's coarse matte (`cw × ch`, as [`coarse_matte`] leaves it). Outside the
/// crop every pixel is known, so its coarse alpha is the trimap's 0 / 1. With
/// `channels` = [`TEMPORAL_CHANNELS`], `previous` is the previous frame's matte (the frame's
/// size, row-major), or `None` without history: the coarse alpha is repeated.
///
/// A tile's input pixel `(u, v)` is frame pixel `(tx + u − TILE_MARGIN, ty + v −
/// TILE_MARGIN)`, clamped to the frame: R, G, B / 255; the trimap 0 / 0.5 / 1; the coarse
/// alpha (the trimap's 0 / 1 at known pixels); the previous matte / 255.
pub fn gather_tiles(
    frame: &RgbaView<'_>,
    crop: Crop,
    coarse: &[f32],
    channels: usize,
    previous: Option<&[u8]>,
    batch: &mut TileBatch,
) {
    soft_tiles(crop, coarse, batch);
    fill_tiles(
        &TileSource::new(frame, crop, coarse, channels, previous),
        batch,
    );
}

/// What a tile's input is read from: the frame (trimap in alpha), the crop and its coarse
/// matte, the net's pixel channels and the previous matte (see [`gather_tiles`]).
struct TileSource<'a> {
    frame: &'a RgbaView<'a>,
    crop: Crop,
    coarse: &'a [f32],
    channels: usize,
    previous: Option<&'a [u8]>,
}

impl<'a> TileSource<'a> {
    fn new(
        frame: &'a RgbaView<'a>,
        crop: Crop,
        coarse: &'a [f32],
        channels: usize,
        previous: Option<&'a [u8]>,
    ) -> Self {
        Self {
            frame,
            crop,
            coarse,
            channels,
            previous,
        }
    }
}

/// The origins of the soft tiles of `crop` into `batch.origins`, grid row by grid row, left
/// to right.
fn soft_tiles(crop: Crop, coarse: &[f32], batch: &mut TileBatch) {
    let (cx, cy, cw, ch) = crop;
    batch.origins.clear();
    // The grid is anchored at the frame's corner, not the crop's: a pixel is in the same tile,
    // at the same place in its 2×2 cell, whatever the band does, so the net's output for a
    // pixel does not jump when the crop moves by a pixel between frames. A tile is soft when
    // one of its coarse alphas is: known pixels are exactly 0 or 1 there, so a soft alpha is
    // an unknown pixel's.
    let first_col = cx / TILE * TILE;
    let columns = (cx + cw - first_col).div_ceil(TILE);
    for ty in (cy / TILE * TILE..cy + ch).step_by(TILE) {
        batch.soft.clear();
        batch.soft.resize(columns, false);
        for y in ty.max(cy)..(ty + TILE).min(cy + ch) {
            let row = &coarse[(y - cy) * cw..(y - cy + 1) * cw];
            for (j, soft) in batch.soft.iter_mut().enumerate() {
                if !*soft {
                    let tx = first_col + j * TILE;
                    let (x0, x1) = (tx.max(cx), (tx + TILE).min(cx + cw));
                    *soft = any_soft(&row[x0 - cx..x1 - cx]);
                }
            }
        }
        let soft_columns = batch.soft.iter().enumerate().filter(|(_, s)| **s);
        batch
            .origins
            .extend(soft_columns.map(|(j, _)| (first_col + j * TILE, ty)));
    }
}

/// The inputs of tiles whose centres start at `origins`, whether or not they hold a soft pixel
/// (as [`gather_tiles`] fills them): training uses it to see the tiles of one frame at the
/// places another frame's tiles are. `crop` and `coarse` are this frame's (a frame without an
/// unknown band has an empty crop).
pub fn gather_tiles_at(
    frame: &RgbaView<'_>,
    crop: Crop,
    coarse: &[f32],
    channels: usize,
    previous: Option<&[u8]>,
    origins: &[(usize, usize)],
    batch: &mut TileBatch,
) {
    batch.origins.clear();
    batch.origins.extend_from_slice(origins);
    fill_tiles(
        &TileSource::new(frame, crop, coarse, channels, previous),
        batch,
    );
}

/// Fills `batch.input` for `batch.origins`, tile by tile.
fn fill_tiles(source: &TileSource<'_>, batch: &mut TileBatch) {
    let per_tile = source.channels * TILE_INPUT * TILE_INPUT;
    // Every value is overwritten below: resizing writes zeros only where the buffer grows.
    batch.input.resize(batch.origins.len() * per_tile, 0.0);
    for (&origin, tile) in batch
        .origins
        .iter()
        .zip(batch.input.chunks_exact_mut(per_tile))
    {
        fill_region(source, origin, 1, tile);
    }
}

/// Input columns of a run of `tiles` tiles side by side: their centres and one margin on
/// each side.
pub const fn run_input_width(tiles: usize) -> usize {
    tiles * TILE + 2 * TILE_MARGIN
}

/// Values of the input of a run of `tiles` tiles for a net with `cell_channels` input channels.
fn run_input_len(tiles: usize, cell_channels: usize) -> usize {
    block_input_len((tiles, 1), cell_channels)
}

/// Offset, inside the input of a run of `tiles` tiles (`4·channels × CELLS × run cells`), of
/// channel `k` of input pixel `(u, v)`: [`cell_offset`] for a run of one.
pub fn run_cell_offset(k: usize, u: usize, v: usize, channels: usize, tiles: usize) -> usize {
    let cells = run_input_width(tiles) / CELL;
    let sub = (v % CELL) * CELL + u % CELL;
    (sub * channels + k) * CELLS * cells + (v / CELL) * cells + u / CELL
}

/// Offset, inside the output of a run of `tiles` tiles (`CELL_OUTPUTS × OUT_CELLS × run
/// cells`), of pixel `(u, v)` of the run's centre: [`cell_output_offset`] for a run of one.
pub fn run_output_offset(u: usize, v: usize, tiles: usize) -> usize {
    block_output_offset(u, v, (tiles, 1))
}

/// A rectangle of soft tiles that goes through the net as one input: the first centre's
/// origin in the frame, then tiles across and tiles down (a run: `(x, y, k, 1)`).
type Block = (usize, usize, usize, usize);

/// Offset, inside the output of a block of `nx × ny` tiles (`CELL_OUTPUTS × ny·OUT_CELLS ×
/// nx·OUT_CELLS`), of pixel `(u, v)` of the block's centre.
fn block_output_offset(u: usize, v: usize, (nx, ny): (usize, usize)) -> usize {
    let (rows, cells) = (ny * OUT_CELLS, nx * OUT_CELLS);
    ((v % CELL) * CELL + u % CELL) * rows * cells + (v / CELL) * cells + u / CELL
}

/// Cells (rows, columns) of the input of a block of `nx × ny` tiles.
fn block_input_cells((nx, ny): (usize, usize)) -> (usize, usize) {
    (run_input_width(ny) / CELL, run_input_width(nx) / CELL)
}

/// Values of the input of a block of `nx × ny` tiles (`cell_channels` per cell).
fn block_input_len(size: (usize, usize), cell_channels: usize) -> usize {
    let (rows, cells) = block_input_cells(size);
    cell_channels * rows * cells
}

/// One input row of a run, channel by channel ([`MAX_RUN_INPUT`] columns at most).
type InputRow = [[f32; MAX_RUN_INPUT]; TEMPORAL_CHANNELS];

/// Computes the input rows of the block of `nx × ny` tiles whose first centre starts at
/// `(tx, ty)` (`nx` at most [`MAX_RUN`]), top to bottom, and hands each to `sink` as
/// `(v, row)`: channel `k` of input pixel `(u, v)` is `row[k][u]`. Every input pixel is the one
/// [`gather_tiles`] defines, so the unpadded net answers for each tile of the block exactly as
/// for the tile alone.
fn input_rows(
    source: &TileSource<'_>,
    (tx, ty): (usize, usize),
    (nx, ny): (usize, usize),
    mut sink: impl FnMut(usize, &InputRow),
) {
    let &TileSource {
        frame,
        crop: (cx, cy, cw, ch),
        coarse,
        channels,
        previous,
    } = source;
    let (width, height) = (frame.shape()[1], frame.shape()[0]);
    let temporal = channels == TEMPORAL_CHANNELS;
    let columns = run_input_width(nx);
    let mut xs = [0usize; MAX_RUN_INPUT];
    for (u, x) in xs[..columns].iter_mut().enumerate() {
        *x = (tx + u).saturating_sub(TILE_MARGIN).min(width - 1);
    }
    let inside_x = |x: usize| x >= cx && x < cx + cw;
    let mut values: InputRow = [[0.0f32; MAX_RUN_INPUT]; TEMPORAL_CHANNELS];
    for v in 0..run_input_width(ny) {
        let y = (ty + v).saturating_sub(TILE_MARGIN).min(height - 1);
        let row = frame.index_axis(Axis(0), y);
        let row = row.to_slice().expect("RGBA rows are contiguous");
        let coarse_row =
            (y >= cy && y < cy + ch).then(|| &coarse[(y - cy) * cw..(y - cy + 1) * cw]);
        let prev_row = previous.map(|p| &p[y * width..(y + 1) * width]);
        for (u, &x) in xs[..columns].iter().enumerate() {
            let px = &row[4 * x..4 * x + 4];
            values[0][u] = px[0] as f32 * (1.0 / 255.0);
            values[1][u] = px[1] as f32 * (1.0 / 255.0);
            values[2][u] = px[2] as f32 * (1.0 / 255.0);
            let (t, c) = match known_alpha(px[3]) {
                Some(a) => (a, a),
                None => match coarse_row {
                    Some(r) if inside_x(x) => (0.5, r[x - cx]),
                    _ => (0.5, 0.5),
                },
            };
            values[3][u] = t;
            values[COARSE_CHANNEL][u] = c;
            if temporal {
                values[PREV_CHANNEL][u] = match prev_row {
                    Some(p) => p[x] as f32 * (1.0 / 255.0),
                    None => c,
                };
            }
        }
        sink(v, &values);
    }
}

/// Writes the input of the run of `tiles` tiles whose first centre starts at `(tx, ty)` into
/// `input` (the [`run_cell_offset`] layout), row by row: a row's values are computed once
/// ([`input_rows`]), then each channel goes out as two contiguous runs (even and odd columns).
fn fill_region(source: &TileSource<'_>, (tx, ty): (usize, usize), tiles: usize, input: &mut [f32]) {
    let channels = source.channels;
    let columns = run_input_width(tiles);
    let cells = columns / CELL;
    input_rows(source, (tx, ty), (tiles, 1), |v, values| {
        for (k, channel) in values.iter().enumerate().take(channels) {
            for parity in 0..CELL {
                let start = run_cell_offset(k, parity, v, channels, tiles);
                let run = &mut input[start..start + cells];
                for (dst, &value) in run
                    .iter_mut()
                    .zip(channel[..columns].iter().skip(parity).step_by(CELL))
                {
                    *dst = value;
                }
            }
        }
    });
}

/// Input values of the runs a frame gathers (and, with the band net's own kernel, computes) on
/// two threads when there are more (below this a second thread costs more than it saves).
const PARALLEL_FILL_VALUES: usize = 1 << 18;

/// Where work on `blocks` (`values` input values each, `total` in all) is split between two
/// threads: the count of the first blocks that hold about half the values, and their values.
fn half_of(blocks: &[Block], total: usize, values: impl Fn(&Block) -> usize) -> (usize, usize) {
    let (mut split, mut half) = (0, 0);
    while split < blocks.len() - 1 && 2 * half < total {
        half += values(&blocks[split]);
        split += 1;
    }
    (split, half)
}

/// Writes the inputs of `runs` (first centre's origin, tiles) back to back into `input`
/// (`cell_channels` per cell), each as [`fill_region`] does: the first runs on a second thread
/// and the rest on this one when there is enough to gather.
fn fill_runs(source: &TileSource<'_>, runs: &[Block], input: &mut [f32], cell_channels: usize) {
    let per_input = |n: usize| run_input_len(n, cell_channels);
    let fill = |runs: &[Block], input: &mut [f32]| {
        let mut at = 0;
        for &(tx, ty, n, _) in runs {
            fill_region(source, (tx, ty), n, &mut input[at..at + per_input(n)]);
            at += per_input(n);
        }
    };
    let total: usize = runs.iter().map(|r| per_input(r.2)).sum();
    if total < PARALLEL_FILL_VALUES || runs.len() < 2 {
        fill(runs, input);
        return;
    }
    let (split, half) = half_of(runs, total, |r| per_input(r.2));
    let (first, rest) = runs.split_at(split);
    let (first_input, rest_input) = input[..total].split_at_mut(half);
    std::thread::scope(|scope| {
        scope.spawn(|| fill(first, first_input));
        fill(rest, rest_input);
    });
}

/// Gathers each of `blocks` and runs `conv` on it into `output` (back to back,
/// [`block_output_len`] values a block), the first blocks on a second thread and the rest on
/// this one when there is enough work, each thread with its own `scratch`. A pointwise first
/// layer is computed as the input is gathered ([`CellConv::first_layer_row`]); otherwise each
/// block (then a run, `ny` = 1) is stored in `input` first ([`run_input_len`] values a run,
/// back to back).
fn compute_blocks(
    source: &TileSource<'_>,
    conv: &CellConv,
    blocks: &[Block],
    (input, output): (&mut [f32], &mut [f32]),
    scratch: &mut [Scratch; 2],
) {
    let cell_channels = conv.in_channels();
    let per_input = |b: &Block| block_input_len((b.2, b.3), cell_channels);
    let work = |blocks: &[Block], input: &mut [f32], output: &mut [f32], scratch: &mut Scratch| {
        let (mut at_in, mut at_out) = (0, 0);
        for b @ &(tx, ty, nx, ny) in blocks {
            let size = block_input_cells((nx, ny));
            let block_output = &mut output[at_out..at_out + block_output_len((nx, ny))];
            if conv.first_layer_is_pointwise() {
                // The first layer is computed row by row as the input is gathered: the input
                // itself is never stored.
                let stride = conv.first_layer_stride();
                let first = conv.first_layer_output(size, scratch);
                input_rows(source, (tx, ty), (nx, ny), |v, values| {
                    let cells = &mut first[(v / CELL) * size.1 * stride..][..size.1 * stride];
                    conv.first_layer_row(v % CELL, &values[..source.channels], cells);
                });
                conv.run_after_first_layer(size, block_output, scratch);
            } else {
                assert_eq!(ny, 1, "only runs are stored as planar inputs");
                let run_input = &mut input[at_in..at_in + per_input(b)];
                fill_region(source, (tx, ty), nx, run_input);
                conv.run(run_input, size, block_output, scratch);
                at_in += per_input(b);
            }
            at_out += block_output_len((nx, ny));
        }
    };
    let total: usize = blocks.iter().map(per_input).sum();
    let [first_scratch, rest_scratch] = scratch;
    if total < PARALLEL_FILL_VALUES || blocks.len() < 2 {
        work(blocks, input, output, rest_scratch);
        return;
    }
    let (split, half) = half_of(blocks, total, per_input);
    let (first, rest) = blocks.split_at(split);
    let half_out: usize = first.iter().map(|b| block_output_len((b.2, b.3))).sum();
    // Without stored inputs (a pointwise first layer) `input` is empty.
    let (first_input, rest_input) = input.split_at_mut(half.min(input.len()));
    let (first_output, rest_output) = output.split_at_mut(half_out);
    std::thread::scope(|scope| {
        scope.spawn(|| work(first, first_input, first_output, first_scratch));
        work(rest, rest_input, rest_output, rest_scratch);
    });
}

/// Values of the output of a block of `nx × ny` tiles.
fn block_output_len((nx, ny): (usize, usize)) -> usize {
    CELL_OUTPUTS * OUT_CELLS * OUT_CELLS * nx * ny
}

/// Adds the net's corrections for `batch` (`tiles × CELL_OUTPUTS × OUT_CELLS²`) to `alpha`, the
/// crop's coarse matte (`cw × ch`), at the unknown pixels of every tile's centre, clamped to
/// 0..1.
pub fn scatter_tiles(
    frame: &RgbaView<'_>,
    crop: Crop,
    batch: &TileBatch,
    output: &[f32],
    alpha: &mut [f32],
) {
    let per_tile = CELL_OUTPUTS * OUT_CELLS * OUT_CELLS;
    for (k, &origin) in batch.origins.iter().enumerate() {
        let out = &output[k * per_tile..(k + 1) * per_tile];
        scatter_region(frame, crop, (origin.0, origin.1, 1, 1), out, alpha);
    }
}

/// Adds the corrections `out` of the block of `nx × ny` tiles whose first centre starts at
/// `(tx, ty)` to `alpha` at the unknown pixels of the block's centres, clamped to 0..1.
fn scatter_region(
    frame: &RgbaView<'_>,
    (cx, cy, cw, ch): Crop,
    (tx, ty, nx, ny): Block,
    out: &[f32],
    alpha: &mut [f32],
) {
    let (x0, x1) = (tx.max(cx), (tx + nx * TILE).min(cx + cw));
    for y in ty.max(cy)..(ty + ny * TILE).min(cy + ch) {
        let v = y - ty;
        let row = frame.index_axis(Axis(0), y);
        let row = row.to_slice().expect("RGBA rows are contiguous");
        let alphas = &mut alpha[(y - cy) * cw + (x0 - cx)..(y - cy) * cw + (x1 - cx)];
        for ((a, px), x) in alphas
            .iter_mut()
            .zip(row[4 * x0..4 * x1].chunks_exact(4))
            .zip(x0..x1)
        {
            if is_unknown(px[3]) {
                *a = (*a + out[block_output_offset(x - tx, v, (nx, ny))]).clamp(0.0, 1.0);
            }
        }
    }
}

/// The error of a band net whose output for a run of `tiles` tiles is not the run's centre.
fn wrong_output(path: &Path, expected: &[usize], tiles: usize, found: &str) -> ModelError {
    let expected = if tiles == 1 {
        format!(
            "{expected:?} for a tile of {CELLS}×{CELLS} cells (a band net for a {TILE_MARGIN}-pixel \
             margin, unpadded convolutions)"
        )
    } else {
        const COUNTS: [&str; MAX_RUN - 1] =
            ["two", "three", "four", "five", "six", "seven", "eight"];
        let count = COUNTS
            .get(tiles - 2)
            .map_or(tiles.to_string(), |c| c.to_string());
        format!(
            "{expected:?} for {count} tiles side by side ({CELLS}×{} cells): the stage runs soft \
             tiles of a grid row as one input, so the net must be fully convolutional (any \
             input width)",
            run_input_width(tiles) / CELL
        )
    };
    ModelError::WrongShape {
        path: path.to_path_buf(),
        name: OUTPUT_NAME,
        expected,
        found: found.to_string(),
    }
}

/// Runs a blank run of `tiles` tiles through `model` (`cell_channels` input channels) and
/// checks that the answer is the run's centre.
fn check_answer(
    model: &mut Model,
    cell_channels: usize,
    tiles: usize,
    output: &mut Vec<f32>,
) -> Result<(), ModelError> {
    let cells = run_input_width(tiles) / CELL;
    let expected = [1, CELL_OUTPUTS, OUT_CELLS, tiles * OUT_CELLS];
    output.resize(expected.iter().product(), 0.0);
    let found = match model.run(
        &vec![0.0; cell_channels * CELLS * cells],
        &[1, cell_channels, CELLS, cells],
        output,
    ) {
        Ok(shape) if shape == expected => return Ok(()),
        Ok(shape) => format!("{shape:?}"),
        // Another output size is refused by the copy, which says what came out.
        Err(ModelError::WrongShape { found, .. }) => found,
        // A net of fixed input size cannot take a run.
        Err(ModelError::Inference { reason, .. }) if tiles > 1 => {
            let first = reason.lines().next().unwrap_or_default();
            format!("no answer ({})", first.trim())
        }
        Err(e) => return Err(e),
    };
    Err(wrong_output(model.path(), &expected, tiles, &found))
}

/// Tiles of the batch on which [`BandNet::load`] times the own kernel against ONNX Runtime.
const PROBE_TILES: usize = 16;

/// Largest difference, on the probe input, at which the band net's own kernel counts as
/// answering as ONNX Runtime does (both compute in `f32`, in different orders).
const KERNEL_TOLERANCE: f32 = 1e-4;

/// The band net's own kernel for `model`, if its file is a plain chain of convolutions with
/// `cell_channels` inputs and the tile's margin as receptive field, and the kernel answers a
/// probe run of two tiles (values that cover the inputs' range) as ONNX Runtime does.
fn own_kernel(model: &mut Model, cell_channels: usize) -> Result<Option<CellConv>, ModelError> {
    // ONNX Runtime has already loaded and run the file: one that the kernel's reader cannot
    // parse (not expected) is simply left to it.
    let Ok(Some(conv)) = CellConv::from_onnx(model.path()) else {
        return Ok(None);
    };
    if conv.in_channels() != cell_channels
        || conv.out_channels() != CELL_OUTPUTS
        || conv.shrink() * CELL != TILE_MARGIN
    {
        return Ok(None);
    }
    let cells = run_input_width(2) / CELL;
    let input: Vec<f32> = (0..cell_channels * CELLS * cells)
        .map(|i| ((i * 7919) % 1013) as f32 / 1012.0)
        .collect();
    let mut expected = vec![0.0; block_output_len((2, 1))];
    model.run(&input, &[1, cell_channels, CELLS, cells], &mut expected)?;
    let mut got = vec![0.0; block_output_len((2, 1))];
    conv.run(&input, (CELLS, cells), &mut got, &mut Scratch::default());
    let agrees = expected
        .iter()
        .zip(&got)
        .all(|(e, g)| (e - g).abs() <= KERNEL_TOLERANCE * (1.0 + e.abs()));
    Ok(agrees.then_some(conv))
}

/// A loaded band net with its buffers, reused across frames.
#[derive(Debug)]
pub struct BandNet {
    model: Model,
    /// The net's convolutions for the band net's own kernel ([`kernel`]), when the file is a
    /// plain chain of them and the kernel answers the probe as ONNX Runtime does.
    conv: Option<CellConv>,
    /// Whether the own kernel runs the net (else ONNX Runtime): chosen at load, by timing both
    /// on a probe batch.
    own_kernel: bool,
    /// The kernel's activation buffers, one per thread.
    scratch: [Scratch; 2],
    /// Pixel channels: [`CHANNELS`], or [`TEMPORAL_CHANNELS`] for a temporal net.
    channels: usize,
    /// The soft tiles of the frame.
    batch: TileBatch,
    /// What goes through the net as one input: runs of soft tiles side by side in a grid row
    /// (`(x, y, k, 1)`) and, on the own kernel, rectangles of such runs stacked in consecutive
    /// rows (`(x, y, k, rows)`). Through ONNX Runtime, runs only, shortest first.
    blocks: Vec<Block>,

    input: Vec<f32>,
    output: Vec<f32>,
}

impl BandNet {
    /// Loads and validates the band net at `path` with `threads` intra-op threads (0 = the
    /// process-wide pool).
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let mut model = Model::load(path, &spec(), threads)?;
        let declared = model.input_shape().get(1).copied().unwrap_or(-1);
        let channels = match declared {
            d if d == CELL_CHANNELS as i64 => CHANNELS,
            d if d == TEMPORAL_CELL_CHANNELS as i64 => TEMPORAL_CHANNELS,
            _ => {
                return Err(ModelError::WrongShape {
                    path: path.to_path_buf(),
                    name: INPUT_NAME,
                    expected: format!(
                        "[N, {CELL_CHANNELS} or {TEMPORAL_CELL_CHANNELS}, C, C] (band-net cells)"
                    ),
                    found: format!("{:?}", model.input_shape()),
                });
            }
        };
        // One blank tile: a net made for another margin (or padded convolutions) answers with
        // cells that do not cover the tile's centre exactly. Then two tiles side by side as
        // one input (a run): the net must take any width.
        let cell_channels = channels * CELL * CELL;
        let mut output = Vec::new();
        check_answer(&mut model, cell_channels, 1, &mut output)?;
        check_answer(&mut model, cell_channels, 2, &mut output)?;
        let conv = own_kernel(&mut model, cell_channels)?;
        let mut net = Self {
            model,
            own_kernel: conv.is_some(),
            conv,
            scratch: Default::default(),
            channels,
            batch: TileBatch::default(),
            blocks: Vec::new(),
            input: Vec::new(),
            output,
        };
        if net.own_kernel {
            net.own_kernel = net.own_kernel_is_faster()?;
        }
        Ok(net)
    }

    /// Whether the net runs on the band net's own kernel rather than ONNX Runtime.
    pub fn uses_own_kernel(&self) -> bool {
        self.own_kernel
    }

    /// Runs the net through ONNX Runtime from now on (for comparisons: the matte is the same to
    /// within rounding).
    pub fn use_onnx_runtime(&mut self) {
        self.own_kernel = false;
    }

    /// Runs the net on the own kernel from now on, if the file allows it (a plain chain of
    /// convolutions that answered the probe as ONNX Runtime does); returns whether it does.
    pub fn use_own_kernel(&mut self) -> bool {
        self.own_kernel = self.conv.is_some();
        self.own_kernel
    }

    /// Whether the own kernel runs a probe batch of tiles faster than ONNX Runtime: the kernel
    /// is made for the narrow nets the latency budget allows (the shipped student, [8, 8, 8]:
    /// about 3× faster); ONNX Runtime's matrix products win on wide ones (the teacher, [48,
    /// 48, 48]: about 2× faster). Each engine's best of three runs of [`PROBE_TILES`] tiles,
    /// after one warm-up run, the engines alternating.
    fn own_kernel_is_faster(&mut self) -> Result<bool, ModelError> {
        let cell_channels = self.channels * CELL * CELL;
        let input: Vec<f32> = (0..PROBE_TILES * cell_channels * CELLS * CELLS)
            .map(|i| ((i * 7919) % 1013) as f32 / 1012.0)
            .collect();
        let mut output = vec![0.0; PROBE_TILES * block_output_len((1, 1))];
        // The engines alternate, so a burst of other load slows both.
        let mut best = [f64::INFINITY; 2];
        for run in 0..4 {
            for (engine, time) in best.iter_mut().enumerate() {
                self.own_kernel = engine == 0;
                let start = Instant::now();
                self.run_tiles(&input, PROBE_TILES, &mut output)?;
                if run > 0 {
                    *time = time.min(start.elapsed().as_secs_f64());
                }
            }
        }
        Ok(best[0] <= best[1])
    }

    /// Runs `tiles` single tiles laid out as [`gather_tiles`] leaves them (`[tiles, 4·K,
    /// CELLS, CELLS]`) through the net as the stage does — on the own kernel, the tiles split
    /// between two threads, or through ONNX Runtime as one batch — and writes their corrections
    /// (`[tiles, CELL_OUTPUTS, OUT_CELLS, OUT_CELLS]`) to `output`. What the training crate's
    /// latency-budget search times.
    pub fn run_tiles(
        &mut self,
        input: &[f32],
        tiles: usize,
        output: &mut [f32],
    ) -> Result<(), ModelError> {
        let cell_channels = self.channels * CELL * CELL;
        let (per_in, per_out) = (cell_channels * CELLS * CELLS, block_output_len((1, 1)));
        assert_eq!(input.len(), tiles * per_in, "input size");
        assert_eq!(output.len(), tiles * per_out, "output size");
        let Some(conv) = self.conv.as_ref().filter(|_| self.own_kernel) else {
            let shape = [tiles, cell_channels, CELLS, CELLS];
            return self.model.run(input, &shape, output).map(|_| ());
        };
        let work = |input: &[f32], output: &mut [f32], scratch: &mut Scratch| {
            for (tile, out) in input
                .chunks_exact(per_in)
                .zip(output.chunks_exact_mut(per_out))
            {
                conv.run(tile, (CELLS, CELLS), out, scratch);
            }
        };
        let [first_scratch, rest_scratch] = &mut self.scratch;
        if tiles < 2 {
            work(input, output, rest_scratch);
            return Ok(());
        }
        let half = tiles / 2;
        let (first_input, rest_input) = input.split_at(half * per_in);
        let (first_output, rest_output) = output.split_at_mut(half * per_out);
        std::thread::scope(|scope| {
            scope.spawn(|| work(first_input, first_output, first_scratch));
            work(rest_input, rest_output, rest_scratch);
        });
        Ok(())
    }

    /// Whether the net reads the previous frame's matte.
    pub fn is_temporal(&self) -> bool {
        self.channels == TEMPORAL_CHANNELS
    }

    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// Groups the frame's soft tiles into [`blocks`](Self::blocks): soft tiles side by side in
    /// a grid row go through the net together (up to [`MAX_RUN`]), which computes their shared
    /// margins once. On the own kernel with a pointwise first layer, runs over the same columns
    /// in consecutive grid rows are stacked into one rectangle too (up to [`MAX_RUN`] rows),
    /// which shares their margins up and down (on the bench clip's frames 6 % fewer input cells
    /// at 640×360, 8 % at 1280×720). Through ONNX Runtime runs of one length share a shape, so
    /// each length is one batch: the runs are sorted by length.
    fn group_tiles(&mut self) {
        self.blocks.clear();
        for &(tx, ty) in &self.batch.origins {
            match self.blocks.last_mut() {
                Some((rx, ry, n, _)) if *ry == ty && *rx + *n * TILE == tx && *n < MAX_RUN => {
                    *n += 1;
                }
                _ => self.blocks.push((tx, ty, 1, 1)),
            }
        }
        let conv = self.conv.as_ref().filter(|_| self.own_kernel);
        if !conv.is_some_and(CellConv::first_layer_is_pointwise) {
            if conv.is_none() {
                self.blocks.sort_by_key(|b| b.2);
            }
            return;
        }
        // Runs of the same columns in consecutive grid rows become one block (up to MAX_RUN
        // rows): the runs come row by row, left to right, so sort them by column first.
        self.blocks
            .sort_unstable_by_key(|&(tx, ty, n, _)| (tx, n, ty));
        let mut merged = 0;
        for i in 0..self.blocks.len() {
            let (tx, ty, n, _) = self.blocks[i];
            if merged > 0 {
                let (bx, by, bn, rows) = self.blocks[merged - 1];
                if bx == tx && bn == n && by + rows * TILE == ty && rows < MAX_RUN {
                    self.blocks[merged - 1].3 += 1;
                    continue;
                }
            }
            self.blocks[merged] = (tx, ty, n, 1);
            merged += 1;
        }
        self.blocks.truncate(merged);
    }

    /// Replaces the coarse matte `alpha` of `crop` (`cw × ch`) by the net's at the unknown
    /// pixels of every soft tile; `previous` is the previous frame's matte for a temporal net
    /// (`None`: no history). Returns the number of tiles run.
    pub fn refine(
        &mut self,
        frame: &RgbaView<'_>,
        crop: Crop,
        alpha: &mut [f32],
        previous: Option<&[u8]>,
    ) -> Result<usize, ModelError> {
        soft_tiles(crop, alpha, &mut self.batch);
        let tiles = self.batch.len();
        self.group_tiles();
        let cell_channels = self.channels * CELL * CELL;
        let per_input = |n: usize| run_input_len(n, cell_channels);
        let inputs: usize = (self.blocks.iter())
            .map(|b| block_input_len((b.2, b.3), cell_channels))
            .sum();
        let outputs: usize = (self.blocks.iter())
            .map(|b| block_output_len((b.2, b.3)))
            .sum();
        // Every value is overwritten: resizing writes zeros only where a buffer grows. The own
        // kernel computes a pointwise first layer as it gathers, so it stores no input.
        let conv = self.conv.as_ref().filter(|_| self.own_kernel);
        let stores_input = conv.is_none_or(|c| !c.first_layer_is_pointwise());
        self.input
            .resize(if stores_input { inputs } else { 0 }, 0.0);
        self.output.resize(outputs, 0.0);
        // Every input is gathered before any correction is written: a block's margin reads the
        // coarse matte.
        let source = TileSource::new(frame, crop, alpha, self.channels, previous);
        if let Some(conv) = conv {
            compute_blocks(
                &source,
                conv,
                &self.blocks,
                (&mut self.input, &mut self.output),
                &mut self.scratch,
            );
        } else {
            fill_runs(&source, &self.blocks, &mut self.input, cell_channels);
            let (mut at_in, mut at_out) = (0, 0);
            for group in self.blocks.chunk_by(|a, b| a.2 == b.2) {
                let n = group[0].2;
                for chunk in group.chunks((MAX_BATCH / n).max(1)) {
                    let (len_in, len_out) = (
                        chunk.len() * per_input(n),
                        chunk.len() * block_output_len((n, 1)),
                    );
                    let shape = [chunk.len(), cell_channels, CELLS, run_input_width(n) / CELL];
                    let found = self.model.run(
                        &self.input[at_in..at_in + len_in],
                        &shape,
                        &mut self.output[at_out..at_out + len_out],
                    )?;
                    let expected = [chunk.len(), CELL_OUTPUTS, OUT_CELLS, n * OUT_CELLS];
                    if found != expected {
                        let found = format!("{found:?}");
                        return Err(wrong_output(self.model.path(), &expected, n, &found));
                    }
                    (at_in, at_out) = (at_in + len_in, at_out + len_out);
                }
            }
        }
        let mut at = 0;
        for &block in &self.blocks {
            let len = block_output_len((block.2, block.3));
            scatter_region(frame, crop, block, &self.output[at..at + len], alpha);
            at += len;
        }
        Ok(tiles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// The largest absolute difference between `a` and `b`, element by element.
    pub(super) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    }

    /// A `w × h` frame over `texture(x, y, c)` whose trimap is background above row `rows.start`
    /// and foreground below, with an unknown band over `rows` and `cols`; its band crop; and a
    /// coarse matte on the crop, the trimap's 0 / 1 and `ramp(x, y)` where unknown.
    fn crossed_bands(
        (w, h): (usize, usize),
        (rows, cols): (std::ops::Range<usize>, std::ops::Range<usize>),
        texture: impl Fn(usize, usize, usize) -> usize,
        ramp: impl Fn(usize, usize) -> f32,
    ) -> (Array3<u8>, Crop, Vec<f32>) {
        let f = Array3::from_shape_fn((h, w, 4), |(y, x, c)| match c {
            3 if rows.contains(&y) || cols.contains(&x) => 128,
            3 if y < rows.start => 0,
            3 => 255,
            _ => (texture(x, y, c) % 256) as u8,
        });
        let crop = band_crop(&f.view(), 16).unwrap().0;
        let (cw, ch) = (crop.2, crop.3);
        let mut coarse = vec![0.0f32; cw * ch];
        for (i, a) in coarse.iter_mut().enumerate() {
            let (fx, fy) = (crop.0 + i % cw, crop.1 + i / cw);
            *a = known_alpha(f[[fy, fx, 3]]).unwrap_or_else(|| ramp(fx, fy));
        }
        (f, crop, coarse)
    }

    /// A frame whose left half is known background, right half known foreground, with an
    /// unknown vertical band of `band` columns at `x0`.
    fn frame(width: usize, height: usize, x0: usize, band: usize) -> Array3<u8> {
        Array3::from_shape_fn((height, width, 4), |(y, x, c)| match c {
            3 if x >= x0 && x < x0 + band => 128,
            3 if x < x0 => 0,
            3 => 255,
            _ => ((x * 7 + y * 3 + c * 50) % 256) as u8,
        })
    }

    #[test]
    fn the_crop_is_the_unknown_bounding_box_grown_by_the_margin() {
        let f = frame(100, 60, 40, 5);
        let ((cx, cy, cw, ch), unknown) = band_crop(&f.view(), 16).unwrap();
        assert_eq!((cx, cy, cw, ch), (24, 0, 37, 60));
        assert_eq!(unknown, 5 * 60);
        let none = frame(100, 60, 40, 0);
        assert!(band_crop(&none.view(), 16).is_none());
    }

    #[test]
    fn only_tiles_with_soft_unknown_pixels_are_gathered_and_only_unknown_pixels_written() {
        let f = frame(100, 70, 40, 5);
        let view = f.view();
        let crop = band_crop(&view, 16).unwrap().0;
        let (cx, cy, cw, ch) = crop;
        // Coarse matte: known pixels 0 / 1, the band soft in rows below 32 only.
        let mut coarse = vec![0.0f32; cw * ch];
        for y in 0..ch {
            for x in 0..cw {
                coarse[y * cw + x] = match known_alpha(view[[cy + y, cx + x, 3]]) {
                    Some(a) => a,
                    None if y < TILE => 0.5,
                    None => 1.0,
                };
            }
        }
        let mut batch = TileBatch::default();
        gather_tiles(&view, crop, &coarse, CHANNELS, None, &mut batch);
        // Crop x 24..61, grid anchored at the frame: tiles at x 0, 32 (holds the band 40..45);
        // only the first row of tiles is soft.
        assert_eq!(batch.origins, vec![(32, 0)]);
        assert_eq!(batch.input.len(), CELL_CHANNELS * CELLS * CELLS);
        // Input pixel (u, v) is frame pixel (32 − margin + u, v − margin clamped to 0).
        let (u, v) = (TILE_MARGIN + 8, TILE_MARGIN + 3);
        let (x, y) = (32 + 8, 3);
        let at = |k, u, v| batch.input[cell_offset(k, u, v, CHANNELS)];
        assert_eq!(at(0, u, v), view[[y, x, 0]] as f32 / 255.0);
        assert_eq!(at(2, u, v), view[[y, x, 2]] as f32 / 255.0);
        assert_eq!(at(3, u, v), 0.5);
        assert_eq!(at(COARSE_CHANNEL, u, v), 0.5);
        // Rows above the frame repeat row 0.
        assert_eq!(at(1, u, 0), view[[0, x, 1]] as f32 / 255.0);
        // A known-foreground pixel right of the band: trimap 1, coarse 1.
        let u2 = TILE_MARGIN + 20;
        assert_eq!(at(3, u2, v), 1.0);
        assert_eq!(at(COARSE_CHANNEL, u2, v), 1.0);
        // A temporal net gets the previous matte, or the coarse alpha without history.
        let (w, _) = (view.shape()[1], view.shape()[0]);
        let previous: Vec<u8> = (0..w * view.shape()[0]).map(|i| (i % 251) as u8).collect();
        let mut temporal = TileBatch::default();
        gather_tiles(
            &view,
            crop,
            &coarse,
            TEMPORAL_CHANNELS,
            Some(&previous),
            &mut temporal,
        );
        let t_at = |b: &TileBatch, k, u, v| b.input[cell_offset(k, u, v, TEMPORAL_CHANNELS)];
        assert_eq!(temporal.input.len(), TEMPORAL_CELL_CHANNELS * CELLS * CELLS);
        assert_eq!(t_at(&temporal, 0, u, v), at(0, u, v));
        assert_eq!(
            t_at(&temporal, PREV_CHANNEL, u, v),
            previous[y * w + x] as f32 / 255.0
        );
        gather_tiles(&view, crop, &coarse, TEMPORAL_CHANNELS, None, &mut temporal);
        assert_eq!(t_at(&temporal, PREV_CHANNEL, u, v), 0.5);
        assert_eq!(t_at(&temporal, PREV_CHANNEL, u2, v), 1.0);
        // Correct every pixel by −0.25: only the tile's unknown centre pixels change.
        let output = vec![-0.25f32; CELL_OUTPUTS * OUT_CELLS * OUT_CELLS];
        let mut alpha = coarse.clone();
        scatter_tiles(&view, crop, &batch, &output, &mut alpha);
        for y in 0..ch {
            for x in 0..cw {
                let unknown = is_unknown(view[[cy + y, cx + x, 3]]);
                let expect = if unknown && y < TILE && cx + x >= 32 {
                    0.25
                } else {
                    coarse[y * cw + x]
                };
                assert_eq!(alpha[y * cw + x], expect, "({x}, {y})");
            }
        }
    }

    /// Channel `k` of the input pixel `(u, v)` of the tile at `(tx, ty)`, straight from the
    /// definition in [`gather_tiles`]'s documentation.
    fn expected_input(
        frame: &ndarray::ArrayView3<'_, u8>,
        (cx, cy, cw, ch): Crop,
        coarse: &[f32],
        previous: Option<&[u8]>,
        (tx, ty): (usize, usize),
        (k, u, v): (usize, usize, usize),
    ) -> f32 {
        let (w, h) = (frame.shape()[1], frame.shape()[0]);
        let x = (tx + u).saturating_sub(TILE_MARGIN).min(w - 1);
        let y = (ty + v).saturating_sub(TILE_MARGIN).min(h - 1);
        let t = frame[[y, x, 3]];
        let coarse_alpha = match known_alpha(t) {
            Some(a) => a,
            None if (cx..cx + cw).contains(&x) && (cy..cy + ch).contains(&y) => {
                coarse[(y - cy) * cw + x - cx]
            }
            None => 0.5,
        };
        match k {
            0..=2 => frame[[y, x, k]] as f32 * (1.0 / 255.0),
            3 => known_alpha(t).unwrap_or(0.5),
            COARSE_CHANNEL => coarse_alpha,
            _ => previous.map_or(coarse_alpha, |p| p[y * w + x] as f32 * (1.0 / 255.0)),
        }
    }

    #[test]
    fn every_tile_input_value_is_its_frame_pixel_clamped_at_the_border() {
        // A ring of unknown pixels whose tiles touch every side of the frame, so inputs read
        // past the border; a ramp for the coarse matte, so every tile of the ring is soft.
        let (w, h) = (150, 90);
        let f = Array3::from_shape_fn((h, w, 4), |(y, x, c)| {
            let d = (x as i64 - 75).abs().max((y as i64 - 45).abs() * 5 / 3);
            match c {
                3 if d < 64 => 255,
                3 if d < 72 => 100,
                3 => 0,
                _ => ((x * 13 + y * 7 + c * 31) % 256) as u8,
            }
        });
        let view = f.view();
        let crop = band_crop(&view, 16).unwrap().0;
        let (cx, cy, cw, ch) = crop;
        let coarse: Vec<f32> = (0..cw * ch)
            .map(|i| {
                let (x, y) = (cx + i % cw, cy + i / cw);
                known_alpha(view[[y, x, 3]]).unwrap_or(((x + y) % 7) as f32 / 7.0 * 0.6 + 0.2)
            })
            .collect();
        let previous: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
        for (channels, prev) in [
            (CHANNELS, None),
            (TEMPORAL_CHANNELS, Some(previous.as_slice())),
            (TEMPORAL_CHANNELS, None),
        ] {
            let mut batch = TileBatch::default();
            gather_tiles(&view, crop, &coarse, channels, prev, &mut batch);
            // A grid of 5 × 3 tiles; the middle row's three inner tiles hold only known
            // foreground.
            assert_eq!(batch.len(), 12);
            assert!(batch.origins.contains(&(0, 0)) && batch.origins.contains(&(128, 64)));
            let per_tile = channels * TILE_INPUT * TILE_INPUT;
            for (i, &origin) in batch.origins.iter().enumerate() {
                for k in 0..channels {
                    for v in 0..TILE_INPUT {
                        for u in 0..TILE_INPUT {
                            let got = batch.input[i * per_tile + cell_offset(k, u, v, channels)];
                            let want =
                                expected_input(&view, crop, &coarse, prev, origin, (k, u, v));
                            assert_eq!(got, want, "tile {origin:?}, channel {k}, ({u}, {v})");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_cell_layout_is_space_to_depth() {
        // Every input offset is used exactly once.
        for channels in [CHANNELS, TEMPORAL_CHANNELS] {
            let mut seen = vec![false; channels * CELL * CELL * CELLS * CELLS];
            for k in 0..channels {
                for v in 0..TILE_INPUT {
                    for u in 0..TILE_INPUT {
                        let o = cell_offset(k, u, v, channels);
                        assert!(!seen[o]);
                        seen[o] = true;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
        // Pixel (3, 2): cell (1, 1), sub-pixel i = 0, j = 1 → channel (0·2 + 1)·5 + k.
        assert_eq!(
            cell_offset(4, 3, 2, CHANNELS),
            (5 + 4) * CELLS * CELLS + CELLS + 1
        );
        // Output pixel (3, 2) of the tile's centre: the same cell and sub-pixel.
        assert_eq!(
            cell_output_offset(3, 2),
            OUT_CELLS * OUT_CELLS + OUT_CELLS + 1
        );
    }

    #[test]
    fn the_coarse_matte_keeps_known_pixels_exact() {
        let f = frame(64, 48, 20, 8);
        let view = f.view();
        let crop = band_crop(&view, 16).unwrap().0;
        let (cx, cy, cw, ch) = crop;
        let mut alpha = Vec::new();
        let report = coarse_matte(
            &view,
            crop,
            &RefineSettings::default(),
            &mut LaplacianSolver::new(),
            &mut alpha,
        );
        assert_eq!(report.unknown, 8 * 48);
        for y in 0..ch {
            for x in 0..cw {
                let a = alpha[y * cw + x];
                match known_alpha(view[[cy + y, cx + x, 3]]) {
                    Some(k) => assert_eq!(a, k),
                    None => assert!((0.0..=1.0).contains(&a)),
                }
            }
        }
    }

    /// The net over runs of side-by-side tiles (one input per run, runs longer than
    /// [`MAX_RUN`] split) gives every pixel what it gives over the tiles one by one.
    #[test]
    fn runs_of_tiles_give_what_single_tiles_give() {
        let (w, h) = (420, 150);
        // A horizontal unknown band across the whole width (runs of 8 and 6 tiles) and a
        // vertical one (runs of one or two), over a texture; a soft coarse matte: a ramp where
        // unknown.
        let (f, crop, coarse) = crossed_bands(
            (w, h),
            (60..84, 300..320),
            |x, y, c| x * 13 + y * 7 + c * 60 + (x * y) % 17,
            |x, y| ((x * 3 + y * 5) % 100) as f32 / 100.0,
        );
        let view = f.view();
        let previous: Vec<u8> = (0..w * h).map(|i| (i * 31 % 256) as u8).collect();
        let model = crate::paths::project_root()
            .join("models")
            .join(crate::paths::BAND_MODEL);
        let mut net = BandNet::load(&model, 1).unwrap();
        // The runs on the band net's own kernel, the single tiles below through ONNX Runtime.
        assert!(net.use_own_kernel());
        let mut by_runs = coarse.clone();
        let tiles = net
            .refine(&view, crop, &mut by_runs, Some(&previous))
            .unwrap();
        // Runs along the horizontal band (of 8 and 6 tiles, two grid rows: stacked), columns
        // down the vertical one.
        let blocks = &net.blocks;
        assert!(
            blocks.iter().any(|b| b.2 == MAX_RUN && b.3 == 2),
            "{blocks:?}"
        );
        assert!(blocks.iter().any(|b| b.2 == 1 && b.3 > 1), "{blocks:?}");
        assert_eq!(blocks.iter().map(|b| b.2 * b.3).sum::<usize>(), tiles);
        // Enough to gather and compute on two threads.
        let values: usize = (blocks.iter())
            .map(|b| block_input_len((b.2, b.3), net.channels * CELL * CELL))
            .sum();
        assert!(values >= PARALLEL_FILL_VALUES, "{values} input values");
        // Tile by tile.
        let channels = net.channels;
        let mut batch = TileBatch::default();
        gather_tiles(&view, crop, &coarse, channels, Some(&previous), &mut batch);
        assert_eq!(batch.len(), tiles);
        let cell_channels = channels * CELL * CELL;
        let per_out = CELL_OUTPUTS * OUT_CELLS * OUT_CELLS;
        let mut output = vec![0.0; tiles * per_out];
        net.model
            .run(
                &batch.input,
                &[tiles, cell_channels, CELLS, CELLS],
                &mut output,
            )
            .unwrap();
        let mut by_tiles = coarse.clone();
        scatter_tiles(&view, crop, &batch, &output, &mut by_tiles);
        let worst = max_abs_diff(&by_runs, &by_tiles);
        assert!(worst < 1e-4, "runs and single tiles differ by {worst}");
        let changed = by_runs.iter().zip(&coarse).filter(|(a, c)| a != c).count();
        assert!(changed > 1000, "the net changed {changed} pixels");
    }

    #[test]
    fn every_shipped_band_net_runs_on_the_own_kernel_as_on_onnx_runtime() {
        let (w, h) = (300, 120);
        let (f, crop, coarse) = crossed_bands(
            (w, h),
            (40..70, 200..216),
            |x, y, c| x * 11 + y * 5 + c * 70 + (x * y) % 23,
            |x, y| ((x * 7 + y * 3) % 90) as f32 / 90.0,
        );
        let view = f.view();
        let previous: Vec<u8> = (0..w * h).map(|i| (i * 17 % 256) as u8).collect();
        let models = crate::paths::project_root().join("models");
        for name in [
            "band_student.onnx",
            "band_teacher.onnx",
            "band_netslim.onnx",
            "band_uniform.onnx",
            "band_teacher_single_frame.onnx",
        ] {
            let mut net = BandNet::load(&models.join(name), 1).unwrap();
            // Load chooses the faster engine by timing; both must give the same matte.
            assert!(net.use_own_kernel(), "{name}");
            let previous = net.is_temporal().then_some(previous.as_slice());
            let mut own = coarse.clone();
            let tiles = net.refine(&view, crop, &mut own, previous).unwrap();
            net.use_onnx_runtime();
            let mut ort = coarse.clone();
            assert_eq!(net.refine(&view, crop, &mut ort, previous).unwrap(), tiles);
            let worst = max_abs_diff(&own, &ort);
            assert!(worst < 1e-4, "{name}: the kernels differ by {worst}");
            let changed = own.iter().zip(&coarse).filter(|(a, c)| a != c).count();
            assert!(changed > 500, "{name} changed {changed} pixels");
            // Single tiles (the latency search's batch), on both engines.
            let mut batch = TileBatch::default();
            gather_tiles(&view, crop, &coarse, net.channels, previous, &mut batch);
            let mut by_ort = vec![0.0; batch.len() * block_output_len((1, 1))];
            net.run_tiles(&batch.input, batch.len(), &mut by_ort)
                .unwrap();
            assert!(net.use_own_kernel());
            let mut by_own = vec![1.0; by_ort.len()];
            net.run_tiles(&batch.input, batch.len(), &mut by_own)
                .unwrap();
            let worst = max_abs_diff(&by_own, &by_ort);
            assert!(worst < 1e-4, "{name}: single tiles differ by {worst}");
        }
    }
}
