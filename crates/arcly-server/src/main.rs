//! The `arcly` binary: flags and an optional TOML file in, a running server
//! out. Exit status: 0 after a clean stop, 2 for a refused setting, 1 when
//! start-up failed (a listener, the recording directory).
//!
//! `arcly token --stream cam --action publish` prints a signed token (and
//! ready URLs) instead of running the server; exit status 2 when none can
//! be issued.
#![forbid(unsafe_code)]

use arcly_server::config::{Cli, Command, Settings};
use arcly_server::server::{Server, StartError};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("arcly: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Token(args)) = &cli.command {
        return match arcly_server::token::run(&settings, args) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("arcly token: {e}");
                ExitCode::from(2)
            }
        };
    }
    arcly_server::logging::init(&settings.log_level, settings.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("arcly: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        match Server::start(settings).await {
            Ok(server) => {
                // SIGHUP and POST /api/reload re-read the file under the same flags.
                server
                    .reloader()
                    .set_source(move || Settings::resolve(&cli));
                print!("{}", server.banner());
                use std::io::Write;
                let _ = std::io::stdout().flush();
                server.run_until_signal().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("arcly: {e}");
                ExitCode::from(match e {
                    StartError::Config(_) => 2,
                    _ => 1,
                })
            }
        }
    })
}
