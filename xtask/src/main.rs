//! `cargo xtask <task>`: the project's automation, in Rust so that it runs wherever cargo
//! does. Reached through the alias in `.cargo/config.toml`.
//!
//! Tasks:
//! - `ci`: `cargo fmt --check`, the layers' dependencies (`cargo tree`: no layer links what
//!   it merely wraps), clippy with warnings denied, the tests (cargo-nextest when it is
//!   installed, `cargo test` otherwise, plus the doc tests and the façade with no feature),
//!   and the docs with warnings denied, then the dhat heap tests and the loom models.
//!   Exactly what `.ci/run` runs.
//! - `dhat`: the heap tests of store-cache and store-mmap, one test binary each (dhat allows one profiler
//!   per process), built with the `dhat-heap` feature that installs dhat's allocator.
//! - `loom`: the loom models of store-concurrent, built with `--cfg textstore_loom` in
//!   release with debug assertions, `LOOM_MAX_PREEMPTIONS=2`, in their own target directory
//!   (the cfg changes every crate's build, so sharing `target/` would rebuild it each time).
//! - `torture [--cycles N] [--seed S] [--max-kill-delay-ms MS]`: the crash harness of
//!   store-torture in release: N times (1000 by default) a child process writing to a store
//!   is killed with SIGKILL, and the store is reopened and checked against every
//!   acknowledged write.
//! - `bench [--no-peers] [--corpus DIR|FILE.jsonl] [--docs N] [--json] [--criterion]`: the
//!   workload runner of store-bench (`textstore-bench`) built in release, with the `peers`
//!   feature, measuring textstore beside LMDB, redb, fjall, SQLite, one file per document and
//!   an in-memory HashMap, over two corpora (the synthetic one and the Rust documentation's
//!   HTML) unless `--corpus` names another; `--no-peers` builds and measures without the
//!   peers. The reports go to `target/textstore-bench/<corpus>/` (Markdown, JSON, SVG).
//!   `--criterion` runs every criterion suite of the workspace instead
//!   (`cargo bench --workspace`).
//! - `fuzz [--seconds S] [TARGET...]`: each cargo-fuzz target of `fuzz/` (all by default)
//!   for S seconds (60 by default), installing cargo-fuzz first when it is missing. The
//!   committed corpus `fuzz/corpus/<target>` seeds each run and is not written to; new
//!   inputs go to `target/fuzz-corpus/<target>`, crashes to `fuzz/artifacts/<target>`.
//!   cargo-fuzz needs unstable compiler flags, which `RUSTC_BOOTSTRAP=1` allows on the
//!   stable toolchain.

mod checks;

