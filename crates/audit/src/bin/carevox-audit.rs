//! `carevox-audit`: verify, export and query a carevox audit log.

fn main() {}
