"""The boundary-cost benchmark (not a test): an empty UniFFI call, SRTP
protect of one 160-byte-payload packet per call, and the batch call with 50
packets per crossing, from Python. Run with bindings/bench.sh."""

import struct
import timeit

import carevox


def packet(seq):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x11223344) + b"\x55" * 160


def best_ns(stmt, number, repeat=5):
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e9


def main():
    s = carevox.SrtpSession.from_keys("AES_CM_128_HMAC_SHA1_80", b"\x01" * 30, b"\x02" * 30)
    s.add_outbound_stream(0x11223344)
    one = packet(0)
    packets = [packet(i) for i in range(50)]
    batch, lengths = b"".join(packets), [len(p) for p in packets]
    n = 20_000
    noop = best_ns(carevox.boundary_noop, n)
    single = best_ns(lambda: s.protect_rtp(one), n)
    per_batch = best_ns(lambda: s.protect_rtp_batch(batch, lengths), n // 50)
    print(f"python  empty call               {noop:8.0f} ns/call")
    print(f"python  protect_rtp (172 B)      {single:8.0f} ns/packet")
    print(f"python  protect_rtp_batch x50    {per_batch / 50:8.0f} ns/packet ({per_batch / 1000:.1f} us/batch)")


if __name__ == "__main__":
    main()
