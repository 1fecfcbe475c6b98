import os

import pytest

import carevox
from conftest import rtp_packet

SSRC_A = 0x11223344
SSRC_B = 0x55667788


def sdes_call():
    """Alice offers, Bob answers; each keys a session from the SDES lines."""
    offer = carevox.sdp_audio_offer("192.0.2.10", 40000, "4711", ["PCMU", "PCMA"],
                                    "AES_CM_128_HMAC_SHA1_80")
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in offer.sdp
    answer = carevox.sdp_audio_answer(offer.sdp, "192.0.2.20", 50000, "815", ["PCMU"])
    assert answer.codecs == ["PCMU"]
    assert answer.remote_port == 40000
    assert answer.remote_address == "192.0.2.10"
    assert answer.remote_crypto == offer.local_crypto
    alice_remote = carevox.sdp_answer_crypto(answer.sdp, offer.local_crypto)
    assert alice_remote == answer.local_crypto
    alice = carevox.SrtpSession.from_sdes(offer.local_crypto, alice_remote)
    bob = carevox.SrtpSession.from_sdes(answer.local_crypto, answer.remote_crypto)
    alice.add_outbound_stream(SSRC_A)
    bob.add_outbound_stream(SSRC_B)
    return alice, bob


def test_sdes_call_both_ways_with_tamper_and_replay_refused():
    alice, bob = sdes_call()
    assert alice.suite() == bob.suite()
    previous = None
    for seq in range(50):
        packet = rtp_packet(seq, SSRC_A, bytes([seq]) * 160)
        wire = alice.protect_rtp(packet)
        assert wire != packet and len(wire) == len(packet) + alice.rtp_overhead()
        if seq == 20:
            tampered = bytearray(wire)
            tampered[30] ^= 0x01
            with pytest.raises(carevox.SrtpError.AuthenticationFailed):
                bob.unprotect_rtp(bytes(tampered))
        if seq == 21:
            with pytest.raises(carevox.SrtpError.Replay):
                bob.unprotect_rtp(previous)
        assert bob.unprotect_rtp(wire) == packet
        previous = wire
    back = rtp_packet(0, SSRC_B, b"\x7f" * 160)
    assert alice.unprotect_rtp(bob.protect_rtp(back)) == back
    # Alice's own key does not open her packets at her inbound side.
    with pytest.raises(carevox.SrtpError.AuthenticationFailed):
        alice.unprotect_rtp(alice.protect_rtp(rtp_packet(99, SSRC_A, b"\0" * 160)))


def test_rtcp_round_trip_and_tamper():
    alice, bob = sdes_call()
    # A receiver report: V=2, RC=0, PT=201, length 1, SSRC.
    rr = bytes([0x80, 201, 0x00, 0x01]) + SSRC_A.to_bytes(4, "big")
    wire = alice.protect_rtcp(rr)
    assert bob.unprotect_rtcp(wire) == rr
    bad = bytearray(alice.protect_rtcp(rr))
    bad[5] ^= 0xFF
    with pytest.raises(carevox.SrtpError.AuthenticationFailed):
        bob.unprotect_rtcp(bytes(bad))


def test_batches_match_single_calls_and_refuse_per_packet():
    alice, bob = sdes_call()
    packets = [rtp_packet(seq, SSRC_A, os.urandom(160)) for seq in range(50)]
    batch = alice.protect_rtp_batch(b"".join(packets), [len(p) for p in packets])
    assert len(batch.lengths) == 50
    assert all(s == carevox.PacketStatus.OK for s in batch.statuses)
    wires, at = [], 0
    for n in batch.lengths:
        wires.append(batch.data[at:at + n])
        at += n
    assert at == len(batch.data)
    # Replay packet 3 and alter packet 7 inside one unprotect batch.
    tampered = bytearray(wires[7])
    tampered[40] ^= 0x80
    incoming = wires[:7] + [bytes(tampered)] + wires[7:] + [wires[3]]
    out = bob.unprotect_rtp_batch(b"".join(incoming), [len(w) for w in incoming])
    assert out.statuses[7] == carevox.PacketStatus.AUTHENTICATION_FAILED
    assert out.statuses[-1] == carevox.PacketStatus.REPLAY
    assert out.lengths[7] == 0 and out.lengths[-1] == 0
    # The refused packets, with their index, kind and a message.
    assert [(f.index, f.status) for f in out.failures] == [
        (7, carevox.PacketStatus.AUTHENTICATION_FAILED), (51, carevox.PacketStatus.REPLAY)]
    assert all(f.message for f in out.failures)
    plain, at = [], 0
    for n, s in zip(out.lengths, out.statuses):
        if s == carevox.PacketStatus.OK:
            plain.append(out.data[at:at + n])
        at += n
    assert plain == packets


def test_bad_input_is_a_typed_error():
    with pytest.raises(carevox.SrtpError.InvalidKey):
        carevox.SrtpSession.from_keys("AES_CM_128_HMAC_SHA1_80", b"\x01" * 29, b"\x02" * 30)
    with pytest.raises(carevox.SrtpError.InvalidKey):
        carevox.SrtpSession.from_keys("NO_SUCH_SUITE", b"\x01" * 30, b"\x02" * 30)
    with pytest.raises(carevox.SrtpError.InvalidKey):
        carevox.SrtpSession.from_sdes("garbage", "1 AES_CM_128_HMAC_SHA1_80 inline:xyz")
    s = carevox.SrtpSession.from_keys("AES_CM_128_HMAC_SHA1_80", b"\x01" * 30, b"\x01" * 30)
    with pytest.raises(carevox.SrtpError.Malformed):
        s.unprotect_rtp(b"\x80\x00\x01")
    with pytest.raises(carevox.SrtpError):
        s.unprotect_rtp(os.urandom(200))
    with pytest.raises(carevox.SrtpError.Stream):
        s.protect_rtp(rtp_packet(1, 0xDEADBEEF, b"\0" * 160))
    with pytest.raises(carevox.SrtpError.InvalidBatch):
        s.protect_rtp_batch(b"\0" * 100, [60, 60])
    with pytest.raises(carevox.SrtpError.InvalidBatch):
        s.unprotect_rtp_batch(b"\0" * 100, [60])
    # The batch buffer is borrowed, not copied: it must be `bytes`.
    with pytest.raises(TypeError):
        s.protect_rtp_batch(bytearray(100), [100])
    # A packet that cannot be protected is refused alone, with its index.
    s.add_outbound_stream(0x11223344)
    packets = [rtp_packet(1, 0x11223344, b"\0" * 160), rtp_packet(2, 0xDEADBEEF, b"\0" * 160),
               b"\x80\x00", rtp_packet(3, 0x11223344, b"\0" * 160)]
    out = s.protect_rtp_batch(b"".join(packets), [len(p) for p in packets])
    assert out.statuses == [carevox.PacketStatus.OK, carevox.PacketStatus.STREAM,
                            carevox.PacketStatus.MALFORMED, carevox.PacketStatus.OK]
    assert [f.index for f in out.failures] == [1, 2]
    assert out.lengths[1:3] == [0, 0] and len(out.data) == out.lengths[0] + out.lengths[3]
    for _ in range(200):
        garbage = os.urandom(os.urandom(1)[0])
        with pytest.raises(carevox.SrtpError):
            s.unprotect_rtp(garbage)
        with pytest.raises(carevox.SrtpError):
            s.unprotect_rtcp(garbage)
