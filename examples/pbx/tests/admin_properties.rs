//! The control socket's framing and messages never panic on arbitrary
//! bytes: each input is a frame, a typed error, or a message refused with
//! a typed error.
#![allow(clippy::unwrap_used)]

use carevox_pbx::admin::proto::{
    Frame, MAX_FRAME, Request, Response, parse, read_frame, write_json,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_are_a_frame_or_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut input = bytes.as_slice();
        // Read frames until the input runs out or one fails.
        for _ in 0..64 {
            match read_frame(&mut input) {
                Ok(Frame::Json(body)) => {
                    let _ = parse::<Request>(body.clone());
                    let _ = parse::<Response>(body);
                }
                Ok(Frame::Data(d)) => prop_assert!(d.len() < MAX_FRAME),
                Err(_) => break,
            }
        }
    }

    #[test]
    fn frames_with_any_tag_payload_and_a_length_off_by_a_little_never_panic(
        tag in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        off in -2i64..3,
    ) {
        let len = i64::try_from(payload.len()).unwrap() + 1 + off;
        let len = u32::try_from(len.max(0)).unwrap();
        let mut wire = len.to_be_bytes().to_vec();
        wire.push(tag);
        wire.extend_from_slice(&payload);
        match read_frame(&mut wire.as_slice()) {
            Ok(Frame::Json(body)) => {
                prop_assert_eq!(tag, b'J');
                let _ = parse::<Request>(body);
            }
            Ok(Frame::Data(_)) => prop_assert_eq!(tag, b'D'),
            Err(_) => prop_assert!(off > 0 || len == 0 || (tag != b'J' && tag != b'D')),
        }
    }

    #[test]
    fn arbitrary_json_bodies_are_refused_with_a_message(body in "\\PC{0,300}") {
        let mut wire = Vec::new();
        let len = u32::try_from(body.len() + 1).unwrap();
        wire.extend_from_slice(&len.to_be_bytes());
        wire.push(b'J');
        wire.extend_from_slice(body.as_bytes());
        let Ok(Frame::Json(b)) = read_frame(&mut wire.as_slice()) else {
            return Err(TestCaseError::fail("a JSON frame"));
        };
        if let Err(m) = parse::<Request>(b) {
            prop_assert!(m.starts_with("not a valid message"));
            prop_assert!(!m.contains(&body) || body.len() < 3);
        }
    }

    #[test]
    fn requests_round_trip(name in "[a-z.]{1,20}", password in "\\PC{0,40}") {
        let mut wire = Vec::new();
        write_json(&mut wire, &Request::Login {
            name: name.clone(),
            password: carevox_pbx::admin::proto::SecretText::new(password.clone()),
            totp: carevox_pbx::admin::proto::SecretText::new("123456".into()),
        }).unwrap();
        let Ok(Frame::Json(b)) = read_frame(&mut wire.as_slice()) else {
            return Err(TestCaseError::fail("a JSON frame"));
        };
        let Ok(Request::Login { name: n, password: p, .. }) = parse::<Request>(b) else {
            return Err(TestCaseError::fail("a login"));
        };
        prop_assert_eq!(n, name);
        prop_assert_eq!(p.expose(), password.as_str());
    }
}
