//! `cargo xtask <task>`: the project's automation, in Rust so that it runs wherever cargo
//! does. Reached through the alias in `.cargo/config.toml`.
//!
//! Tasks:
//! - `ci`: `cargo fmt --check`, clippy with warnings denied, the tests (cargo-nextest when it
//!   is installed, `cargo test` otherwise, plus the doc tests), and the docs with warnings
//!   denied, then the dhat heap tests and the loom models. Exactly what `.ci/run` runs.
//! - `dhat`: the heap tests of store-cache, one test binary each (dhat allows one profiler
//!   per process), built with the `dhat-heap` feature that installs dhat's allocator.
//! - `loom`: the loom models of store-concurrent, built with `--cfg textstore_loom` in
//!   release with debug assertions, `LOOM_MAX_PREEMPTIONS=2`, in their own target directory
//!   (the cfg changes every crate's build, so sharing `target/` would rebuild it each time).
//! - `torture [--cycles N] [--seed S] [--max-kill-delay-ms MS]`: the crash harness of
//!   store-torture in release: N times (1000 by default) a child process writing to a store
//!   is killed with SIGKILL, and the store is reopened and checked against every
//!   acknowledged write.

use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("loom") => loom(),
        Some("dhat") => dhat(),
        Some("torture") => torture(&args[1..]),
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
  dhat  the heap-allocation tests of store-cache
  loom  the loom models of store-concurrent
  torture [--cycles N] [--seed S] [--max-kill-delay-ms MS]
        kill a writing process N times (default 1000) and check every acknowledged write";

/// Optional features that CI builds and tests: light ones, unlike the peer engines of the
/// benchmarks.
const OPTIONAL_FEATURES: &str = "store-metrics/metrics";

/// What clippy also checks: the optional features and the dhat heap tests, which run in
/// their own step.
const LINTED_FEATURES: &str =
    "store-metrics/metrics,store-cache/dhat-heap,store-mmap/fault-injection";

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            LINTED_FEATURES,
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

fn dhat() -> Result<(), String> {
    cargo(
        &[
            "test",
            "--package",
            "store-cache",
            "--features",
            "dhat-heap",
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
