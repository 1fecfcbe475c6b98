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
        val batch = alice.protectRtpBatch(direct(packets), packets.map { it.size.toUInt() })
        assertTrue(batch.statuses.all { it == PacketStatus.OK })
        assertTrue(batch.failures.isEmpty())
        // Packet 7 altered on the way, packet 3 replayed at the end.
        val wires = split(batch.data, batch.lengths)
        val incoming = wires.toMutableList()
        incoming[7] = wires[7].copyOf().also { it[40] = (it[40].toInt() xor 0x80).toByte() }
        incoming += wires[3]
        val back = bob.unprotectRtpBatch(direct(incoming), incoming.map { it.size.toUInt() })
        assertEquals(listOf(7u to PacketStatus.AUTHENTICATION_FAILED, 50u to PacketStatus.REPLAY),
            back.failures.map { it.index to it.status })
        assertEquals(0u, back.lengths[7])
        val plain = split(back.data, back.lengths)
        for (i in 0 until 50) {
            if (i != 7) assertArrayEquals(packets[i], plain[i])
        }
        // The same batch again: every packet is a replay, none is a crash.
        val again = bob.unprotectRtpBatch(direct(wires), batch.lengths)
        // Packet 7 was refused altered, so its original is no replay.
        assertEquals(PacketStatus.OK, again.statuses[7])
        assertEquals((0u until 50u).filter { it != 7u }, again.failures.map { it.index })
        assertTrue(again.failures.all { it.status == PacketStatus.REPLAY })
    }

    @Test
    fun batchInputMustBeADirectBuffer() {
        val (alice, _) = call()
        val packet = rtpPacket(0, ssrcA, ByteArray(160))
        assertThrows<IllegalArgumentException> {
            alice.protectRtpBatch(java.nio.ByteBuffer.wrap(packet), listOf(packet.size.toUInt()))
        }
        // A packet that cannot be protected is refused alone, with its index.
        val packets = listOf(packet, rtpPacket(1, 0x0BADF00D, ByteArray(160)), rtpPacket(2, ssrcA, ByteArray(160)))
        val out = alice.protectRtpBatch(direct(packets), packets.map { it.size.toUInt() })
        assertEquals(listOf(PacketStatus.OK, PacketStatus.STREAM, PacketStatus.OK), out.statuses)
        assertEquals(listOf(1u), out.failures.map { it.index })
        assertEquals(out.lengths[0] + out.lengths[2], out.data.size.toUInt())
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
        assertThrows<SrtpException.InvalidBatch> { s.protectRtpBatch(direct(listOf(ByteArray(10))), listOf(11u)) }
    }
}
