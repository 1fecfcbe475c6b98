//! Messages captured from real software on loopback (SIPp's built-in
//! scenarios and baresip, see `real/capture.py`): each must parse, validate,
//! re-serialize byte for byte and rebuild to the same meaning.

mod common;

use std::fs;

use bytes::Bytes;
use carevox_sip::{Message, ValidationPolicy, validate};

#[test]
fn captured_messages_parse_validate_and_round_trip() {
    let files = common::sip_files("real");
    assert!(files.len() >= 20);
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = Bytes::from(fs::read(&path).unwrap());
        let msg = Message::parse(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let _verdict =
            validate(&msg, &ValidationPolicy::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.as_bytes(), &raw, "{name}");
        msg.top_via().unwrap();
        msg.from().unwrap();
        msg.to().unwrap();
        for c in msg.contacts() {
            c.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        common::assert_rebuild_same(&msg, &name);
    }
}

#[test]
fn baresip_register_with_authorization() {
    let raw = fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real/baresip-03.sip"),
    )
    .unwrap();
    let msg = Message::parse(Bytes::from(raw)).unwrap();
    assert_eq!(msg.method().unwrap().as_str(), "REGISTER");
    let auth = msg.authorization().next().unwrap().unwrap();
    assert!(auth.scheme().eq_ignore_ascii_case("digest"));
    assert_eq!(auth.params().get("realm").unwrap().value(), "carevox.test");
    assert!(auth.params().get("response").is_some());
    // The digest layer reads the same header the message layer decoded.
    let creds = carevox_sip::auth::Credentials::from_header(&auth).unwrap();
    assert_eq!(creds.realm.expose(), "carevox.test");
    for p in auth.params() {
        if p.name().eq_ignore_ascii_case("response") {
            assert_eq!(creds.response.expose(), &p.value());
        }
    }
}
