//! Strided RGBA frames as ndarray views, without copying.
//!
//! A frame is an `(height, width, 4)` view whose rows may be padded (`stride ≥ width·4`), as
//! GStreamer lays out video. Rows are contiguous, so the hot loops work on row slices.

use anyhow::{Result, ensure};
use ndarray::{ArrayView3, ArrayViewMut3, Axis, ShapeBuilder};

/// A read-only RGBA frame, shape `(height, width, 4)`.
pub type RgbaView<'a> = ArrayView3<'a, u8>;
/// A writable RGBA frame, shape `(height, width, 4)`.
pub type RgbaViewMut<'a> = ArrayViewMut3<'a, u8>;

fn check(len: usize, width: usize, height: usize, stride: usize) -> Result<()> {
    ensure!(width > 0 && height > 0, "empty frame {width}×{height}");
    ensure!(
        stride >= width * 4,
        "row stride {stride} is shorter than {width} RGBA pixels"
    );
    let needed = stride * (height - 1) + width * 4;
    ensure!(
        len >= needed,
        "frame buffer has {len} bytes, {width}×{height} RGBA with stride {stride} needs {needed}"
    );
    Ok(())
}

/// Views `data` as a `width`×`height` RGBA frame with `stride` bytes per row.
pub fn rgba_view(data: &[u8], width: usize, height: usize, stride: usize) -> Result<RgbaView<'_>> {
    check(data.len(), width, height, stride)?;
    Ok(ArrayView3::from_shape(
        (height, width, 4).strides((stride, 4, 1)),
        data,
    )?)
}

/// Views `data` as a writable `width`×`height` RGBA frame with `stride` bytes per row.
pub fn rgba_view_mut(
    data: &mut [u8],
    width: usize,
    height: usize,
    stride: usize,
) -> Result<RgbaViewMut<'_>> {
    check(data.len(), width, height, stride)?;
    Ok(ArrayViewMut3::from_shape(
        (height, width, 4).strides((stride, 4, 1)),
        data,
    )?)
}

/// Calls `f(y, row)` for every row of the frame, `row` being `width·4` contiguous bytes.
pub fn for_each_row(frame: &RgbaView<'_>, mut f: impl FnMut(usize, &[u8])) {
    for (y, row) in frame.axis_iter(Axis(0)).enumerate() {
        f(y, row.to_slice().expect("RGBA rows are contiguous"));
    }
}

/// Calls `f(y, row)` for every row of the frame, `row` being `width·4` contiguous bytes.
pub fn for_each_row_mut(frame: &mut RgbaViewMut<'_>, mut f: impl FnMut(usize, &mut [u8])) {
    for (y, row) in frame.axis_iter_mut(Axis(0)).enumerate() {
        f(y, row.into_slice().expect("RGBA rows are contiguous"));
    }
}

/// Frame width and height in pixels.
pub fn size(frame: &RgbaView<'_>) -> (usize, usize) {
    (frame.shape()[1], frame.shape()[0])
}

/// Writes a packed `width×height` plane into the alpha channel.
pub fn write_alpha(frame: &mut RgbaViewMut<'_>, alpha: &[u8]) {
    let width = frame.shape()[1];
    for_each_row_mut(frame, |y, row| {
        let src = &alpha[y * width..(y + 1) * width];
        for (px, &a) in row.chunks_exact_mut(4).zip(src) {
            px[3] = a;
        }
    });
}

/// Debug view of a matte: RGB = alpha (grey), alpha = 255.
pub fn alpha_as_grey(frame: &mut RgbaViewMut<'_>) {
    for_each_row_mut(frame, |_, row| {
        for px in row.chunks_exact_mut(4) {
            let a = px[3];
            px.copy_from_slice(&[a, a, a, 255]);
        }
    });
}
