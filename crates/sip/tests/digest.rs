//! Digest authentication through the public API: RFC 7616 vectors, the
//! server and client against each other, staleness, replay, tampering.

#![allow(clippy::disallowed_methods)] // tests draw real randomness
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // helpers outside #[test] functions

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use carevox_sip::AuthParamError;
use carevox_sip::auth::{
    Algorithm, Challenge, Credentials, DigestClient, DigestError, DigestServer, NonceTracker,
    Password, Qop, Request, ServerConfig, UserSecret, user_hash,
};
use ring::rand::SystemRandom;

fn vector(name: &str) -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(" = ").expect("key = value");
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

fn check_vector(name: &str) {
    let v = vector(name);
    let alg = Algorithm::parse(&v["algorithm"]).unwrap();
    let client = DigestClient::new(&v["username"], Password::new(&v["password"]));
    let nc = u32::from_str_radix(&v["nc"], 16).unwrap();
    let request = Request::new(&v["method"], &v["uri"]);
    let response = client
        .response_for(
            alg,
            &v["realm"],
            &v["nonce"],
            &v["cnonce"],
            nc,
            Qop::parse(&v["qop"]).unwrap(),
            &request,
        )
        .unwrap();
    assert_eq!(response, v["response"], "{name}");
    if let Some(h) = v.get("username_hash") {
        assert_eq!(&user_hash(alg, &v["username"], &v["realm"]), h, "{name}");
    }
    // The same value from a stored HA1 instead of the password.
    let ha1 = UserSecret::ha1_from_password(
        alg,
        &v["username"],
        &v["realm"],
        &Password::new(&v["password"]),
    );
    let header = format!(
        "Digest username=\"{}\", realm=\"{}\", uri=\"{}\", algorithm={}, nonce=\"{}\", nc={}, \
         cnonce=\"{}\", qop={}, response=\"{}\", opaque=\"{}\", userhash={}",
        v.get("username_hash").unwrap_or(&v["username"]),
        v["realm"],
        v["uri"],
        v["algorithm"],
        v["nonce"],
        v["nc"],
        v["cnonce"],
        v["qop"],
        v["response"],
        v["opaque"],
        v["userhash"],
    );
    let creds = Credentials::parse(&header).unwrap();
    assert_eq!(creds.response.expose(), &v["response"]);
    assert_eq!(creds.nc, Some(nc));
    assert_eq!(creds.userhash, v["userhash"] == "true");
    assert!(format!("{ha1:?}").contains("redacted"));
}

#[test]
fn rfc7616_3_9_1_md5() {
    check_vector("rfc7616_3_9_1_md5.txt");
}

#[test]
fn rfc7616_3_9_1_sha256() {
    check_vector("rfc7616_3_9_1_sha256.txt");
}

#[test]
fn rfc7616_3_9_2_sha512_256_userhash() {
    check_vector("rfc7616_3_9_2_sha512_256_userhash.txt");
}

