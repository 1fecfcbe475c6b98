//! Developer commands for the carevox workspace, run as `cargo xtask <command>`.
//!
//! - `cargo xtask test`: every test the project has, one suite after another,
//!   then a summary with the totals.
//! - `cargo xtask tour [ARGS]`: the main job, the example program that walks a
//!   patient call through every safeguard.

// A command-line tool: it reports on the terminal and exits with a status.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test          run every test suite of the project and print a summary
  tour [ARGS]   run the main job, the tour of the composed crates
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    match args.next().as_deref() {
        Some("test") => test(),
        Some("tour") => tour(args.collect()),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The root of the workspace (the parent of this crate's directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// One suite of `cargo xtask test`: a name and the cargo arguments that run it.
struct Suite {
    name: &'static str,
    cargo_args: &'static [&'static str],
}

/// Every test suite of the project, in the order they run. Binding tests
/// (Kotlin, Python) and interop tests against real peers join this list as
/// they are built.
const SUITES: &[Suite] = &[
    // The benchmark crate has no tests of its own, and building its library
    // for tests would compile every comparison peer a second time; clippy
    // checks its benchmarks.
    Suite {
        name: "workspace",
        cargo_args: &[
            "test",
            "--workspace",
            "--exclude",
            "carevox-benches",
            "--locked",
        ],
    },
    Suite {
        name: "fuzz corpus replay",
        cargo_args: &[
            "test",
            "--locked",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--no-default-features",
        ],
    },
];

/// Test counts, summed over the `test result:` lines libtest prints.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    /// Parses a libtest line such as
    /// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    fn parse(line: &str) -> Option<Counts> {
        let rest = line.trim().strip_prefix("test result: ")?;
        let (_, rest) = rest.split_once(". ")?;
        let mut counts = Counts::default();
        for part in rest.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.ignored += n,
                _ => {}
            }
        }
        Some(counts)
    }
}

struct Outcome {
    name: &'static str,
    ok: bool,
    counts: Counts,
    took: Duration,
}

fn test() -> ExitCode {
    // The differential tests and benchmarks link C peers (libsrtp2,
    // Sofia-SIP) from Debian packages: install whichever are missing.
    let deps = Command::new("bash")
        .arg(".ci/install-deps")
        .current_dir(root())
        .status();
    match deps {
        Ok(status) if status.success() => {}
        Ok(_) => {
            eprintln!("xtask: the system packages in .ci/apt-packages are missing");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("xtask: cannot run .ci/install-deps: {e}");
            return ExitCode::FAILURE;
        }
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut outcomes = Vec::new();
    for suite in SUITES {
        println!("\n=== {} ===", suite.name);
        let started = Instant::now();
        let (ok, counts) = run_counting(&cargo, suite.cargo_args);
        outcomes.push(Outcome {
            name: suite.name,
            ok,
            counts,
            took: started.elapsed(),
        });
    }

    let mut total = Counts::default();
    println!("\n=== summary ===");
    for outcome in &outcomes {
        total.add(outcome.counts);
        println!(
            "{:<22} {:<6} {:>5} passed {:>4} failed {:>4} ignored {:>8.1} s",
            outcome.name,
            if outcome.ok { "ok" } else { "FAILED" },
            outcome.counts.passed,
            outcome.counts.failed,
            outcome.counts.ignored,
            outcome.took.as_secs_f64(),
        );
    }
    println!(
        "tests: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.ignored
    );
    if outcomes.iter().all(|o| o.ok) && total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs cargo with `args` in the workspace root, echoing its standard output
/// while summing the libtest result lines in it. Standard error passes
/// through untouched.
fn run_counting(cargo: &str, args: &[&str]) -> (bool, Counts) {
    let child = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("xtask: cannot start `{cargo}`: {e}");
            return (false, Counts::default());
        }
    };
    let mut counts = Counts::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if let Some(found) = Counts::parse(&line) {
                counts.add(found);
            }
        }
    }
    let ok = child.wait().map(|status| status.success()).unwrap_or(false);
    (ok, counts)
}

/// The package of the tour, and where it lives once it is built.
const TOUR_PACKAGE: &str = "carevox-tour";
const TOUR_DIR: &str = "examples/tour";

fn tour(args: Vec<String>) -> ExitCode {
    if !root().join(TOUR_DIR).join("Cargo.toml").is_file() {
        eprintln!(
            "The tour ({TOUR_DIR}) is not built yet. It composes carevox-sip, carevox-srtp, \
             carevox-vault, carevox-audit and carevox-authz into one patient call, and \
             comes once those crates exist; README.md lists what each crate has today. \
             `cargo xtask test` runs every test there is."
        );
        return ExitCode::from(2);
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            TOUR_PACKAGE,
            "--",
        ])
        .args(&args)
        .current_dir(root())
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot start cargo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counts;

    #[test]
    fn parses_libtest_result_lines() {
        let c = Counts::parse(
            "test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s",
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (12, 0, 3));

        let c = Counts::parse("test result: FAILED. 4 passed; 2 failed; 0 ignored;").unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (4, 2, 0));
    }

    #[test]
    fn ignores_other_lines() {
        assert!(Counts::parse("running 3 tests").is_none());
        assert!(Counts::parse("test foo ... ok").is_none());
    }
}
