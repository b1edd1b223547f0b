//! `cargo xtask bench`: every criterion benchmark of the workspace, one
//! summary table, and a regression gate on ratios.
//!
//! Each benchmark group pairs the measured code with a reference measured in
//! the same run: a benchmark whose function name contains one of
//! [`REFERENCE_WORDS`] (`naive`, `bare`, `noop`, … `memcpy`; the earliest word
//! wins when a group has several) is the group's reference for every other
//! benchmark with the same parameter. Ratios (cost relative to
//! the reference) are what the gate compares, so a noisy or slower machine
//! does not fail it and a real regression does.
//!
//! - `--check`: fail when a ratio is worse than `benches/baseline.json` by
//!   more than the margin stored there (default 30%).
//! - `--save`: write the ratios of this run to `benches/baseline.json`.
//! - `e2e`: the end-to-end loopback comparison (see `benches/e2e`).
//! - any other word filters benchmarks by name, as criterion does.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Words that mark a reference benchmark, in order of preference when a
/// group has several (a naive implementation beats a memcpy as the yardstick).
const REFERENCE_WORDS: &[&str] = &[
    "naive",
    "bare",
    "noop",
    "hand_written",
    "std_fs",
    "ffmpeg",
    "ref",
    "memcpy",
];

#[derive(Debug, Clone)]
struct Measure {
    group: String,
    function: String,
    param: String,
    mean_ns: f64,
    throughput: Option<(String, f64)>,
}

impl Measure {
    fn id(&self) -> String {
        if self.param.is_empty() {
            format!("{}/{}", self.group, self.function)
        } else {
            format!("{}/{}/{}", self.group, self.function, self.param)
        }
    }
    fn is_reference(&self) -> bool {
        self.reference_rank().is_some()
    }
    fn reference_rank(&self) -> Option<usize> {
        let f = self.function.to_ascii_lowercase();
        REFERENCE_WORDS.iter().position(|w| f.contains(w))
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let check = args.iter().any(|a| a == "--check");
    let save = args.iter().any(|a| a == "--save");
    if args.iter().any(|a| a == "e2e") {
        return e2e(args);
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let root = crate::root();
    let crit = root.join("target/criterion");
    let _ = std::fs::remove_dir_all(&crit);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "bench",
        "--workspace",
        "--all-features",
        "--bench",
        "*",
        "--",
    ]);
    if let Some(f) = filter.first() {
        cmd.arg(f.as_str());
    }
    cmd.args(["--warm-up-time", "1", "--measurement-time", "3"]);
    crate::run("criterion benchmarks", &mut cmd)?;
    let measures = collect(&crit)?;
    if measures.is_empty() {
        return Err("no criterion results found under target/criterion".into());
    }
    let ratios = print_table(&measures);
    let baseline_path = root.join("benches/baseline.json");
    if save {
        // With a filter, only the measured ratios change; the rest of the
        // baseline stays.
        let mut map = if filter.is_empty() {
            Map::new()
        } else {
            read_json(baseline_path.clone())
                .and_then(|d| d.get("ratios").and_then(|r| r.as_object().cloned()))
                .unwrap_or_default()
        };
        for (k, v) in &ratios {
            map.insert(k.clone(), json!((v * 1000.0).round() / 1000.0));
        }
        let doc = json!({ "margin": 0.30, "ratios": map });
        std::fs::write(
            &baseline_path,
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n",
        )
        .map_err(|e| e.to_string())?;
        eprintln!(
            "saved {} ratios to {}",
            ratios.len(),
            baseline_path.display()
        );
    }
    if check {
        gate(&baseline_path, &ratios)?;
    }
    Ok(())
}

fn collect(dir: &Path) -> Result<Vec<Measure>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    if let Some(m) = read_measure(&p) {
                        out.push(m);
                    }
                } else if p.file_name().is_some_and(|n| n != "base" && n != "report") {
                    stack.push(p);
                }
            }
        }
    }
    out.sort_by_key(Measure::id);
    Ok(out)
}