use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("loom") => loom(),
        Some("dhat") => dhat(),
        Some("torture") => torture(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some(other) => Err(format!("unknown task {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci    fmt check, clippy (warnings denied), tests, docs (warnings denied), dhat, loom
  dhat  the heap-allocation tests of store-cache and store-mmap
  loom  the loom models of store-concurrent
  torture [--cycles N] [--seed S] [--max-kill-delay-ms MS]
        kill a writing process N times (default 1000) and check every acknowledged write
  fuzz [--seconds S] [TARGET...]
        run each cargo-fuzz target (all by default) for S seconds (default 60)
  bench [--no-peers] [--corpus DIR|FILE.jsonl] [--docs N] [--json] [--criterion]
        measure textstore against its peers and the machine's limits (release build) over
        the synthetic corpus and the Rust docs' HTML; reports in target/textstore-bench/;
        --criterion runs the criterion suites instead";

/// Optional features that CI builds and tests: light ones, unlike the peer engines of the
/// benchmarks.
const OPTIONAL_FEATURES: &str = "store-metrics/metrics,store-mmap/fault-injection,textstore/async,textstore/cache,textstore/metrics,textstore/serde";

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"], &[])?;
    checks::layer_dependencies()?;
    checks::module_graphs(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))?;
    // Clippy also checks the dhat heap tests, which run in their own step.
    let linted = format!("{OPTIONAL_FEATURES},{DHAT_FEATURES}");
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            &linted,
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    if has_nextest() {
        cargo(
            &[
                "nextest",
                "run",
                "--workspace",
                "--features",
                OPTIONAL_FEATURES,
                "--no-fail-fast",
            ],
            &[],
        )?;
    } else {
        cargo(
            &[
                "test",
                "--workspace",
                "--features",
                OPTIONAL_FEATURES,
                "--lib",
                "--bins",
                "--tests",
            ],
            &[],
        )?;
    }
    cargo(&["test", "--workspace", "--doc"], &[])?;
    // The façade with no feature on: the plain concurrent handle.
    cargo(&["test", "--package", "textstore", "--tests"], &[])?;
    cargo(
        &[
            "doc",
            "--workspace",
            "--no-deps",
            "--features",
            OPTIONAL_FEATURES,
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    dhat()?;
    loom()?;
    eprintln!("xtask: ci passed");
    Ok(())
}

/// The features that build the dhat heap tests.
const DHAT_FEATURES: &str = "store-cache/dhat-heap,store-mmap/dhat-heap";

fn dhat() -> Result<(), String> {
    cargo(
        &[
            "test",
            "--package",
            "store-cache",
            "--package",
            "store-mmap",
            "--features",
            DHAT_FEATURES,
            "--test",
            "dhat_*",
        ],
        &[],
    )
}

fn loom() -> Result<(), String> {
    cargo(
        &[
            "test",
            "--package",
            "store-concurrent",
            "--lib",
            "--release",
            "--target-dir",
            "target/loom",
            "--",
            "loom_models",
        ],
        &[
            ("RUSTFLAGS", "--cfg textstore_loom"),
            ("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "true"),
            ("LOOM_MAX_PREEMPTIONS", "2"),
        ],
    )
}

fn torture(args: &[String]) -> Result<(), String> {
    let mut command = vec![
        "run",
        "--release",
        "--package",
        "store-torture",
        "--bin",
        "textstore-torture",
        "--",
        "run",
    ];
    command.extend(args.iter().map(String::as_str));
    cargo(&command, &[])
}

fn bench(args: &[String]) -> Result<(), String> {
    cargo(&bench_command(args)?, &[])
}

/// The cargo command `bench` runs for `args`: every criterion suite under `--criterion`
/// (alone), otherwise the workload runner in release, with the peers unless `--no-peers`,
/// given `args`.
fn bench_command(args: &[String]) -> Result<Vec<&str>, String> {
    if args.iter().any(|arg| arg == "--criterion") {
        if let Some(other) = args.iter().find(|arg| *arg != "--criterion") {
            return Err(format!(
                "--criterion runs every suite and takes no other flag, not {other:?}"
            ));
        }
        return Ok(vec!["bench", "--workspace"]);
    }
    let mut command = vec![
        "run",
        "--release",
        "--package",
        "store-bench",
        "--bin",
        "textstore-bench",
    ];
    if !args.iter().any(|arg| arg == "--no-peers") {
        command.extend(["--features", "peers"]);
    }
    command.push("--");
    command.extend(args.iter().map(String::as_str));
    Ok(command)
}

/// The targets of `fuzz/Cargo.toml`, in the order `fuzz` runs them.
const FUZZ_TARGETS: [&str; 7] = [
    "decode_record",
    "decode_segment_header",
    "decode_meta",
    "decode_index",
    "parse_id",
    "resolve_range",
    "open_store",
];

/// The cargo-fuzz release `fuzz` installs when none is present.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

fn fuzz(args: &[String]) -> Result<(), String> {
    let (seconds, targets) = fuzz_plan(args)?;
    let installed = Command::new(cargo_bin())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        cargo(
            &[
                "install",
                "cargo-fuzz",
                "--locked",
                "--version",
                CARGO_FUZZ_VERSION,
            ],
            &[],
        )?;
    }
    let max_time = format!("-max_total_time={seconds}");
    for target in targets {
        let scratch = format!("target/fuzz-corpus/{target}");
        let committed = format!("fuzz/corpus/{target}");
        std::fs::create_dir_all(&scratch).map_err(|err| format!("create {scratch}: {err}"))?;
        cargo(
            &["fuzz", "run", target, &scratch, &committed, "--", &max_time],
            &[("RUSTC_BOOTSTRAP", "1")],
        )?;
    }
    Ok(())
}

/// The seconds each target runs and the targets, from `fuzz`'s `args`: 60 and every target
/// unless they say otherwise.
fn fuzz_plan(args: &[String]) -> Result<(u64, Vec<&str>), String> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--seconds" {
            let value = rest.next().ok_or("--seconds needs a number")?;
            seconds = value
                .parse()
                .map_err(|_| format!("--seconds {value:?} is not a whole number of seconds"))?;
        } else if FUZZ_TARGETS.contains(&arg.as_str()) {
            targets.push(arg.as_str());
        } else {
            return Err(format!(
                "{arg:?} is neither --seconds nor a fuzz target ({})",
                FUZZ_TARGETS.join(", ")
            ));
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    Ok((seconds, targets))
}

fn has_nextest() -> bool {
    Command::new(cargo_bin())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs one cargo command, echoing it, and fails with its name if it fails.
fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown = format!("cargo {}", args.join(" "));
    eprintln!("xtask: $ {shown}");
    let started = Instant::now();
    let status = Command::new(cargo_bin())
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    eprintln!(
        "xtask: `{shown}` took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bench_runs_the_runner_with_the_peers_unless_told_otherwise() {
        let cases: &[(&[&str], Result<&str, &str>)] = &[
            (
                &[],
                Ok("run --release --package store-bench --bin textstore-bench --features peers --"),
            ),
            (
                &["--docs", "500", "--json"],
                Ok(
                    "run --release --package store-bench --bin textstore-bench --features peers -- --docs 500 --json",
                ),
            ),
            (
                &["--no-peers"],
                Ok("run --release --package store-bench --bin textstore-bench -- --no-peers"),
            ),
            (&["--criterion"], Ok("bench --workspace")),
            (
                &["--criterion", "--json"],
                Err("--criterion runs every suite and takes no other flag, not \"--json\""),
            ),
        ];
        for (given, expected) in cases {
            let command = bench_command(&args(given)).map(|command| command.join(" "));
            assert_eq!(
                command.as_deref().map_err(String::as_str),
                *expected,
                "{given:?}"
            );
        }
    }

    /// A cargo command that fails is an error that names it.
    #[test]
    fn a_failed_cargo_command_fails_the_task_by_name() {
        assert_eq!(cargo(&["--version"], &[]), Ok(()));
        let err = cargo(&["no-such-command"], &[]).unwrap_err();
        assert!(err.starts_with("`cargo no-such-command` failed"), "{err}");
    }

    #[test]
    fn fuzz_runs_every_target_for_a_minute_unless_told_otherwise() {
        assert_eq!(fuzz_plan(&[]), Ok((60, FUZZ_TARGETS.to_vec())));
        assert_eq!(
            fuzz_plan(&args(&["decode_meta", "--seconds", "5", "parse_id"])),
            Ok((5, vec!["decode_meta", "parse_id"]))
        );
        let refusals: &[(&[&str], &str)] = &[
            (&["--seconds"], "--seconds needs a number"),
            (
                &["--seconds", "1.5"],
                "--seconds \"1.5\" is not a whole number of seconds",
            ),
            (
                &["decode"],
                "\"decode\" is neither --seconds nor a fuzz target (decode_record,",
            ),
        ];
        for (given, message) in refusals {
            let err = fuzz_plan(&args(given)).unwrap_err();
            assert!(err.starts_with(message), "{given:?}: {err}");
        }
    }
}
