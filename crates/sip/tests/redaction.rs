//! No public type prints a secret or PHI in `Debug` (`{:?}` and `{:#?}`):
//! every type that can hold one is built from values carrying a known key,
//! phone number, user and host, formatted, and searched for them. Errors
//! must not echo them either.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use base64::Engine as _;
use bytes::Bytes;
use carevox_redact::debug_leak;
use carevox_sip::auth::{
    Challenge, Credentials, DigestClient, DigestServer, Password, Request, ServerConfig, UserSecret,
};
use carevox_sip::sdp::crypto::{Crypto, CryptoSuite, KeySalt};
use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia, answer_audio};
use carevox_sip::sdp::{Connection, SessionDescription};
use carevox_sip::{
    AuthHeader, Contact, Message, MessageBuilder, NameAddr, Params, RetryAfter, Uri, Via,
};

/// 30 bytes of key||salt for AES_CM_128_HMAC_SHA1_80.
const KEY: [u8; 30] = [
    0x9a, 0x17, 0xe3, 0x42, 0x55, 0x0c, 0xbe, 0x71, 0x28, 0xd4, 0x6f, 0x93, 0x3a, 0xc1, 0x0e, 0x85,
    0x44, 0xfa, 0x26, 0x7b, 0xd9, 0x13, 0x60, 0xae, 0x5c, 0xe7, 0x31, 0x8b, 0x02, 0xcd,
];
const PHONE: &str = "15550142";
const USER: &str = "jdoe-patient";
const HOST: &str = "clinic-west.example";
const NAME: &str = "Johanna Doe";

fn key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(KEY)
}

fn needles() -> Vec<String> {
    let b64 = key_b64();
    vec![
        b64.clone(),
        b64[..16].to_owned(),
        // The raw bytes as Debug would print a slice.
        format!("{}, {}, {}", KEY[0], KEY[1], KEY[2]),
        format!("{:?}", &KEY[..3]).trim_end_matches(']').to_owned(),
        PHONE.to_owned(),
        USER.to_owned(),
        HOST.to_owned(),
        "clinic-west".to_owned(),
        NAME.to_owned(),
        "Johanna".to_owned(),
        "s3cret-pass".to_owned(),
        "203.0.113.77".to_owned(),
    ]
}

fn assert_no_leak<T: std::fmt::Debug + ?Sized>(what: &str, value: &T) {
    let owned = needles();
    let needles: Vec<&str> = owned.iter().map(String::as_str).collect();
    if let Some((needle, out)) = debug_leak(value, &needles) {
        panic!("{what} prints {needle:?}: {out}");
    }
}

fn sdp() -> String {
    format!(
        "v=0\r\no={USER} 4{PHONE} 1 IN IP4 203.0.113.77\r\ns={NAME}\r\n\
         i=call for {NAME}\r\nu=sip:{USER}@{HOST}\r\ne={USER}@{HOST}\r\np=+1{PHONE}\r\n\
         c=IN IP4 203.0.113.77\r\nt=0 0\r\n\
         m=audio 4000 RTP/SAVP 0\r\ni=line of {NAME}\r\nc=IN IP4 203.0.113.77\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n\
         a=ice-pwd:s3cret-pass\r\na=label:{NAME}\r\n",
        key_b64()
    )
}

