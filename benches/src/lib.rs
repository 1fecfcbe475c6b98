//! Shared set-up for the carevox benchmarks.
//!
//! Every benchmark in this crate measures a carevox crate beside a named peer
//! (another library that does the same job) in the same run, so that the ratio
//! between them does not depend on how loaded the machine was. Results, with
//! the machine and the command, are recorded in `BENCHMARKS.md` at the root of
//! the repository.
//!
//! Run all benchmarks with `cargo bench -p carevox-benches`, or one of them with
//! `cargo bench -p carevox-benches --bench <name>`.

use std::time::Duration;

use criterion::Criterion;

/// The criterion configuration every carevox benchmark uses.
///
/// The settings are fixed here so that numbers from different benchmarks and
/// different runs are comparable: one second of warm-up, three seconds of
/// measurement and 50 samples per case, which keeps a full run short on a
/// two-core machine while giving confidence intervals of a few percent for
/// sub-microsecond operations. Command-line options given to `cargo bench`
/// still override them.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}