#[test]
fn rfc7616_3_9_1_challenge_parses() {
    let c = Challenge::parse(
        "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n \
         algorithm=SHA-256,\r\n nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    )
    .unwrap();
    assert_eq!(c.realm, "http-auth@example.org");
    assert_eq!(c.algorithm, Some(Algorithm::Sha256));
    assert_eq!(c.qop, vec![Qop::Auth, Qop::AuthInt]);
    assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
}

/// Session variants and auth-int, against values computed independently
/// (Python hashlib) from the RFC 7616 section 3.4 definitions.
#[test]
fn sess_and_auth_int_cross_checks() {
    let client = DigestClient::new("alice", Password::new("s3cret pass"));
    let body: &[u8] = b"v=0\r\n";
    let request = Request::new("INVITE", "sip:bob@clinic.example").with_body(body);
    for (alg, qop, expected) in [
        (
            Algorithm::Md5Sess,
            Qop::Auth,
            "8751785ca0e14132582dddadd08ff298",
        ),
        (
            Algorithm::Sha256Sess,
            Qop::AuthInt,
            "50a3a9164b9d975bc7c02ab8e4500ea0f017521cf9cdf65d537c0a20ddda6d04",
        ),
        (
            Algorithm::Sha512_256,
            Qop::AuthInt,
            "007a05c9f8f237a872ccf09aaaf0f75bba0228b0e07b8e6ea46da9fe4e63bad3",
        ),
    ] {
        let r = client
            .response_for(alg, "clinic.example", "abc123", "xyz789", 10, qop, &request)
            .unwrap();
        assert_eq!(r, expected, "{alg} {qop:?}");
    }
}

const SECRET: [u8; 32] = [0x5a; 32];
const ADDR: &[u8] = b"192.0.2.7:5060";

fn server(config: ServerConfig) -> DigestServer {
    DigestServer::new(&SECRET, config).unwrap()
}

fn round(
    server: &DigestServer,
    client: &mut DigestClient,
    challenge: &Challenge,
    request: &Request<'_>,
    secret: &UserSecret,
    now: u64,
    tracker: &mut NonceTracker,
) -> Result<carevox_sip::auth::Verified, DigestError> {
    let rng = SystemRandom::new();
    let header = client
        .authorize(challenge, request, &rng)
        .unwrap()
        .to_string();
    // The registrar reads the header through the message layer.
    let message = carevox_sip::Message::parse(bytes::Bytes::from(format!(
        "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n\
         From: <sip:nurse-42@clinic.example>;tag=1\r\nTo: <sip:nurse-42@clinic.example>\r\n\
         Call-ID: 1@192.0.2.7\r\nCSeq: 1 {}\r\nMax-Forwards: 70\r\n\
         Authorization: {header}\r\nContent-Length: 0\r\n\r\n",
        request.method,
        request.uri(),
        request.method
    )))
    .unwrap();
    let field = message.authorization().next().unwrap().unwrap();
    let creds = Credentials::from_header(&field).unwrap();
    assert_eq!(creds, Credentials::parse(&header).unwrap());
    server.verify(&creds, request, "nurse-42", secret, ADDR, now, tracker)
}

#[test]
fn every_algorithm_round_trips_between_client_and_server() {
    let rng = SystemRandom::new();
    let mut config = ServerConfig::new("clinic.example");
    config.algorithms = vec![
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];
    let server = server(config);
    let password = Password::new("correct horse");
    let now = 1_700_000_000;
    let request = Request::new("REGISTER", "sip:clinic.example");
    let challenges = server.challenges(now, ADDR, false, &rng).unwrap();
    assert_eq!(challenges.len(), 6);
    for challenge in &challenges {
        let alg = challenge.algorithm.unwrap();
        let mut tracker = NonceTracker::new(16);
        let mut client = DigestClient::new("nurse-42", password.clone());
        let parsed = Challenge::parse(&challenge.to_string()).unwrap();
        let secret = UserSecret::from(password.clone());
        let ok = round(
            &server,
            &mut client,
            &parsed,
            &request,
            &secret,
            now + 1,
            &mut tracker,
        )
        .unwrap();
        assert_eq!(ok.algorithm, alg);
        assert_eq!(ok.nc, 1);
        // Second request on the same nonce: nc 2, accepted; from stored HA1.
        let ha1 = UserSecret::ha1_from_password(alg, "nurse-42", "clinic.example", &password);
        let ok = round(
            &server,
            &mut client,
            &parsed,
            &request,
            &ha1,
            now + 2,
            &mut tracker,
        )
        .unwrap();
        assert_eq!(ok.nc, 2);
        // A wrong password fails.
        let wrong = UserSecret::from(Password::new("wrong"));
        assert_eq!(
            round(
                &server,
                &mut client,
                &parsed,
                &request,
                &wrong,
                now + 3,
                &mut tracker
            ),
            Err(DigestError::ResponseMismatch)
        );
    }
}

#[test]
fn expired_nonce_is_stale_only_when_the_response_is_right() {
    let rng = SystemRandom::new();
    let server = server(ServerConfig::new("clinic.example"));
    let now = 1_700_000_000;
    let request = Request::new("INVITE", "sip:bob@clinic.example");
    let challenge = server
        .challenge(now, ADDR, Algorithm::Sha256, false, &rng)
        .unwrap();
    let mut tracker = NonceTracker::new(16);
    let mut client = DigestClient::new("nurse-42", Password::new("pw"));
    let good = UserSecret::from(Password::new("pw"));
    let late = now + 301;
    let e = round(
        &server,
        &mut client,
        &challenge,
        &request,
        &good,
        late,
        &mut tracker,
    )
    .unwrap_err();
    assert!(e.is_stale());
    let bad = UserSecret::from(Password::new("nope"));
    assert_eq!(
        round(
            &server,
            &mut client,
            &challenge,
            &request,
            &bad,
            late,
            &mut tracker
        ),
        Err(DigestError::ResponseMismatch)
    );
    let fresh = server
        .challenge(late, ADDR, Algorithm::Sha256, true, &rng)
        .unwrap();
    assert!(fresh.to_string().contains("stale=true"));
    round(
        &server,
        &mut client,
        &fresh,
        &request,
        &good,
        late + 1,
        &mut tracker,
    )
    .unwrap();
}

#[test]
fn replayed_or_tampered_credentials_fail() {
    let rng = SystemRandom::new();
    let server = server(ServerConfig::new("clinic.example"));
    let now = 1_700_000_000;
    let request = Request::new("INVITE", "sip:bob@clinic.example");
    let challenge = server
        .challenge(now, ADDR, Algorithm::Sha256, false, &rng)
        .unwrap();
    let mut tracker = NonceTracker::new(16);
    let mut client = DigestClient::new("nurse-42", Password::new("pw"));
    let secret = UserSecret::from(Password::new("pw"));
    let creds = client.authorize(&challenge, &request, &rng).unwrap();
    server
        .verify(
            &creds,
            &request,
            "nurse-42",
            &secret,
            ADDR,
            now,
            &mut tracker,
        )
        .unwrap();
    assert_eq!(
        server.verify(
            &creds,
            &request,
            "nurse-42",
            &secret,
            ADDR,
            now,
            &mut tracker
        ),
        Err(DigestError::Replay)
    );
    // Another request URI or method.
    let other = Request::new("INVITE", "sip:carol@clinic.example");
    assert_eq!(
        server.verify(&creds, &other, "nurse-42", &secret, ADDR, now, &mut tracker),
        Err(DigestError::UriMismatch)
    );
    let bye = Request::new("BYE", "sip:bob@clinic.example");
    let mut c2 = creds.clone();
    c2.nc = Some(9);
    assert_eq!(
        server.verify(&c2, &bye, "nurse-42", &secret, ADDR, now, &mut tracker),
        Err(DigestError::ResponseMismatch)
    );
    // A nonce from another binding or another server secret.
    let creds = client.authorize(&challenge, &request, &rng).unwrap();
    assert_eq!(
        server.verify(
            &creds,
            &request,
            "nurse-42",
            &secret,
            b"198.51.100.1:5060",
            now,
            &mut tracker
        ),
        Err(DigestError::InvalidNonce)
    );
    let other_server = DigestServer::new(&[1u8; 32], ServerConfig::new("clinic.example")).unwrap();
    assert_eq!(
        other_server.verify(
            &creds,
            &request,
            "nurse-42",
            &secret,
            ADDR,
            now,
            &mut tracker
        ),
        Err(DigestError::InvalidNonce)
    );
    // Another realm, another user, a disabled algorithm.
    let mut c3 = creds.clone();
    c3.realm = carevox_redact::Pii::new("elsewhere".to_owned());
    assert_eq!(
        server.verify(&c3, &request, "nurse-42", &secret, ADDR, now, &mut tracker),
        Err(DigestError::RealmMismatch)
    );
    assert_eq!(
        server.verify(
            &creds,
            &request,
            "nurse-43",
            &secret,
            ADDR,
            now,
            &mut tracker
        ),
        Err(DigestError::UserMismatch)
    );
    let mut c4 = creds.clone();
    c4.algorithm = Some(Algorithm::Md5Sess);
    assert_eq!(
        server.verify(&c4, &request, "nurse-42", &secret, ADDR, now, &mut tracker),
        Err(DigestError::UnsupportedAlgorithm)
    );
    // No qop (RFC 2069 style) is refused.
    let mut c5 = creds;
    c5.qop = None;
    assert_eq!(
        server.verify(&c5, &request, "nurse-42", &secret, ADDR, now, &mut tracker),
        Err(DigestError::UnsupportedQop)
    );
}

#[test]
fn userhash_and_auth_int() {
    let rng = SystemRandom::new();
    let mut config = ServerConfig::new("clinic.example");
    config.userhash = true;
    config.auth_int = true;
    let server = server(config);
    let now = 1_700_000_000;
    let body: &[u8] = b"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\n";
    let request = Request::new("INVITE", "sip:bob@clinic.example").with_body(body);
    let mut challenge = server
        .challenge(now, ADDR, Algorithm::Sha256, false, &rng)
        .unwrap();
    challenge.qop = vec![Qop::AuthInt];
    let mut client = DigestClient::new("nurse-42", Password::new("pw"));
    let creds = client.authorize(&challenge, &request, &rng).unwrap();
    assert!(creds.userhash);
    assert_eq!(
        *creds.username.expose(),
        user_hash(Algorithm::Sha256, "nurse-42", "clinic.example")
    );
    assert!(!creds.to_string().contains("nurse-42"));
    let mut tracker = NonceTracker::new(4);
    let secret = UserSecret::from(Password::new("pw"));
    let ok = server
        .verify(
            &creds,
            &request,
            "nurse-42",
            &secret,
            ADDR,
            now,
            &mut tracker,
        )
        .unwrap();
    assert_eq!(ok.qop, Qop::AuthInt);
    // auth-int protects the body.
    let altered = Request::new("INVITE", "sip:bob@clinic.example").with_body(b"v=0\r\n");
    let creds = client.authorize(&challenge, &request, &rng).unwrap();
    assert_eq!(
        server.verify(
            &creds,
            &altered,
            "nurse-42",
            &secret,
            ADDR,
            now,
            &mut tracker
        ),
        Err(DigestError::ResponseMismatch)
    );
}

#[test]
fn non_ascii_user_names_travel_as_username_star() {
    let rng = SystemRandom::new();
    let server = server(ServerConfig::new("clinic.example"));
    let challenge = server
        .challenge(5, b"", Algorithm::Sha256, false, &rng)
        .unwrap();
    let mut client = DigestClient::new("J\u{e4}s\u{f8}n Doe", Password::new("pw"));
    let request = Request::new("REGISTER", "sip:clinic.example");
    let header = client
        .authorize(&challenge, &request, &rng)
        .unwrap()
        .to_string();
    assert!(header.contains("username*=UTF-8''J%C3%A4s%C3%B8n%20Doe"));
    let creds = Credentials::parse(&header).unwrap();
    assert_eq!(creds.username.expose(), "J\u{e4}s\u{f8}n Doe");
    let mut tracker = NonceTracker::new(4);
    server
        .verify(
            &creds,
            &request,
            "J\u{e4}s\u{f8}n Doe",
            &Password::new("pw").into(),
            b"",
            6,
            &mut tracker,
        )
        .unwrap();
}

#[test]
fn secrets_never_show() {
    let p = Password::new("hunter2");
    assert!(!format!("{p:?}").contains("hunter2"));
    assert!(!format!("{:?}", UserSecret::from(p)).contains("hunter2"));
    let server = server(ServerConfig::new("clinic.example"));
    assert!(format!("{server:?}").contains("key: \"<redacted>\""));
    assert_eq!(
        DigestServer::new(&[0u8; 16], ServerConfig::new("x")).unwrap_err(),
        DigestError::WeakSecret
    );
}

#[test]
fn header_parsing_errors_are_typed() {
    assert_eq!(
        Challenge::parse("Basic realm=\"x\""),
        Err(DigestError::NotDigest)
    );
    assert_eq!(
        Challenge::parse("Digest nonce=\"n\""),
        Err(DigestError::MissingParam("realm"))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"),
        Err(DigestError::UnsupportedAlgorithm)
    );
    assert!(matches!(
        Challenge::parse("Digest realm=\"r\" nonce=\"n\""),
        Err(DigestError::Params(AuthParamError::Syntax {
            offset: 17,
            ..
        }))
    ));
    assert_eq!(
        Credentials::parse(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", nc=0000000G"
        ),
        Err(DigestError::InvalidParam("nc"))
    );
    let long = format!("Digest realm=\"{}\"", "a".repeat(9000));
    assert!(matches!(
        Challenge::parse(&long),
        Err(DigestError::Params(AuthParamError::TooLong { .. }))
    ));
}

/// MD5 is never a default (SECURITY.md): the default server offers and
/// accepts SHA-256 and SHA-512-256 only; MD5 answers are refused until a
/// realm enables it explicitly.
#[test]
fn md5_is_off_by_default_and_on_only_when_asked() {
    let rng = SystemRandom::new();
    let now = 1_700_000_000;
    let default = ServerConfig::new("clinic.example");
    assert_eq!(
        default.algorithms,
        [Algorithm::Sha256, Algorithm::Sha512_256]
    );
    let strict = server(default.clone());
    let offered: Vec<_> = strict
        .challenges(now, ADDR, false, &rng)
        .unwrap()
        .iter()
        .map(|c| c.algorithm.unwrap())
        .collect();
    assert_eq!(offered, [Algorithm::Sha256, Algorithm::Sha512_256]);
    assert!(
        strict
            .challenge(now, ADDR, Algorithm::Md5, false, &rng)
            .is_err()
    );
    // An MD5 answer (to a challenge from a server that allowed MD5, under
    // the same secret) is refused by the default server.
    let legacy = server(ServerConfig::legacy_md5_only("clinic.example"));
    let challenge = legacy
        .challenge(now, ADDR, Algorithm::Md5, false, &rng)
        .unwrap();
    let request = Request::new("REGISTER", "sip:clinic.example");
    let secret = UserSecret::Password(Password::new("correct horse"));
    let mut client = DigestClient::new("nurse-42", Password::new("correct horse"));
    let mut tracker = NonceTracker::new(16);
    assert!(
        round(
            &strict,
            &mut client,
            &challenge,
            &request,
            &secret,
            now,
            &mut tracker
        )
        .is_err()
    );
    let mut tracker = NonceTracker::new(16);
    round(
        &legacy,
        &mut client,
        &challenge,
        &request,
        &secret,
        now,
        &mut tracker,
    )
    .unwrap();
    assert_eq!(
        default.with_md5().algorithms,
        [Algorithm::Sha256, Algorithm::Sha512_256, Algorithm::Md5]
    );
}

/// A qop parameter naming only unknown options is refused, never read as
/// the absence of qop (which would mean an RFC 2069 challenge).
#[test]
fn challenge_with_only_unknown_qop_is_refused() {
    let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-foo\"");
    assert_eq!(c, Err(DigestError::InvalidParam("qop")));
    let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-foo,auth\"").unwrap();
    assert_eq!(c.qop, [Qop::Auth]);
    let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
    assert!(c.qop.is_empty());
}
