//! Every command-line default that has a core default is that default (the core's `DEFAULT_*`
//! constants, which the elements ship too: `plugins/tests/defaults.rs`), and `eval` and `bench`
//! build the settings the elements run.

use clap::Parser;

use slimmatte::composite::{DEFAULT_BLUR_SIGMA, DEFAULT_COLOR, DEFAULT_ESTIMATE_FOREGROUND};
use slimmatte::matte::{DEFAULT_WORKING_SIZE, MatteSettings};
use slimmatte::refine::RefineSettings;
use slimmatte::runtime::DEFAULT_THREADS;

use crate::bench::BenchArgs;
use crate::eval::EvalArgs;
use crate::run::{HexColor, RunArgs};
use crate::soak::SoakArgs;

/// The subcommands as `slimmatte` parses them (`demo` takes `run`'s options).
#[derive(Debug, Parser)]
enum Cmd {
    Run(RunArgs),
    Eval(EvalArgs),
    Bench(BenchArgs),
    Soak(SoakArgs),
}

fn parse(sub: &str) -> Cmd {
    Cmd::try_parse_from(["slimmatte", sub]).unwrap()
}

#[test]
fn run_and_demo_defaults_are_the_cores() {
    let Cmd::Run(a) = parse("run") else {
        unreachable!()
    };
    assert_eq!(a.working_size, DEFAULT_WORKING_SIZE);
    assert_eq!(a.threads as usize, DEFAULT_THREADS);
    assert_eq!(a.blur_sigma as f32, DEFAULT_BLUR_SIGMA);
    assert_eq!(a.color, HexColor(DEFAULT_COLOR));
    assert_eq!(a.estimate_foreground, DEFAULT_ESTIMATE_FOREGROUND);
    assert_eq!(a.refine.settings(), RefineSettings::default());
    assert_eq!(a.pose, slimmatte::trimap::DEFAULT_POSE);
    assert_eq!(a.pose_interval, slimmatte::trimap::DEFAULT_POSE_INTERVAL);
}

#[test]
fn eval_and_bench_defaults_are_the_cores() {
    let Cmd::Eval(e) = parse("eval") else {
        unreachable!()
    };
    assert_eq!(e.working_size, DEFAULT_WORKING_SIZE);
    assert_eq!(e.threads, DEFAULT_THREADS);
    assert_eq!(e.refine.settings(), RefineSettings::default());
    assert_eq!(crate::eval::matte_settings(&e), MatteSettings::default());
    assert_eq!(e.pose, slimmatte::trimap::DEFAULT_POSE);
    assert_eq!(
        crate::eval::trimap_settings(&e),
        slimmatte::trimap::TrimapSettings::default()
    );
    let Cmd::Bench(b) = parse("bench") else {
        unreachable!()
    };
    assert_eq!(b.working_size, DEFAULT_WORKING_SIZE);
    assert_eq!(b.threads, DEFAULT_THREADS);
    assert_eq!(b.refine.settings(), RefineSettings::default());
    assert_eq!(b.estimate_foreground, DEFAULT_ESTIMATE_FOREGROUND);
    assert_eq!(b.pose, slimmatte::trimap::DEFAULT_POSE);
    assert_eq!(b.pose_interval, slimmatte::trimap::DEFAULT_POSE_INTERVAL);
    assert_eq!(crate::bench::matte_settings(&b), MatteSettings::default());
    assert!(matches!(parse("soak"), Cmd::Soak(_)));
}

#[test]
fn help_shows_the_core_defaults() {
    let help = <Cmd as clap::CommandFactory>::command()
        .find_subcommand_mut("run")
        .unwrap()
        .render_long_help()
        .to_string();
    for want in [
        format!("[default: {DEFAULT_WORKING_SIZE}]"),
        format!("[default: {DEFAULT_THREADS}]"),
        format!("[default: {DEFAULT_BLUR_SIGMA}]"),
        format!("[default: {:06x}]", DEFAULT_COLOR),
    ] {
        assert!(help.contains(&want), "{want} missing from:\n{help}");
    }
}

#[test]
fn hex_colours_parse_and_print() {
    assert_eq!("00b140".parse::<HexColor>(), Ok(HexColor(0x00_B1_40)));
    assert_eq!("#FF0000".parse::<HexColor>(), Ok(HexColor(0xFF_00_00)));
    assert!("b140".parse::<HexColor>().is_err());
    assert!("00g140".parse::<HexColor>().is_err());
    assert_eq!(HexColor(0x00_B1_40).to_string(), "00b140");
}
