//! Developer commands for the carevox workspace, run as `cargo xtask <command>`.
//!
//! - `cargo xtask test`: every test the project has, one suite after another,
//!   then a summary with the totals (`cargo xtask test NAME..`: only the
//!   suites whose names contain one of the NAMEs).
//! - `cargo xtask demo [ARGS]`: the main job, `carevox-pbx demo`: the PBX
//!   and two softphones on 127.0.0.1 walking a voicemail through every
//!   safeguard.
//! - `cargo xtask tour [ARGS]`: the example program that walks one patient
//!   call through every crate in one process, without a network.

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
  test [NAME..]  run every test suite of the project and print a summary
                (with NAMEs: only the suites whose names contain one of them,
                e.g. `cargo xtask test bindings`)
  demo [ARGS]   run the main job: the PBX demo (carevox-pbx demo)
  tour [ARGS]   run the tour of the composed crates, in one process
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    match args.next().as_deref() {
        Some("test") => test(&args.collect::<Vec<_>>()),
        Some("tour") => tour(args.collect()),
        Some("demo") => run_release("carevox-pbx", &["demo"], args.collect()),
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

/// One suite of `cargo xtask test`: a name, the command that runs it, and
/// how its test counts are read from that command's standard output.
struct Suite {
    name: &'static str,
    program: Program,
    args: &'static [&'static str],
    /// Reads the counts of one line of output; `None` for a suite that has
    /// no test counts. A suite with a reader that finds no line fails.
    counts: Option<fn(&str) -> Option<Counts>>,
}

/// What runs a suite.
#[derive(Clone, Copy)]
enum Program {
    /// The cargo that runs xtask.
    Cargo,
    /// `bash`, running a script of the workspace.
    Bash,
}

/// Every test suite of the project, in the order they run. Interop tests
/// against real peers join this list as they are built.
const SUITES: &[Suite] = &[
    // The benchmark crate has no tests of its own, and building its library
    // for tests would compile every comparison peer a second time; clippy
    // checks its benchmarks.
    Suite {
        name: "workspace",
        program: Program::Cargo,
        args: &[
            "test",
            "--workspace",
            "--exclude",
            "carevox-benches",
            "--locked",
        ],
        counts: Some(Counts::parse),
    },
    Suite {
        name: "fuzz corpus replay",
        program: Program::Cargo,
        args: &[
            "test",
            "--locked",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--no-default-features",
        ],
        counts: Some(Counts::parse),
    },
    // The foreign bindings (bindings/README.md): each run builds the cdylib,
    // generates the bindings and runs the language's own test suite; the
    // counts are pytest's and Surefire's.
    Suite {
        name: "bindings (Python)",
        program: Program::Bash,
        args: &["bindings/run-tests.sh", "python"],
        counts: Some(Counts::parse_pytest),
    },
    Suite {
        name: "bindings (Kotlin)",
        program: Program::Bash,
        args: &["bindings/run-tests.sh", "kotlin"],
        counts: Some(Counts::parse_surefire),
    },
    // No Swift compiler exists on the machines this runs on: this suite
    // generates the Swift package and checks its files and public names
    // (bindings/swift/generate.sh); it has no test counts.
    Suite {
        name: "bindings (Swift files)",
        program: Program::Bash,
        args: &["bindings/run-tests.sh", "swift"],
        counts: None,
    },
];

/// Test counts, summed over the result lines of a suite (libtest's
/// `test result:` lines, pytest's summary, Surefire's totals).
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

    /// Parses pytest's closing summary line, such as `18 passed in 0.91s` or
    /// `1 failed, 16 passed, 1 skipped, 2 warnings in 1.20s` (with or
    /// without the `=` rules around it). Errors (a test that could not be
    /// set up, a module that could not be imported) count as failures.
    fn parse_pytest(line: &str) -> Option<Counts> {
        let line = line.trim().trim_matches('=').trim();
        let (tally, took) = line.rsplit_once(" in ")?;
        // The duration: `0.91s`, or `61.20s (0:01:01)` for long runs.
        let seconds = took.split_whitespace().next()?.strip_suffix('s')?;
        seconds.parse::<f64>().ok()?;
        if tally == "no tests ran" {
            return Some(Counts::default());
        }
        let mut counts = Counts::default();
        for part in tally.split(", ") {
            let (n, what) = part.split_once(' ')?;
            let n = n.parse::<u64>().ok()?;
            match what {
                "passed" | "xpassed" => counts.passed += n,
                "failed" | "error" | "errors" => counts.failed += n,
                "skipped" | "xfailed" | "deselected" => counts.ignored += n,
                "warning" | "warnings" | "rerun" => {}
                _ => return None,
            }
        }
        Some(counts)
    }

    /// Parses the Surefire totals that bindings/run-tests.sh sums over the
    /// XML reports: `Surefire: Tests run: 9, Failures: 0, Errors: 0,
    /// Skipped: 0`. Tests run include the failed, errored and skipped ones;
    /// errors count as failures.
    fn parse_surefire(line: &str) -> Option<Counts> {
        let rest = line.trim().strip_prefix("Surefire: ")?;
        let (mut run, mut failures, mut errors, mut skipped) = (None, None, None, None);
        for part in rest.split(", ") {
            let (key, n) = part.split_once(": ")?;
            let n = n.trim().parse::<u64>().ok()?;
            let slot = match key {
                "Tests run" => &mut run,
                "Failures" => &mut failures,
                "Errors" => &mut errors,
                "Skipped" => &mut skipped,
                _ => return None,
            };
            *slot = Some(n);
        }
        let (run, failures, errors, skipped) = (run?, failures?, errors?, skipped?);
        let failed = failures.checked_add(errors)?;
        let passed = run.checked_sub(failed)?.checked_sub(skipped)?;
        Some(Counts {
            passed,
            failed,
            ignored: skipped,
        })
    }
}

