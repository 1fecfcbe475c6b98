//! Helpers shared by the behaviour tests.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};

use carevox_sip::builder::unfold;
use carevox_sip::{HeaderName, Message, MessageBuilder};

/// The `.sip` files of a test data directory, sorted.
pub(crate) fn sip_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .sip files in {}", dir.display());
    files
}

/// The message without the CRLFs before its start line.
pub(crate) fn without_leading_crlf(raw: &[u8]) -> &[u8] {
    let mut r = raw;
    while let Some(rest) = r.strip_prefix(b"\r\n") {
        r = rest;
    }
    r
}

/// Rebuilds `msg` through the builder and checks that the result means the
/// same: start line, header fields (unfolded) in order, body, core headers.
pub(crate) fn assert_rebuild_same(msg: &Message, what: &str) {
    let rebuilt = MessageBuilder::from_message(msg)
        .build()
        .unwrap_or_else(|e| panic!("{what}: rebuild: {e}"));
    assert_eq!(rebuilt.start_line(), msg.start_line(), "{what}");
    assert_eq!(rebuilt.body(), msg.body(), "{what}");
    let a: Vec<(HeaderName, String)> = msg
        .headers()
        .filter(|f| f.name != HeaderName::ContentLength)
        .map(|f| (f.name, unfold(f.value_str()).into_owned()))
        .collect();
    let b: Vec<(HeaderName, String)> = rebuilt
        .headers()
        .filter(|f| f.name != HeaderName::ContentLength)
        .map(|f| (f.name, f.value_str().to_owned()))
        .collect();
    assert_eq!(a, b, "{what}");
    assert_eq!(
        rebuilt.content_length(),
        Some(u32::try_from(msg.body().len()).unwrap())
    );
    let vias = |m: &Message| {
        m.vias()
            .map(|v| {
                v.map(|v| {
                    (
                        v.branch().map(str::to_owned),
                        v.host().to_string(),
                        v.port(),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(vias(msg), vias(&rebuilt), "{what}");
    assert_eq!(msg.call_id().ok(), rebuilt.call_id().ok(), "{what}");
    assert_eq!(msg.cseq().ok(), rebuilt.cseq().ok(), "{what}");
    assert_eq!(
        msg.from()
            .ok()
            .map(|f| (f.tag(), f.uri().as_str(), f.display_name())),
        rebuilt
            .from()
            .ok()
            .map(|f| (f.tag(), f.uri().as_str(), f.display_name())),
        "{what}"
    );
    assert_eq!(
        msg.to()
            .ok()
            .map(|f| (f.tag(), f.uri().as_str(), f.display_name())),
        rebuilt
            .to()
            .ok()
            .map(|f| (f.tag(), f.uri().as_str(), f.display_name())),
        "{what}"
    );
    // And the rebuilt text is itself stable.
    let again = MessageBuilder::from_message(&rebuilt).build().unwrap();
    assert_eq!(again.as_bytes(), rebuilt.as_bytes(), "{what}");
}