fn read_json(p: PathBuf) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn read_measure(new_dir: &Path) -> Option<Measure> {
    let bench = read_json(new_dir.join("benchmark.json"))?;
    let est = read_json(new_dir.join("estimates.json"))?;
    // The median resists the outliers a shared machine produces better than the mean.
    let mean_ns = est.get("median")?.get("point_estimate")?.as_f64()?;
    let s = |k: &str| {
        bench
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let throughput = bench
        .get("throughput")
        .and_then(|t| t.as_object())
        .and_then(|t| {
            let (kind, v) = t.iter().next()?;
            Some((kind.clone(), v.as_f64()?))
        });
    Some(Measure {
        group: s("group_id"),
        function: s("function_id"),
        param: s("value_str"),
        mean_ns,
        throughput,
    })
}

fn human_rate(kind: &str, per_iter: f64, mean_ns: f64) -> String {
    let per_sec = per_iter / (mean_ns / 1e9);
    match kind {
        "Bytes" | "BytesDecimal" => format!("{:.2} GB/s", per_sec / 1e9),
        _ => format!("{:.2} M/s", per_sec / 1e6),
    }
}

fn print_table(ms: &[Measure]) -> BTreeMap<String, f64> {
    let mut refs: BTreeMap<(String, String), (usize, f64)> = BTreeMap::new();
    for m in ms {
        if let Some(rank) = m.reference_rank() {
            let e = refs
                .entry((m.group.clone(), m.param.clone()))
                .or_insert((rank, m.mean_ns));
            if rank < e.0 {
                *e = (rank, m.mean_ns);
            }
        }
    }
    let mut ratios = BTreeMap::new();
    println!(
        "\n{:<60} {:>12} {:>14} {:>10}",
        "benchmark", "median", "throughput", "vs ref"
    );
    println!("{}", "-".repeat(99));
    for m in ms {
        let rate = m
            .throughput
            .as_ref()
            .map(|(k, v)| human_rate(k, *v, m.mean_ns))
            .unwrap_or_default();
        let ratio = if m.is_reference() {
            "ref".to_owned()
        } else if let Some((_, r)) = refs.get(&(m.group.clone(), m.param.clone())) {
            let ratio = m.mean_ns / r;
            ratios.insert(m.id(), ratio);
            format!("{ratio:.2}x")
        } else {
            "-".to_owned()
        };
        println!(
            "{:<60} {:>12} {:>14} {:>10}",
            m.id(),
            fmt_ns(m.mean_ns),
            rate,
            ratio
        );
    }
    ratios
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn gate(baseline: &Path, ratios: &BTreeMap<String, f64>) -> Result<(), String> {
    let doc = read_json(baseline.to_path_buf()).ok_or_else(|| {
        format!(
            "{} missing: run `cargo xtask bench --save` first",
            baseline.display()
        )
    })?;
    let margin = doc.get("margin").and_then(Value::as_f64).unwrap_or(0.30);
    let base = doc
        .get("ratios")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut worse = Vec::new();
    for (id, b) in &base {
        let Some(b) = b.as_f64() else { continue };
        match ratios.get(id) {
            Some(r) if *r > b * (1.0 + margin) => {
                worse.push(format!("{id}: {r:.3}x vs baseline {b:.3}x"))
            }
            Some(_) => {}
            None => eprintln!("note: {id} is in the baseline but was not measured in this run"),
        }
    }
    if worse.is_empty() {
        println!(
            "\nbench gate: {} ratios within {:.0}% of the baseline",
            base.len(),
            margin * 100.0
        );
        Ok(())
    } else {
        Err(format!(
            "bench gate: {} regressions beyond {:.0}%:\n  {}",
            worse.len(),
            margin * 100.0,
            worse.join("\n  ")
        ))
    }
}

/// `cargo xtask bench e2e [--steps 100,500,1000] [--servers arcly,nginx]
/// [--flv|--no-flv] [--settle S] [--window S] [--rate R] [--workers W]`:
/// the end-to-end loopback comparison with nginx-rtmp. Everything after
/// `e2e` goes to `benches/e2e/run.sh` (see its header for the options).
fn e2e(args: &[String]) -> Result<(), String> {
    let script = crate::root().join("benches/e2e/run.sh");
    if !script.exists() {
        return Err("the end-to-end benchmark (benches/e2e/run.sh) is missing".into());
    }
    let rest = args
        .iter()
        .skip_while(|a| a.as_str() != "e2e")
        .skip(1)
        .cloned()
        .collect::<Vec<_>>();
    crate::run(
        "end-to-end benchmark",
        Command::new("bash").arg(script).args(rest),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("baseline.json");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn gate_passes_within_margin_and_fails_beyond_it() {
        let dir = std::env::temp_dir().join(format!("xtask-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = baseline(
            &dir,
            r#"{"margin": 0.3, "ratios": {"g/a": 1.0, "g/b": 2.0}}"#,
        );
        let mut ratios = BTreeMap::new();
        ratios.insert("g/a".to_owned(), 1.25);
        ratios.insert("g/b".to_owned(), 1.0);
        assert!(gate(&p, &ratios).is_ok());
        ratios.insert("g/a".to_owned(), 1.31);
        let err = gate(&p, &ratios).unwrap_err();
        assert!(err.contains("g/a: 1.310x vs baseline 1.000x"), "{err}");
        assert!(gate(&dir.join("missing.json"), &ratios).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_preferred_reference_wins() {
        let m = |f: &str, ns: f64| Measure {
            group: "g".into(),
            function: f.into(),
            param: String::new(),
            mean_ns: ns,
            throughput: None,
        };
        let ratios = print_table(&[
            m("memcpy_reference", 1.0),
            m("naive_loop", 10.0),
            m("fast", 5.0),
        ]);
        assert_eq!(ratios.get("g/fast"), Some(&0.5));
    }
}
