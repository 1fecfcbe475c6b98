package org.carevox.bench

import org.carevox.SrtpDirectBatch
import org.carevox.SrtpSession
import org.carevox.boundaryNoop
import java.nio.ByteBuffer

// The boundary-cost benchmark (not a test), Kotlin side: an empty UniFFI
// call, SRTP protect of one packet (12-byte header, 160-byte payload) per
// call, and the batch call with 50 such packets (one second of 20 ms audio)
// per crossing, through UniFFI and through the direct-buffer path
// (SrtpDirectBatch), each the best of five timed loops after a warm-up (JIT,
// JNA). Prints one tab-separated line per measurement (`bench, kotlin,
// <what>, <nanoseconds>`), which bindings/bench.sh gathers into its table.
// Run it through bindings/bench.sh (release build).

private const val SSRC = 0x11223344

private fun packet(seq: Int): ByteArray =
    ByteBuffer.allocate(172).put(0x80.toByte()).put(0).putShort(seq.toShort())
        .putInt(seq * 160).putInt(SSRC).put(ByteArray(160) { 0x55 }).array()

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
    session.addOutboundStream(SSRC.toUInt())
    // SRTP never protects the same packet index twice (the keystream would
    // repeat): each call gets the next sequence number, written into the
    // packet's header in place (two byte stores, nothing allocated).
    var seq = 0
    val one = packet(0)
    fun protectNext() {
        seq++
        one[2] = (seq shr 8).toByte()
        one[3] = seq.toByte()
        session.protectRtp(one)
    }
    // The batch call borrows a direct buffer: filled once, its 50 sequence
    // numbers renewed before each call.
    val batch = ByteBuffer.allocateDirect(50 * 172)
    repeat(50) { batch.put(packet(0)) }
    batch.flip()
    val lengths = List(50) { 172u }
    fun protectNextBatch() {
        for (i in 0 until 50) {
            seq++
            batch.putShort(i * 172 + 2, seq.toShort())
        }
        val out = session.protectRtpBatch(batch, lengths)
        check(out.failures.isEmpty()) { "bench: the batch was refused: ${out.failures.first().message}" }
    }

    // The direct path: the 50 packets are written into its input buffer
    // (the caller's buffer: a codec would write there) and their sequence
    // numbers renewed before each call; the output is read in place.
    val direct = SrtpDirectBatch(session, 50, 172)
    val template = packet(0)
    fun protectNextDirect() {
        val input = direct.input
        for (i in 0 until 50) {
            seq++
            input.put(template)
            input.putShort(i * 172 + 2, seq.toShort())
            direct.endPacket()
        }
        check(direct.protect() == 50 * 182) { "bench: the direct batch was refused: ${direct.status(0)}" }
    }

    val n = 20_000
    repeat(50_000) { boundaryNoop(); protectNext() }
    repeat(2_000) { protectNextBatch(); protectNextDirect() }
    val noop = nanosPer(n, 5) { repeat(n) { boundaryNoop() } }
    val single = nanosPer(n, 5) { repeat(n) { protectNext() } }
    val batches = n / 50
    val perBatch = nanosPer(batches, 5) { repeat(batches) { protectNextBatch() } }
    val perDirect = nanosPer(batches, 5) { repeat(batches) { protectNextDirect() } }
    direct.close()
    for ((what, ns) in listOf("noop" to noop, "protect" to single, "batch" to perBatch, "direct" to perDirect)) {
        println("bench\tkotlin\t$what\t%.0f".format(ns))
    }
}
