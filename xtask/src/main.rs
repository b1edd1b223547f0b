//! `cargo xtask <command>`: the project's automation, in Rust so it runs
//! wherever cargo does.
//!
//! - `test`: install or check the tools the tests drive, then rustfmt,
//!   clippy (warnings denied), every test and doctest of the workspace with
//!   all features, and `cargo deny` (licenses, bans, sources).
//! - `bench [--check|--save] [FILTER]`: every criterion benchmark, one summary
//!   table of ratios against the references measured in the same run, and the
//!   regression gate against `benches/baseline.json`.
//! - `fuzz [--time SECS] [TARGET]`: every cargo-fuzz target for a set time.
#![forbid(unsafe_code)]

mod bench;
mod fuzz;
mod tools;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("tools") => tools::ensure_all(),
        _ => {
            eprintln!("usage: cargo xtask <test [--quick] | bench [--check|--save] [e2e] [FILTER] | fuzz [--time SECS] [TARGET] | tools>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Run `cmd`, echoing it; an error names the failed step.
pub fn run(step: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("\n==> {step}: {cmd:?}");
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let started = std::time::Instant::now();
    tools::ensure_all()?;
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "tests",
        cargo().args(["test", "--workspace", "--all-features", "--no-fail-fast"]),
    )?;
    if !quick {
        // Advisories need a database this machine cannot fetch: only the
        // offline checks run here.
        run(
            "cargo deny",
            cargo().args(["deny", "--offline", "check", "licenses", "bans", "sources"]),
        )?;
    }
    eprintln!(
        "\nxtask test: all steps passed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}
