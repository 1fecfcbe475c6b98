package org.carevox

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.ByteBuffer
import kotlin.random.Random

class SrtpDirectTest {
    private val ssrcA = 0x11223344

    private fun call(): Pair<SrtpSession, SrtpSession> {
        val offer = sdpAudioOffer("192.0.2.10", 40000.toUShort(), "4711", listOf("PCMU"), "AES_CM_128_HMAC_SHA1_80")
        val answer = sdpAudioAnswer(offer.sdp, "192.0.2.20", 50000.toUShort(), "815", listOf("PCMU"))
        val alice = SrtpSession.fromSdes(offer.localCrypto, sdpAnswerCrypto(answer.sdp, offer.localCrypto))
        val bob = SrtpSession.fromSdes(answer.localCrypto, answer.remoteCrypto)
        alice.addOutboundStream(ssrcA.toUInt())
        return alice to bob
    }

    /** Packet `i` of the batch's output. */
    private fun SrtpDirectBatch.packet(i: Int): ByteArray {
        val at = (0 until i).sumOf { outputLength(it) }
        return ByteArray(outputLength(i)).also { output.get(at, it) }
    }

    @Test
    fun roundTripRefusesTamperedAndReplayedPacketsBatchAfterBatch() {
        val (alice, bob) = call()
        val send = SrtpDirectBatch(alice, 50, 172)
        val receive = SrtpDirectBatch(bob, 51, 182)
        var seq = 0
        // Two batches through the same buffers: they are reused.
        repeat(2) { round ->
            val packets = List(50) { rtpPacket(seq++, ssrcA, Random.nextBytes(160)) }
            packets.forEach(send::add)
            val written = send.protect()
            assertEquals(50 * 182, written)
            assertEquals(written, send.output.limit())
            val wires = List(50) { send.packet(it) }
            assertEquals(List(50) { PacketStatus.OK }, List(50) { send.status(it) })
            // The same bytes as the UniFFI path's output would carry: bob's
            // UniFFI session could read them too, but here the direct path
            // reads them, with packet 7 altered and packet 3 replayed.
            wires.forEachIndexed { i, w ->
                if (i == 7) w[40] = (w[40].toInt() xor 0x80).toByte()
                receive.add(w)
            }
            receive.add(wires[3])
            val plain = receive.unprotect()
            assertEquals(49 * 172, plain, "round $round")
            val expected = List(51) {
                when (it) {
                    7 -> PacketStatus.AUTHENTICATION_FAILED
                    50 -> PacketStatus.REPLAY
                    else -> PacketStatus.OK
                }
            }
            assertEquals(expected, List(51) { receive.status(it) })
            assertEquals(0, receive.outputLength(7))
            assertEquals(0, receive.outputLength(50))
            for (i in 0 until 50) {
                if (i != 7) assertArrayEquals(packets[i], receive.packet(i), "round $round packet $i")
            }
        }
        send.close()
        receive.close()
    }

    @Test
    fun unknownStreamIsRefusedAloneAndTheUniffiPathReadsTheOutput() {
        val (alice, bob) = call()
        SrtpDirectBatch(alice, 3, 172).use { send ->
            send.add(rtpPacket(0, ssrcA, ByteArray(160) { 1 }))
            send.add(rtpPacket(0, 0x0BADF00D, ByteArray(160)))
            send.add(rtpPacket(1, ssrcA, ByteArray(160) { 2 }))
            assertEquals(2 * 182, send.protect())
            assertEquals(listOf(PacketStatus.OK, PacketStatus.STREAM, PacketStatus.OK), List(3) { send.status(it) })
            assertArrayEquals(rtpPacket(1, ssrcA, ByteArray(160) { 2 }), bob.unprotectRtp(send.packet(2)))
        }
    }

