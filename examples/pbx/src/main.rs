//! `carevox-pbx`: the PBX's command line.
fn main() {}
