//! No key or salt appears in the `Debug` output (`{:?}` and `{:#?}`) of any
//! public type of the crate: master keys, contexts (with several keys, MKIs
//! and streams), configurations, events and errors.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use carevox_srtp::{Config, Context, DtlsRole, MasterKey, Suite};

/// Byte patterns that a printed key or salt would show: the bytes in
/// decimal as `Debug` prints a slice, in hex, and as characters.
fn leaks(text: &str, secret: &[u8]) -> bool {
    let dec: Vec<String> = secret.iter().map(u8::to_string).collect();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let hex_upper = hex.to_uppercase();
    let chars: String = secret.iter().map(|&b| char::from(b)).collect();
    text.contains(&dec[..4].join(", "))
        || text.contains(&hex[..8])
        || text.contains(&hex_upper[..8])
        || text.contains(&chars[..4])
}

fn both(value: &impl core::fmt::Debug) -> [String; 2] {
    [format!("{value:?}"), format!("{value:#?}")]
}

#[test]
fn no_public_type_prints_a_key_or_salt() {
    for suite in Suite::ALL {
        // Distinctive, printable bytes so that any form of leak shows.
        let key: Vec<u8> = (0..suite.key_len()).map(|i| b'K' + (i % 7) as u8).collect();
        let salt: Vec<u8> = (0..suite.salt_len())
            .map(|i| b's' + (i % 5) as u8)
            .collect();
        let key2: Vec<u8> = key.iter().map(|b| b ^ 0x20).collect();
        let master = MasterKey::new(suite, &key, &salt)
            .unwrap()
            .with_mki(&[1, 2])
            .unwrap()
            .with_lifetime(1 << 20)
            .unwrap();
        let second = MasterKey::new(suite, &key2, &salt)
            .unwrap()
            .with_mki(&[3, 4])
            .unwrap();
        let mut ctx = Context::new(master.clone(), Config::new()).unwrap();
        ctx.add_key(second.clone()).unwrap();
        ctx.add_outbound_stream(7).unwrap();
        ctx.add_inbound_stream(8).unwrap();
        let sdes = [key.clone(), salt.clone()].concat();
        let from_sdes = MasterKey::from_sdes(suite, &sdes).unwrap();
        let bad = MasterKey::from_sdes(suite, &sdes[1..]).unwrap_err();
        let exporter: Vec<u8> = [key.clone(), key2.clone(), salt.clone(), salt.clone()].concat();
        let pair = MasterKey::pair_from_dtls_exporter(suite, &exporter, DtlsRole::Client).unwrap();

        let mut printed = Vec::new();
        printed.extend(both(&master));
        printed.extend(both(&second));
        printed.extend(both(&from_sdes));
        printed.extend(both(&pair));
        printed.extend(both(&ctx));
        printed.extend(both(&bad));
        printed.push(bad.to_string());
        printed.extend(both(&Config::new()));
        for _ in 0..2 {
            printed.extend(both(&ctx.poll_event()));
        }
        for text in &printed {
            for secret in [&key, &key2, &salt] {
                assert!(!leaks(text, secret), "{suite}: {text}");
            }
        }
        // The redacted fields are there, and say so.
        assert!(printed[0].contains("<redacted>"), "{}", printed[0]);
    }
}
