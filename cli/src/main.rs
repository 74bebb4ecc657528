//! `slimmatte`: real-time video matting from the command line.

use clap::{Parser, Subcommand};

use slimmatte_cli as cli;

#[derive(Debug, Parser)]
#[command(
    name = "slimmatte",
    version,
    about = "Real-time video matting and background replacement"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replace the background of a video file, a camera or the built-in clip; write a file,
    /// show a window or feed a virtual camera.
    Run(cli::run::RunArgs),
    /// The main job on its defaults: the built-in clip (a moving shot of a person) with an
    /// image background, written to out/demo.mp4 (same options as `run`).
    Demo(cli::run::RunArgs),
    /// Push many frames through the full chain; check frames in = frames out and flat memory.
    Soak(cli::soak::SoakArgs),
    /// Frame-latency benchmark per stage and end to end (GStreamer pipeline and bare model
    /// calls) against Robust Video Matting and the coarse mask; JSON, Markdown and PNG plots.
    Bench(cli::bench::BenchArgs),
    /// Matte quality (SAD, MSE, Grad, Conn, dtSSD) on synthetic data and image folders,
    /// against the same peers; per-image CSV and a summary table.
    Eval(cli::eval::EvalArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) | Command::Demo(args) => cli::run::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Soak(args) => cli::soak::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