    @Test
    fun wrongSizesAreTypedAndLeaveTheBatchUsable() {
        val (alice, _) = call()
        // SRTP protects each packet index once: every packet gets its own.
        var seq = 0
        fun packet() = rtpPacket(seq++, ssrcA, ByteArray(160))
        SrtpDirectBatch(alice, 2, 172).use { batch ->
            // Lengths that do not describe the input.
            batch.add(packet())
            batch.inputLengths.put(0, 173)
            assertThrows<SrtpException.InvalidBatch> { batch.protect() }
            batch.add(packet())
            batch.add(packet())
            batch.inputLengths.put(1, 100)
            assertThrows<SrtpException.InvalidBatch> { batch.protect() }
            // More packets than the batch holds.
            batch.add(packet())
            batch.add(packet())
            assertThrows<SrtpException.InvalidBatch> { batch.endPacket() }
            assertEquals(2 * 182, batch.protect())
        }
        // An output buffer without room for the tags.
        SrtpDirectBatch(alice, 2, 172, outputBytes = 2 * 172 + 19).use { batch ->
            batch.add(packet())
            batch.add(packet())
            assertThrows<SrtpException.InvalidBatch> { batch.protect() }
            batch.add(packet())
            assertEquals(182, batch.protect())
        }
    }

    @Test
    fun theBatchKeepsItsSessionAliveAndRefusesUseAfterClose() {
        val (alice, bob) = call()
        val send = SrtpDirectBatch(alice, 1, 172)
        alice.close()
        send.add(rtpPacket(5, ssrcA, ByteArray(160) { 9 }))
        assertEquals(182, send.protect())
        assertArrayEquals(rtpPacket(5, ssrcA, ByteArray(160) { 9 }), bob.unprotectRtp(send.packet(0)))
        send.close()
        send.close()
        assertThrows<IllegalStateException> { send.protect() }
    }
}

// The direct-path snippet of bindings/README.md is the body of `snippet`
// below, between the two `README direct` marks: one test runs it, the other
// checks that the README shows it unchanged.
class ReadmeDirectTest {
    @Suppress("UNUSED_VARIABLE")
    private fun snippet(session: SrtpSession, sendQueue: List<ByteArray>, send: (ByteBuffer) -> Unit) {
        // README direct: begin
        // One batch per direction, made once per call and reused batch after
        // batch: its direct buffers are the media path's own. Up to 50 packets
        // of up to 172 bytes; the output has room for each one's SRTP tag.
        val out = SrtpDirectBatch(session, maxPackets = 50, maxPacketBytes = 172)
        for (frame in sendQueue) {
            out.input.put(frame) // or let the codec write into out.input
            out.endPacket()
        }
        out.protect() // one crossing; out.output holds the protected packets
        var at = 0
        for (i in 0 until sendQueue.size) {
            val n = out.outputLength(i) // 0 if refused: see out.status(i)
            if (out.status(i) == PacketStatus.OK) send(out.output.duplicate().position(at).limit(at + n))
            at += n
        }
        out.close() // when the call ends
        // README direct: end
    }

    @Test
    fun theSnippetRuns() {
        val k1 = ByteArray(30) { 1 }
        val k2 = ByteArray(30) { 2 }
        val session = SrtpSession.fromKeys("AES_CM_128_HMAC_SHA1_80", k1, k2)
        val peer = SrtpSession.fromKeys("AES_CM_128_HMAC_SHA1_80", k2, k1)
        session.addOutboundStream(0x11223344u)
        val sendQueue = (1..50).map { rtpPacket(it, 0x11223344, ByteArray(160) { i -> i.toByte() }) }
        val sent = mutableListOf<ByteArray>()
        snippet(session, sendQueue) { b -> sent += ByteArray(b.remaining()).also { b.get(it) } }
        assertEquals(50, sent.size)
        sent.forEachIndexed { i, w -> assertArrayEquals(sendQueue[i], peer.unprotectRtp(w)) }
    }

    @Test
    fun theReadmeShowsThisSnippet() {
        val source = java.io.File("src/test/kotlin/org/carevox/SrtpDirectTest.kt").readText()
        val mine = source.substringAfter("// README direct: begin\n").substringBefore("        // README direct: end")
        val shown = java.io.File("../README.md").readText()
            .substringAfter("<!-- checked by ReadmeDirectTest -->\n```kotlin\n").substringBefore("```")
        assertEquals(shown.trimEnd(), mine.trimIndent().trimEnd())
    }
}
