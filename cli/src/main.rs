//! `shmframe`: the command-line front end of the engine (see `shmframe --help`).
//!
//! Fork rule: the engine forks its workers and refuses to when the process has more than one
//! thread, so every command that builds an [`shmframe::Engine`] does so before anything could
//! start a thread (no rayon pool, no progress-bar ticker, no tracing appender thread). `gen`
//! uses rayon and builds no engine; `demo` generates its dataset in a child process.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod errors;
mod output;
mod rng;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use shmframe::SegmentDir;

use crate::cli::{Cli, Command, GenCommand};

fn main() -> ExitCode {
    if let Some(code) = shmframe::spawned_worker_main(&shmframe::KernelRegistry::new()) {
        std::process::exit(code)
    }
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors exit with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(cli.verbose);
    // Everything the command owns (engine, segments) is dropped inside `dispatch`, before the
    // process exits, so owned segments are unlinked and workers stopped.
    match dispatch(cli, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = errors::exit_code(&e);
            eprintln!("shmframe: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code)
        }
    }
}

/// A synchronous stderr subscriber: it starts no thread, so forking afterwards is allowed.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn dispatch(cli: Cli, started: Instant) -> anyhow::Result<()> {
    let dir = match cli.segment_dir {
        Some(p) => SegmentDir::from_path(p),
        None => SegmentDir::from_env(),
    };
    match cli.command {
        Command::Gen(GenCommand::Matrix(a)) => commands::generate::run(&a),
        Command::Run(a) => commands::run::run(&a, &dir, started),
        Command::Load(a) => commands::load::run(&a, &dir),
        Command::Ls => commands::segments::ls(&dir),
        Command::Rm { names } => commands::segments::rm(&names, &dir),
        Command::Gc => commands::segments::gc(&dir),
        Command::Demo(a) => commands::demo::run(&a, &dir),
        #[cfg(feature = "image")]
        Command::Resize(a) => commands::resize::run(&a, &dir, started),
    }
}
