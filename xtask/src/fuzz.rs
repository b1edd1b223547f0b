//! `cargo xtask fuzz [--time SECS] [TARGET]`: runs every cargo-fuzz target
//! found under `crates/*/fuzz` for a set time each (default 60 s), on the
//! stable toolchain with `RUSTC_BOOTSTRAP=1`.

use std::process::Command;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut secs = 60u64;
    let mut only: Option<&str> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => {
                secs = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--time takes seconds")?
            }
            t => only = Some(t),
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        crate::run(
            "cargo install cargo-fuzz",
            Command::new(&cargo).args(["install", "--locked", "cargo-fuzz"]),
        )?;
    }
    let root = crate::root();
    let mut ran = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("crates"))
        .map_err(|e| e.to_string())?
        .flatten()
        .collect();
    dirs.sort_by_key(|d| d.path());
    for krate in dirs {
        let fuzz = krate.path().join("fuzz");
        let Ok(targets) = std::fs::read_dir(fuzz.join("fuzz_targets")) else {
            continue;
        };
        let mut names: Vec<String> = targets
            .flatten()
            .filter_map(|t| {
                t.path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .collect();
        names.sort();
        for name in names {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            crate::run(
                &format!("fuzz {name} for {secs}s"),
                Command::new(&cargo)
                    .current_dir(&fuzz)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .args([
                        "fuzz",
                        "run",
                        &name,
                        "--",
                        &format!("-max_total_time={secs}"),
                    ]),
            )?;
            ran += 1;
        }
    }
    if ran == 0 {
        return Err("no fuzz target matched".into());
    }
    eprintln!("xtask fuzz: {ran} targets ran {secs}s each without a crash");
    Ok(())
}
