//! Drawing helpers shared by the plots of `bench`, `eval` and the refinement curve
//! (plotters, bitmap backend): the font, the palette and the error conversion.

use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};
use plotters::style::{FontStyle, RGBColor};

/// Where DejaVu Sans is looked for (Debian/Ubuntu, Fedora, Arch).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers DejaVu Sans as plotters' "sans-serif" (once per process); false when no file
/// of [`FONT_PATHS`] could be read.
pub fn fonts_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        FONT_PATHS.iter().any(|p| {
            std::fs::read(p).is_ok_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
        })
    })
}

/// [`fonts_ready`], as an error that says what to install when it is not.
pub fn require_fonts() -> Result<()> {
    if !fonts_ready() {
        bail!("no DejaVuSans.ttf found (apt-get install fonts-dejavu-core)");
    }
    Ok(())
}

/// A plotters error as an `anyhow` error.
pub fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

/// The line and bar colours, in the order series take them (matplotlib's tab10, then black and
/// three light tab20 shades).
pub const COLORS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(174, 199, 232),
];
