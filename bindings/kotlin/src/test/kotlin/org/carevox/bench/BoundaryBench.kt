package org.carevox.bench

import org.carevox.SrtpSession
import org.carevox.boundaryNoop
import java.nio.ByteBuffer

// The boundary-cost benchmark (not a test): an empty UniFFI call, SRTP
// protect of one 160-byte-payload packet per call, and the batch call with
// 50 packets (one second of 20 ms audio) per crossing. Run with
// bindings/bench.sh, which builds the release cdylib first.

private fun packet(seq: Int): ByteArray =
    ByteBuffer.allocate(172).put(0x80.toByte()).put(0).putShort(seq.toShort())
        .putInt(seq * 160).putInt(0x11223344).put(ByteArray(160) { 0x55 }).array()

private inline fun nanosPer(ops: Int, rounds: Int, body: () -> Unit): Double {
    var best = Double.MAX_VALUE
    repeat(rounds) {
        val start = System.nanoTime()
        body()
        best = minOf(best, (System.nanoTime() - start).toDouble() / ops)
    }
    return best
}

fun main() {
    val session = SrtpSession.fromKeys("AES_CM_128_HMAC_SHA1_80", ByteArray(30) { 1 }, ByteArray(30) { 2 })
    session.addOutboundStream(0x11223344u)
    val one = packet(0)
    val batchPackets = (0 until 50).map(::packet)
    val batch = batchPackets.reduce(ByteArray::plus)
    val lengths = batchPackets.map { it.size.toUInt() }
    val n = 20_000
    // Warm-up (JIT, JNA).
    repeat(50_000) { boundaryNoop(); session.protectRtp(one) }
    repeat(2_000) { session.protectRtpBatch(batch, lengths) }

    val noop = nanosPer(n, 5) { repeat(n) { boundaryNoop() } }
    val single = nanosPer(n, 5) { repeat(n) { session.protectRtp(one) } }
    val batches = n / 50
    val perBatch = nanosPer(batches, 5) { repeat(batches) { session.protectRtpBatch(batch, lengths) } }
    println("kotlin  empty call               %8.0f ns/call".format(noop))
    println("kotlin  protect_rtp (172 B)      %8.0f ns/packet".format(single))
    println("kotlin  protect_rtp_batch x50    %8.0f ns/packet (%.1f us/batch)".format(perBatch / 50, perBatch / 1000))
}