struct Outcome {
    name: &'static str,
    ok: bool,
    counts: Counts,
    took: Duration,
}

fn test(filters: &[String]) -> ExitCode {
    let suites: Vec<&Suite> = SUITES
        .iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    if suites.is_empty() {
        let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
        eprintln!(
            "xtask: no suite matches {filters:?}; the suites are: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
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
    for suite in suites {
        println!("\n=== {} ===", suite.name);
        let started = Instant::now();
        let program = match suite.program {
            Program::Cargo => cargo.as_str(),
            Program::Bash => "bash",
        };
        let (ok, counts) = run_counting(program, suite.args, suite.counts);
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

/// Runs `program` with `args` in the workspace root, echoing its standard
/// output while summing the result lines `counts` finds in it. Standard
/// error passes through untouched. The suite fails if the program does, or
/// if it has a count reader and printed no result line at all.
fn run_counting(
    program: &str,
    args: &[&str],
    counts: Option<fn(&str) -> Option<Counts>>,
) -> (bool, Counts) {
    let child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("xtask: cannot start `{program}`: {e}");
            return (false, Counts::default());
        }
    };
    let mut total = Counts::default();
    let mut found_any = false;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if let Some(found) = counts.and_then(|parse| parse(&line)) {
                total.add(found);
                found_any = true;
            }
        }
    }
    let mut ok = child.wait().map(|status| status.success()).unwrap_or(false);
    if ok && counts.is_some() && !found_any {
        eprintln!(
            "xtask: `{program} {}` printed no test result line",
            args.join(" ")
        );
        ok = false;
    }
    (ok, total)
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
    run_release(TOUR_PACKAGE, &[], args)
}

/// Builds `package` in release mode and runs it with `first` then `args`.
fn run_release(package: &str, first: &[&str], args: Vec<String>) -> ExitCode {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            package,
            "--",
        ])
        .args(first)
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
    fn parses_pytest_summaries() {
        let c = Counts::parse_pytest("18 passed in 0.91s").unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (18, 0, 0));
        let c = Counts::parse_pytest(
            "====== 2 failed, 15 passed, 1 skipped, 3 warnings, 1 error in 61.20s (0:01:01) ======",
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (15, 3, 1));
        let c = Counts::parse_pytest("1 xfailed, 2 xpassed in 0.10s").unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (2, 0, 1));
        let c = Counts::parse_pytest("no tests ran in 0.01s").unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (0, 0, 0));
        // Test output that merely looks like it.
        assert!(Counts::parse_pytest("tests/test_srtp.py ..F.. [ 50%]").is_none());
        assert!(Counts::parse_pytest("3 packets in 1 batch").is_none());
        assert!(
            Counts::parse_pytest("FAILED tests/test_srtp.py::test_x - 2 passed in 1s").is_none()
        );
    }

    #[test]
    fn parses_surefire_totals() {
        let c =
            Counts::parse_surefire("Surefire: Tests run: 9, Failures: 0, Errors: 0, Skipped: 0")
                .unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (9, 0, 0));
        let c =
            Counts::parse_surefire("Surefire: Tests run: 12, Failures: 2, Errors: 1, Skipped: 3")
                .unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (6, 3, 3));
        // Inconsistent totals or other lines are not counts.
        assert!(
            Counts::parse_surefire("Surefire: Tests run: 1, Failures: 2, Errors: 0, Skipped: 0")
                .is_none()
        );
        assert!(Counts::parse_surefire("Surefire: no test reports").is_none());
        assert!(
            Counts::parse_surefire("[INFO] Tests run: 9, Failures: 0, Errors: 0, Skipped: 0")
                .is_none()
        );
    }

    #[test]
    fn ignores_other_lines() {
        assert!(Counts::parse("running 3 tests").is_none());
        assert!(Counts::parse("test foo ... ok").is_none());
    }
}
