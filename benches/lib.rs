//! Workspace-level benchmarks; the code is in `benches/`. Run them with
//! `cargo xtask bench`.
#![forbid(unsafe_code)]
