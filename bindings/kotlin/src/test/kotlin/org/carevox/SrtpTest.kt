package org.carevox

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import kotlin.random.Random

class SrtpTest {
    private val ssrcA = 0x11223344
    private val ssrcB = 0x55667788

    private fun call(): Pair<SrtpSession, SrtpSession> {
        val offer = sdpAudioOffer("192.0.2.10", 40000.toUShort(), "4711", listOf("PCMU"), "AES_CM_128_HMAC_SHA1_80")
        val answer = sdpAudioAnswer(offer.sdp, "192.0.2.20", 50000.toUShort(), "815", listOf("PCMU", "PCMA"))
        assertEquals(listOf("PCMU"), answer.codecs)
        val aliceRemote = sdpAnswerCrypto(answer.sdp, offer.localCrypto)
        val alice = SrtpSession.fromSdes(offer.localCrypto, aliceRemote)
        val bob = SrtpSession.fromSdes(answer.localCrypto, answer.remoteCrypto)
        alice.addOutboundStream(ssrcA.toUInt())
        bob.addOutboundStream(ssrcB.toUInt())
        return alice to bob
    }

    @Test
    fun sdesKeyedCallRefusesTamperedAndReplayedPackets() {
        val (alice, bob) = call()
        var previous = ByteArray(0)
        for (seq in 0 until 50) {
            val packet = rtpPacket(seq, ssrcA, ByteArray(160) { seq.toByte() })
            val wire = alice.protectRtp(packet)
            if (seq == 20) {
                val tampered = wire.copyOf().also { it[30] = (it[30].toInt() xor 1).toByte() }
                assertThrows<SrtpException.AuthenticationFailed> { bob.unprotectRtp(tampered) }
            }
            if (seq == 21) {
                val replayed = previous
                assertThrows<SrtpException.Replay> { bob.unprotectRtp(replayed) }
            }
            assertArrayEquals(packet, bob.unprotectRtp(wire))
            previous = wire
        }
        val back = rtpPacket(0, ssrcB, ByteArray(160) { 0x7f })
        assertArrayEquals(back, alice.unprotectRtp(bob.protectRtp(back)))
    }

    @Test
    fun batchOfOneSecondOfAudio() {
        val (alice, bob) = call()
        val packets = (0 until 50).map { rtpPacket(it, ssrcA, Random.nextBytes(160)) }
        val batch = alice.protectRtpBatch(packets.reduce(ByteArray::plus), packets.map { it.size.toUInt() })
        assertTrue(batch.statuses.all { it == PacketStatus.OK })
        val back = bob.unprotectRtpBatch(batch.data, batch.lengths)
        var at = 0
        for ((i, n) in back.lengths.withIndex()) {
            assertArrayEquals(packets[i], back.data.copyOfRange(at, at + n.toInt()))
            at += n.toInt()
        }
        // The same batch again: every packet is a replay, none is a crash.
        val again = bob.unprotectRtpBatch(batch.data, batch.lengths)
        assertTrue(again.statuses.all { it == PacketStatus.REPLAY })
    }

    @Test
    fun badInputIsTyped() {
        assertThrows<SrtpException.InvalidKey> {
            SrtpSession.fromKeys("AES_CM_128_HMAC_SHA1_80", ByteArray(16), ByteArray(30))
        }
        assertThrows<SrtpException.InvalidKey> { SrtpSession.fromSdes("nonsense", "nonsense") }
        val s = SrtpSession.fromKeys("AES_CM_128_HMAC_SHA1_80", ByteArray(30) { 1 }, ByteArray(30) { 1 })
        assertThrows<SrtpException.Malformed> { s.unprotectRtp(byteArrayOf(0x80.toByte(), 0, 1)) }
        repeat(200) {
            val garbage = Random.nextBytes(Random.nextInt(0, 300))
            assertThrows<SrtpException> { s.unprotectRtp(garbage) }
            assertThrows<SrtpException> { s.unprotectRtcp(garbage) }
        }
        assertThrows<SrtpException.InvalidBatch> { s.protectRtpBatch(ByteArray(10), listOf(11u)) }
    }
}