fn invite() -> String {
    let body = sdp();
    format!(
        "INVITE sip:{USER}:s3cret-pass@{HOST};user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 203.0.113.77;branch=z9hG4bKr1;received=203.0.113.77\r\n\
         From: \"{NAME}\" <tel:+1{PHONE}>;tag=1\r\n\
         To: <sip:{USER}@{HOST}>\r\n\
         Call-ID: r1@203.0.113.77\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:{USER}@{HOST}>;expires=60\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn messages_headers_and_builders_hide_phi_and_keys() {
    let text = invite();
    let msg = Message::parse(Bytes::from(text.clone())).unwrap();
    assert_no_leak("Message", &msg);
    for f in msg.headers() {
        assert_no_leak("HeaderField", &f);
    }
    assert_no_leak("Via", &msg.top_via().unwrap());
    assert_no_leak("From", &msg.from().unwrap());
    assert_no_leak("To", &msg.to().unwrap());
    assert_no_leak("Contact", &msg.contacts().next().unwrap().unwrap());
    assert_no_leak("Request-URI", &msg.request_uri().unwrap().unwrap());
    assert_no_leak("Contact iterator", &msg.contacts());
    assert_no_leak("list", &msg.list(carevox_sip::HeaderName::Contact));
    let builder = MessageBuilder::from_message(&msg);
    assert_no_leak("MessageBuilder", &builder);
    let built = MessageBuilder::request("INVITE", &format!("sip:{USER}@{HOST}"))
        .unwrap()
        .header("To", &format!("\"{NAME}\" <tel:+1{PHONE}>"))
        .unwrap()
        .body("application/sdp", Bytes::from(sdp()))
        .unwrap();
    assert_no_leak("MessageBuilder with body", &built);
    let response = MessageBuilder::response_to(&msg, 200, "OK").unwrap();
    assert_no_leak("response builder", &response);
    let via = format!("SIP/2.0/TCP {HOST}:5061;branch=z9hG4bK1;received=203.0.113.77");
    assert_no_leak("Via::parse", &Via::parse(&via).unwrap());
    let na = format!("\"{NAME}\" <sip:{USER}@{HOST}>;tag=9");
    assert_no_leak("NameAddr", &NameAddr::parse(&na).unwrap());
    let bare = format!("sip:{USER}@{HOST};tag=9");
    assert_no_leak("bare NameAddr", &NameAddr::parse(&bare).unwrap());
    assert_no_leak("Contact::parse", &Contact::parse(&na).unwrap());
    let params = format!("received=203.0.113.77;phone-context={HOST}");
    assert_no_leak("Params", &Params::new(&params));
    for p in Params::new(&params) {
        assert_no_leak("Param", &p);
    }
    assert_no_leak("param iterator", &Params::new(&params).iter());
    let ra = format!("60 (call {NAME} back)");
    assert_no_leak("RetryAfter", &RetryAfter::parse(&ra).unwrap());
    let broken = text.replace("Content-Length: ", "Content-Length: x");
    let err = Message::parse(Bytes::from(broken.clone())).unwrap_err();
    assert_no_leak("ParseError", &err);
    let partial =
        carevox_sip::PartialRequest::salvage(broken.as_bytes(), &Default::default()).unwrap();
    assert_no_leak("PartialRequest", &partial);
    assert_no_leak(
        "salvaged 400 builder",
        &err.response_to(&partial, "t").unwrap(),
    );
    let framed =
        carevox_sip::parse_datagram(Bytes::from(text.clone()), &Default::default()).unwrap();
    assert_no_leak("Frame", &framed);
    let mut framer = carevox_sip::StreamFramer::server(Default::default());
    framer.push(&text.as_bytes()[..text.len() - 10]).unwrap();
    assert_no_leak("StreamFramer", &framer);
    for host in [HOST, "203.0.113.77", "[2001:db8::77]"] {
        assert_no_leak("Host::parse", &carevox_sip::Host::parse(host).unwrap());
    }
    assert!(
        debug_leak(
            &carevox_sip::Host::parse("[2001:db8::77]").unwrap(),
            &["2001"]
        )
        .is_none()
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // some instant to start from
fn transaction_layer_hides_what_it_matches_on() {
    use carevox_sip::transaction::{
        Config, Input, Output, Received, TransactionLayer, TransportKind,
    };
    let mut layer = TransactionLayer::new(Config::default());
    let now = std::time::Instant::now();
    let source = "127.0.0.1:5060".parse().unwrap();
    // One request matched by its branch and sent-by, one by the RFC 2543
    // fallback (Request-URI, tags, Call-ID, Via).
    let legacy = invite()
        .replace("branch=z9hG4bKr1", "branch=r2")
        .replace("r1@", "r2@");
    for text in [invite(), legacy] {
        let message = Message::parse(Bytes::from(text)).unwrap();
        layer
            .handle_input(
                now,
                Input::Receive(Received {
                    source,
                    transport: TransportKind::Udp,
                    message,
                }),
            )
            .unwrap();
    }
    assert_eq!(layer.len(), 2);
    assert_no_leak("TransactionLayer", &layer);
    while let Some(out) = layer.poll_output() {
        if matches!(out, Output::Timeout(_)) {
            break;
        }
        assert_no_leak("Output", &out);
    }
}

#[test]
fn uris_of_every_scheme_hide_phi() {
    for text in [
        format!(
            "sip:{USER}:s3cret-pass@{HOST}:5060;user=phone;transport=tls?Subject=Johanna%20Doe"
        ),
        format!("sips:{USER}@{HOST}"),
        format!("sip:{USER}@203.0.113.77"),
        format!("sip:+1{PHONE}@{HOST};user=phone"),
        format!("tel:+1-{PHONE};phone-context={HOST}"),
        format!("tel:{PHONE};phone-context=+1"),
        format!("mailto:{USER}@{HOST}"),
        format!("urn:patient:{PHONE}"),
    ] {
        let uri = Uri::parse(&text).unwrap();
        assert_no_leak(&format!("Uri {}", uri.scheme()), &uri);
        if let Some(sip) = uri.as_sip() {
            assert_no_leak("SipUri", sip);
            assert_no_leak("Host", &sip.host());
            assert_no_leak("SipUri params", &sip.params());
        }
        if let Uri::Tel(tel) = uri {
            assert_no_leak("TelUri", &tel);
        }
    }
}

#[test]
fn sdp_and_keys_are_redacted() {
    let text = sdp();
    let sdp = SessionDescription::parse(&text).unwrap();
    assert_no_leak("SessionDescription", &sdp);
    assert_no_leak("Origin", &sdp.origin);
    assert_no_leak("Connection", sdp.connection.as_ref().unwrap());
    assert_no_leak(
        "Connection::internet",
        &Connection::internet("203.0.113.77"),
    );
    // The answer side: its local media, the answer and what it agreed to
    // (the offerer's address).
    let local = LocalMedia::new("203.0.113.77", 4000, &format!("4{PHONE}"));
    assert_no_leak("LocalMedia", &local);
    assert_no_leak("Origin of LocalMedia", &local.origin);
    #[allow(clippy::disallowed_methods)] // the fresh local key needs randomness
    let rng = ring::rand::SystemRandom::new();
    let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
    let answer = answer_audio(&sdp, &caps, &local, &rng).unwrap();
    let audio = answer.audio.as_ref().unwrap();
    assert_eq!(
        audio.remote_address.as_ref().map(|a| a.expose().as_str()),
        Some("203.0.113.77")
    );
    assert_no_leak("NegotiatedAudio", audio);
    assert_no_leak("Answer", &answer);
    assert_no_leak("Media", &sdp.media[0]);
    let crypto = sdp.media[0].cryptos().next().unwrap();
    assert_no_leak("Crypto", crypto);
    assert_no_leak("KeyParam", &crypto.keys[0]);
    assert_no_leak("KeySalt", &crypto.keys[0].key_salt);
    let keying = crypto.srtp_keying().unwrap();
    assert_no_leak("SrtpKeying", &keying);
    assert_eq!(keying.master_key.expose().as_slice(), &KEY[..16]);
    let made = Crypto::new(
        1,
        CryptoSuite::AesCm128HmacSha1_80,
        KeySalt::new(KEY.to_vec()),
    )
    .unwrap();
    assert_no_leak("Crypto::new", &made);
    let line = format!(
        "1 AES_CM_128_HMAC_SHA1_80 inline:{} FEC_KEY=inline:{}",
        key_b64(),
        key_b64()
    );
    assert_no_leak("Crypto with session params", &Crypto::parse(&line).unwrap());
    // Errors name what and where, never the text.
    let short = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", &key_b64()[..20]);
    assert_no_leak("CryptoError", &Crypto::parse(&short).unwrap_err());
    let bad = text.replace("t=0 0", &format!("t={PHONE}"));
    if let Err(e) = SessionDescription::parse(&bad) {
        assert_no_leak("SdpError", &e);
        assert!(!e.to_string().contains(PHONE), "{e}");
    }
}

#[test]
fn digest_types_hide_secrets_and_names() {
    let challenge = Challenge::parse(&format!(
        "Digest realm=\"{HOST}\", nonce=\"{}\", opaque=\"{USER}\", qop=\"auth\", algorithm=SHA-256",
        key_b64()
    ))
    .unwrap();
    // The realm is a protection space, not PHI; the nonce and opaque are.
    let owned = [key_b64(), USER.to_owned()];
    assert_eq!(debug_leak(&challenge, &[&owned[0], &owned[1]]), None);
    let header = format!(
        "Digest username=\"{USER}\", realm=\"r\", nonce=\"{}\", uri=\"sip:{USER}@{HOST}\", \
         response=\"{}\", qop=auth, nc=00000001, cnonce=\"{PHONE}\"",
        key_b64(),
        "ab".repeat(32)
    );
    let creds = Credentials::parse(&header).unwrap();
    assert_no_leak("Credentials", &creds);
    assert_eq!(debug_leak(&creds, &[&"ab".repeat(32)]), None);
    assert_no_leak("AuthHeader", &AuthHeader::parse(&header).unwrap());
    assert_no_leak("AuthParams", &AuthHeader::parse(&header).unwrap().params());
    let uri = format!("sip:{USER}@{HOST}");
    let body = sdp();
    let request = Request::new("INVITE", &uri).with_body(body.as_bytes());
    assert_no_leak("auth::Request", &request);
    let password = Password::new("s3cret-pass");
    assert_no_leak("Password", &password);
    assert_no_leak("UserSecret", &UserSecret::Password(password.clone()));
    // A stored HA1 is as good as the password for this realm.
    let ha1 = "cd".repeat(32);
    let stored = UserSecret::ha1(carevox_sip::auth::Algorithm::Sha256, &ha1);
    assert_no_leak("UserSecret::Ha1", &stored);
    assert_eq!(debug_leak(&stored, &[&ha1]), None);
    assert_no_leak("DigestClient", &DigestClient::new(USER, password));
    let server =
        DigestServer::new(&[&KEY[..], &KEY[..2]].concat(), ServerConfig::new("r")).unwrap();
    assert_no_leak("DigestServer", &server);
    let wrong = Credentials::parse(&format!("Digest username=\"{USER}\""));
    assert_no_leak("DigestError", &wrong.unwrap_err());
}

#[test]
fn parse_errors_do_not_echo_the_message() {
    let text = invite().replace("CSeq: 1 INVITE", &format!("CSeq: x{PHONE} INVITE"));
    let msg = Message::parse(Bytes::from(text)).unwrap();
    let e = msg.cseq().unwrap_err();
    assert_no_leak("ParseError", &e);
    assert!(!e.to_string().contains(PHONE));
    let e = NameAddr::parse(&format!("{NAME}@x <sip:{USER}@{HOST}>")).unwrap_err();
    assert_no_leak("ParseError", &e);
    assert!(!e.to_string().contains(USER));
    let e = Uri::parse(&format!("sip:{USER}@{HOST};a=1;a=2")).unwrap_err();
    assert_no_leak("ParseError", &e);
}
