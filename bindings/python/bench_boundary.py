"""The boundary-cost benchmark (not a test), Python side: an empty UniFFI
call, SRTP protect of one packet (12-byte header, 160-byte payload) per
call, and the batch call with 50 such packets (one second of 20 ms audio)
per crossing. Prints one tab-separated line per measurement
(`bench, python, <what>, <nanoseconds>`), which bindings/bench.sh gathers
into its table. Run it through bindings/bench.sh (release build)."""

import struct
import timeit

import carevox

SSRC = 0x11223344


def packet(seq):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, SSRC) + b"\x55" * 160


def best_ns(stmt, number, repeat=5):
    """The best of `repeat` timings of `number` calls, per call."""
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e9


def main():
    s = carevox.SrtpSession.from_keys("AES_CM_128_HMAC_SHA1_80", b"\x01" * 30, b"\x02" * 30)
    s.add_outbound_stream(SSRC)
    one = packet(0)
    packets = [packet(i) for i in range(50)]
    batch, lengths = b"".join(packets), [len(p) for p in packets]
    # The batch must go through whole, or the timing would be of refusals.
    out = s.protect_rtp_batch(batch, lengths)
    if out.failures:
        raise SystemExit(f"bench: the batch was refused: {out.failures[0].message}")
    n = 20_000
    noop = best_ns(carevox.boundary_noop, n)
    single = best_ns(lambda: s.protect_rtp(one), n)
    per_batch = best_ns(lambda: s.protect_rtp_batch(batch, lengths), n // 50)
    for what, ns in [("noop", noop), ("protect", single), ("batch", per_batch)]:
        print(f"bench\tpython\t{what}\t{ns:.0f}")


if __name__ == "__main__":
    main()
