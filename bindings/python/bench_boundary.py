"""The boundary-cost benchmark (not a test), Python side: an empty UniFFI
call, SRTP protect of one packet (12-byte header, 160-byte payload) per
call, and the batch call with 50 such packets (one second of 20 ms audio)
per crossing. Prints one tab-separated line per measurement
(`bench, python, <what>, <nanoseconds>`, the best of five timed loops),
which bindings/bench.sh gathers into its table. Run it through bindings/bench.sh (release build)."""

import struct
import time

import carevox

SSRC = 0x11223344


def packet(seq):
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, SSRC) + b"\x55" * 160


def best_ns(run, rounds=5):
    """The best of `rounds` runs of `run`, which returns (calls, seconds),
    per call."""
    return min(seconds / calls for calls, seconds in (run() for _ in range(rounds))) * 1e9


def timed(call, args):
    """Calls `call` once per item of `args`: (calls, seconds)."""
    start = time.perf_counter()
    for a in args:
        call(a)
    return len(args), time.perf_counter() - start


def main():
    s = carevox.SrtpSession.from_keys("AES_CM_128_HMAC_SHA1_80", b"\x01" * 30, b"\x02" * 30)
    s.add_outbound_stream(SSRC)
    # SRTP never protects the same packet index twice (the keystream would
    # repeat): every call gets the next sequence number, made beforehand so
    # that the loops time the calls only.
    n, rounds = 20_000, 5
    seq = iter(range(10**9))
    # The batch must go through whole, or the timing would be of refusals.
    out = s.protect_rtp_batch(packet(next(seq)), [172])
    if out.failures:
        raise SystemExit(f"bench: the batch was refused: {out.failures[0].message}")
    singles = [[packet(next(seq)) for _ in range(n)] for _ in range(rounds + 1)]
    batches = [[b"".join(packet(next(seq)) for _ in range(50)) for _ in range(n // 50)]
               for _ in range(rounds + 1)]
    lengths = [172] * 50

    nothing = [()] * n
    noop = best_ns(lambda: timed(lambda _: carevox.boundary_noop(), nothing), rounds)
    # The first list of each kind warms up; the next `rounds` are timed.
    timed(s.protect_rtp, singles[0])
    it = iter(singles[1:])
    single = best_ns(lambda: timed(s.protect_rtp, next(it)), rounds)
    timed(lambda b: s.protect_rtp_batch(b, lengths), batches[0])
    it = iter(batches[1:])
    per_batch = best_ns(lambda: timed(lambda b: s.protect_rtp_batch(b, lengths), next(it)), rounds)
    for what, ns in [("noop", noop), ("protect", single), ("batch", per_batch)]:
        print(f"bench\tpython\t{what}\t{ns:.0f}")


if __name__ == "__main__":
    main()
