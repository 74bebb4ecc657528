//! The `--refine*` options shared by `run`, `demo`, `eval` and `bench`: the same knobs as the
//! `slimmatte` element's `refine*` properties, with the same defaults (the core's constants).

use clap::{Args, ValueEnum};
use gst::glib;
use gst::prelude::*;

use slimmatte::refine::{
    DEFAULT_REFINE_COARSE_ITERATIONS, DEFAULT_REFINE_EPSILON, DEFAULT_REFINE_ITERATIONS,
    DEFAULT_REFINE_LAMBDA, DEFAULT_REFINE_LEVELS, DEFAULT_REFINE_RADIUS, DEFAULT_REFINE_SIZE,
    DEFAULT_REFINE_TRUST, MAX_REFINE_EPSILON, MAX_REFINE_LEVELS, MAX_REFINE_RADIUS,
    MAX_REFINE_TRUST, MIN_REFINE_EPSILON, RefineMethod, RefineSettings,
};

/// Which refinement runs after the matting network: the clap mirror of the core's
/// [`RefineMethod`], converted only by the two `From` impls below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RefineArg {
    /// The network's matte as it is.
    None,
    /// Closed-form matting (matting Laplacian) warm-started from the network.
    Laplacian,
}

impl From<RefineArg> for RefineMethod {
    fn from(r: RefineArg) -> Self {
        match r {
            RefineArg::None => Self::None,
            RefineArg::Laplacian => Self::Laplacian,
        }
    }
}

impl From<RefineMethod> for RefineArg {
    fn from(m: RefineMethod) -> Self {
        match m {
            RefineMethod::None => Self::None,
            RefineMethod::Laplacian => Self::Laplacian,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RefineArgs {
    /// Refinement of the network's matte inside the unknown band.
    #[arg(long, value_enum, default_value_t = RefineArg::from(RefineSettings::default().method))]
    pub refine: RefineArg,
    /// Conjugate-gradient iterations of the refinement at the finest level it solves (full
    /// resolution for crops up to --refine-size, else the first level within it).
    #[arg(long, default_value_t = DEFAULT_REFINE_ITERATIONS)]
    pub refine_iterations: u32,
    /// Conjugate-gradient iterations of the pyramid level below the finest (each level further
    /// down runs twice as many, none fewer than twice --refine-iterations).
    #[arg(long, default_value_t = DEFAULT_REFINE_COARSE_ITERATIONS)]
    pub refine_coarse_iterations: u32,
    /// Window radius of the refinement at full resolution.
    #[arg(long, default_value_t = DEFAULT_REFINE_RADIUS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_REFINE_RADIUS as i64))]
    pub refine_radius: u32,
    /// Weight of the term keeping the refined matte near the network's (0 = warm start only).
    #[arg(long, default_value_t = DEFAULT_REFINE_LAMBDA)]
    pub refine_lambda: f32,
    /// Pyramid levels of the refinement (1 = full resolution only).
    #[arg(long, default_value_t = DEFAULT_REFINE_LEVELS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_REFINE_LEVELS as i64))]
    pub refine_levels: u32,
    /// Longest side of the finest level the refinement solves (larger crops are solved at a
    /// coarser pyramid level and upsampled); 0 = always full resolution.
    #[arg(long, default_value_t = DEFAULT_REFINE_SIZE)]
    pub refine_size: u32,
    /// Regularisation ε of the refinement's colour model (colours in 0…1): 1e-7 is closed-form
    /// matting's (the quality preset), larger is smoother.
    #[arg(long, default_value_t = DEFAULT_REFINE_EPSILON, value_parser = parse_epsilon)]
    pub refine_epsilon: f32,
    /// Weight of the network's alpha in the refinement where the network is sure of it
    /// (scaled by (2α − 1)²: full at 0 or 1, none at 0.5); 0 = the network is only the
    /// starting point.
    #[arg(long, default_value_t = DEFAULT_REFINE_TRUST, value_parser = parse_trust)]
    pub refine_trust: f32,
    /// Run the band net (the pruned student that makes the full-resolution matte from the
    /// refinement's coarse one); false = the classical pipeline.
    #[arg(long, default_value_t = slimmatte::matte::DEFAULT_BAND_NET, action = clap::ArgAction::Set)]
    pub band_net: bool,
    /// The band net's ONNX model (default: the shipped band student).
    #[arg(long)]
    pub band_model: Option<std::path::PathBuf>,
    /// Feed the previous frame's matte to temporal nets (the band student and the temporal crop
    /// net); false = they never get history (the element's `temporal`).
    #[arg(long, default_value_t = slimmatte::matte::DEFAULT_TEMPORAL, action = clap::ArgAction::Set)]
    pub temporal: bool,
}

fn parse_trust(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=MAX_REFINE_TRUST).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0 … {MAX_REFINE_TRUST}"))
    }
}

fn parse_epsilon(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if (MIN_REFINE_EPSILON..=MAX_REFINE_EPSILON).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is outside {MIN_REFINE_EPSILON:e} … {MAX_REFINE_EPSILON}"
        ))
    }
}

