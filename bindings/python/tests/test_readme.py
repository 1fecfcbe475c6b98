"""The Python snippet of bindings/README.md, run as it is shown: the test
plays the peer (answers the offer, sends a packet) and gives the snippet a
vault directory."""

import pathlib
import re
import struct

import carevox

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def python_snippet():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "README.md shows one Python snippet"
    return blocks[0]


def rtp(seq, ssrc):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes([seq & 0xFF]) * 160


class Peer:
    """The far end of the call: answers the offer, sends one packet."""

    def __init__(self):
        self.session = None
        self.sent = rtp(1, 0x55667788)

    def send_invite(self, offer_sdp):
        answer = carevox.sdp_audio_answer(offer_sdp, "192.0.2.20", 50000, "815", ["PCMU"])
        self.session = carevox.SrtpSession.from_sdes(answer.local_crypto, answer.remote_crypto)
        self.session.add_outbound_stream(0x55667788)
        return answer.sdp

    def receive_packet(self):
        return self.session.protect_rtp(self.sent)


def test_the_readme_snippet_runs(tmp_path):
    peer = Peer()
    (tmp_path / "vault").mkdir()
    scope = dict(send_invite=peer.send_invite, receive_packet=peer.receive_packet,
                 rtp_packet=rtp(0, 0x11223344),
                 packets=[rtp(i, 0x11223344) for i in range(1, 51)],
                 vault_dir=str(tmp_path / "vault"))
    exec(compile(python_snippet(), "README.md (Python)", "exec"), scope)

    # What the snippet made works with the far end.
    assert scope["audio"] == peer.sent
    assert peer.session.unprotect_rtp(scope["wire"]) == rtp(0, 0x11223344)
    batch = scope["batch"]
    assert scope["not_sent"] == {} and len(batch.lengths) == 50
    at = 0
    for i, n in enumerate(batch.lengths, start=1):
        assert peer.session.unprotect_rtp(batch.data[at:at + n]) == rtp(i, 0x11223344)
        at += n
    assert scope["header"] == b"RIFF" + bytes(40)
