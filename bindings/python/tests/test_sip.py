import hashlib
import re

import pytest

import carevox

INVITE = (
    b"INVITE sip:bob@biloxi.example SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@atlanta.example>;tag=1928301774\r\n'
    b"To: <sip:bob@biloxi.example>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5061;transport=tls>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_parse_read_headers_and_validate():
    m = carevox.SipMessage.parse(INVITE)
    assert m.is_request()
    assert m.method() == "INVITE"
    assert m.request_uri() == "sip:bob@biloxi.example"
    assert m.call_id() == "a84b4c76e66710@pc33.atlanta.example"
    cseq = m.cseq()
    assert (cseq.seq, cseq.method) == (314159, "INVITE")
    frm = m.from_header()
    assert frm.tag == "1928301774" and frm.display_name == "Alice"
    assert frm.uri == "sip:alice@atlanta.example"
    assert m.to_header().tag is None
    assert m.via_branch() == "z9hG4bK776asdhds"
    assert m.max_forwards() == 70
    assert m.header_values("call-id") == ["a84b4c76e66710@pc33.atlanta.example"]
    assert [h.name for h in m.headers()][:2] == ["Via", "Max-Forwards"]
    assert m.validate() is None


def test_validation_gives_the_status_code():
    bad_version = INVITE.replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia", 1)
    failure = carevox.SipMessage.parse(bad_version).validate()
    assert failure is not None and failure.status_code == 505
    m = carevox.SipMessage.parse(INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    assert m.max_forwards() == 0


def test_build_request_and_response():
    body = carevox.SipBody(content_type="application/sdp", bytes=b"v=0\r\n")
    req = carevox.sip_build_request(
        "OPTIONS", "sip:carevox.test",
        [carevox.SipHeader(name="Via", value="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx1"),
         carevox.SipHeader(name="Max-Forwards", value="70"),
         carevox.SipHeader(name="From", value="<sip:a@carevox.test>;tag=f1"),
         carevox.SipHeader(name="To", value="<sip:carevox.test>"),
         carevox.SipHeader(name="Call-ID", value="c1@127.0.0.1"),
         carevox.SipHeader(name="CSeq", value="1 OPTIONS")],
        body)
    again = carevox.SipMessage.parse(req.to_bytes())
    assert again.body() == b"v=0\r\n"
    assert again.content_type() == "application/sdp"
    assert again.validate() is None
    resp = carevox.sip_build_response(req, 200, "OK", "t9", [], None)
    parsed = carevox.SipMessage.parse(resp.to_bytes())
    assert parsed.status_code() == 200 and parsed.reason_phrase() == "OK"
    assert parsed.to_header().tag == "t9"
    assert parsed.call_id() == "c1@127.0.0.1"
    assert parsed.cseq().method == "OPTIONS"
    with pytest.raises(carevox.SipError.Build):
        carevox.sip_build_request("OPTIONS", "sip:x", [carevox.SipHeader(name="Bad Name", value="v")], None)


def test_garbage_is_a_typed_error():
    for garbage in [b"", b"\x00\xff\xfe", b"INVITE\r\n\r\n", b"SIP/2.0 abc OK\r\n\r\n"]:
        with pytest.raises(carevox.SipError.Parse):
            carevox.SipMessage.parse(garbage)
    with pytest.raises(carevox.SipError.Sdp):
        carevox.sdp_audio_answer("not sdp", "192.0.2.1", 5000, "1", ["PCMU"])
    with pytest.raises(carevox.SipError.Sdp):
        carevox.sdp_audio_offer("192.0.2.1", 5000, "1", ["NOPE"], "AES_CM_128_HMAC_SHA1_80")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_digest_challenge_answered():
    challenge = carevox.SipMessage.parse(
        b"SIP/2.0 401 Unauthorized\r\n"
        b"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKnashd92\r\n"
        b"From: <sip:alice@carevox.test>;tag=ja743ks76zlflH\r\n"
        b"To: <sip:alice@carevox.test>;tag=2493k59kd\r\n"
        b"Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.10\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b'WWW-Authenticate: Digest realm="carevox.test", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", '
        b'qop="auth", algorithm=MD5, opaque="5ccc069c403ebaf9f0171e9517f40e41"\r\n'
        b"Content-Length: 0\r\n\r\n")
    client = carevox.DigestClient("alice", "correct horse")
    auth = client.authorize(challenge, "REGISTER", "sip:carevox.test", None)
    assert auth.header_name == "Authorization"
    assert "correct horse" not in auth.value
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', auth.value))
    assert params["username"] == "alice" and params["realm"] == "carevox.test"
    assert params["nc"] == "00000001" and params["qop"] == "auth"
    ha1 = md5("alice:carevox.test:correct horse")
    ha2 = md5("REGISTER:sip:carevox.test")
    expected = md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
    assert params["response"] == expected
    second = client.authorize(challenge, "REGISTER", "sip:carevox.test", None)
    assert 'nc=00000002' in second.value
    with pytest.raises(carevox.SipError.Digest):
        client.authorize(carevox.SipMessage.parse(INVITE), "REGISTER", "sip:carevox.test", None)