impl RefineArgs {
    /// The matting stage's settings for `working_size` with this refinement and the element's
    /// other defaults: what `eval` and `bench` run.
    pub fn matte_settings(&self, working_size: u32) -> slimmatte::matte::MatteSettings {
        slimmatte::matte::MatteSettings {
            working_size,
            refine: self.settings(),
            band_net: self.band_net,
            temporal: self.temporal,
            ..slimmatte::matte::MatteSettings::default()
        }
    }

    /// The band net's model file: `--band-model`, else the shipped one.
    pub fn band_model_path(&self) -> std::path::PathBuf {
        self.band_model
            .clone()
            .unwrap_or_else(slimmatte::paths::default_band_model)
    }

    /// Loads the band net into `refiner` when `--band-net` is on (a missing or mismatched model
    /// is an error naming the file).
    pub fn load_band_net(
        &self,
        refiner: &mut slimmatte::matte::MatteRefiner,
        threads: usize,
    ) -> anyhow::Result<()> {
        if self.band_net {
            let net = slimmatte::band_net::BandNet::load(&self.band_model_path(), threads)?;
            refiner.set_band_net(Some(net));
        }
        Ok(())
    }

    /// The refinement these options ask for.
    pub fn settings(&self) -> RefineSettings {
        RefineSettings {
            method: self.refine.into(),
            iterations: self.refine_iterations,
            coarse_iterations: self.refine_coarse_iterations,
            radius: self.refine_radius,
            lambda: self.refine_lambda.max(0.0),
            levels: self.refine_levels,
            epsilon: self.refine_epsilon,
            size: self.refine_size,
            trust: self.refine_trust,
        }
    }

    /// The `slimmatte` element properties for a gst-launch description: the values of
    /// [`settings`](Self::settings).
    pub fn element_props(&self) -> String {
        let s = self.settings();
        format!(
            "refine={} refine-iterations={} refine-coarse-iterations={} refine-radius={} \
             refine-lambda={} refine-levels={} refine-size={} refine-epsilon={:e} refine-trust={} \
             band-net={} temporal={}{}",
            element_nick(s.method),
            s.iterations,
            s.coarse_iterations,
            s.radius,
            s.lambda,
            s.levels,
            s.size,
            s.epsilon,
            s.trust,
            self.band_net,
            self.temporal,
            self.band_model
                .as_ref()
                .map(|p| format!(" band-model=\"{}\"", p.display()))
                .unwrap_or_default()
        )
    }
}

/// The `slimmatte` element's nick for `method`: the nick of its `refine` property's value.
fn element_nick(method: RefineMethod) -> &'static str {
    let value = gstslimmatte::SlimMatteRefine::from(method).to_value();
    let (_, v) = glib::EnumValue::from_value(&value).expect("SlimMatteRefine is a GLib enum");
    v.nick()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_props_name_the_elements_values() {
        assert_eq!(element_nick(RefineMethod::None), "none");
        assert_eq!(element_nick(RefineMethod::Laplacian), "laplacian");
        for m in [RefineMethod::None, RefineMethod::Laplacian] {
            assert_eq!(RefineMethod::from(RefineArg::from(m)), m);
        }
    }
}
