package org.carevox

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.nio.ByteBuffer
import java.nio.file.Path
import java.security.GeneralSecurityException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

// The Kotlin snippet of bindings/README.md is the body of `snippet` below,
// between the two `README` marks: one test runs it against the far end of
// the call, the other checks that the README shows it unchanged.
class ReadmeTest {
    /** The far end of the call: answers the offer, sends one packet. */
    private class Peer {
        lateinit var session: SrtpSession
        val sent = rtpPacket(1, 0x55667788, ByteArray(160) { 7 })

        fun sendInvite(offerSdp: String): String {
            val answer = sdpAudioAnswer(offerSdp, "192.0.2.20", 50000u, "815", listOf("PCMU"))
            session = SrtpSession.fromSdes(answer.localCrypto, answer.remoteCrypto)
            session.addOutboundStream(0x55667788u)
            return answer.sdp
        }

        fun receivePacket(): ByteArray = session.protectRtp(sent)
    }

    private class Made(val wire: ByteArray, val batch: PacketBatch, val audio: ByteArray?, val header: ByteArray)

    @Suppress("UNUSED_VARIABLE")
    private fun snippet(
        sendInvite: (String) -> String,
        receivePacket: () -> ByteArray,
        rtpPacket: ByteArray,
        sendQueue: List<ByteArray>,
        vaultDir: String,
        voicemail: ByteArray,
    ): Made {
        // README: begin
        // SRTP, keyed from the SDES exchange of the call's SDP.
        val offer = sdpAudioOffer("192.0.2.10", 40000u, "4711", listOf("PCMU"), "AES_CM_128_HMAC_SHA1_80")
        val answerSdp = sendInvite(offer.sdp) // the app's SIP layer: the 200 OK's body
        val remote = sdpAnswerCrypto(answerSdp, offer.localCrypto)
        val session = SrtpSession.fromSdes(offer.localCrypto, remote)
        session.addOutboundStream(0x11223344u)
        val wire = session.protectRtp(rtpPacket)
        // One crossing for a second of audio: 50 packets back to back in a direct buffer.
        val packets = ByteBuffer.allocateDirect(50 * 172)
        sendQueue.forEach { packets.put(it) }
        val batch = session.protectRtpBatch(packets.flip(), sendQueue.map { it.size.toUInt() })
        val audio = try {
            session.unprotectRtp(receivePacket()) // the app's RTP socket
        } catch (e: SrtpException.AuthenticationFailed) {
            null // altered or wrongly keyed: drop it
        } catch (e: SrtpException.Replay) {
            null // seen before: drop it
        }

        // Vault: data keys wrapped by the app's key store (on Android, an
        // AES/GCM/NoPadding key of the Android Keystore; here javax.crypto).
        class KeystoreKeys(private val kek: SecretKey) : VaultKeyProvider {
            override fun currentVersion(): UInt = 1u
            override fun wrap(version: UInt, dataKey: ByteArray, context: ByteArray): ByteArray {
                val cipher = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, kek) }
                cipher.updateAAD(context)
                return cipher.iv + cipher.doFinal(dataKey).also { dataKey.fill(0) }
            }
            override fun unwrap(version: UInt, wrapped: ByteArray, context: ByteArray): ByteArray {
                val cipher = Cipher.getInstance("AES/GCM/NoPadding")
                cipher.init(Cipher.DECRYPT_MODE, kek, GCMParameterSpec(128, wrapped, 0, 12))
                cipher.updateAAD(context)
                return try {
                    cipher.doFinal(wrapped, 12, wrapped.size - 12)
                } catch (e: GeneralSecurityException) {
                    throw CallbackException.Failed("unwrap refused")
                }
            }
        }
        val kek = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        val vault = Vault.open(vaultDir, KeystoreKeys(kek))
        vault.put("vm-0001", "audio/wav", 1_795_428_000uL, 1_984_000_000uL, mapOf("kind" to "voicemail"), voicemail)
        val header = vault.getRange("vm-0001", 0uL, 44u)
        // README: end
        return Made(wire, batch, audio, header)
    }

    @Test
    fun theSnippetRuns(@TempDir dir: Path) {
        val peer = Peer()
        val sendQueue = (1..50).map { rtpPacket(it, 0x11223344, ByteArray(160) { i -> i.toByte() }) }
        val first = rtpPacket(0, 0x11223344, ByteArray(160))
        val voicemail = "RIFF".toByteArray() + ByteArray(400)
        val vaultDir = dir.resolve("vault").toFile().apply { mkdirs() }.path
        val made = snippet(peer::sendInvite, peer::receivePacket, first, sendQueue, vaultDir, voicemail)
        assertArrayEquals(peer.sent, made.audio)
        assertArrayEquals(first, peer.session.unprotectRtp(made.wire))
        assertTrue(made.batch.failures.isEmpty())
        for ((i, wire) in split(made.batch.data, made.batch.lengths).withIndex()) {
            assertArrayEquals(sendQueue[i], peer.session.unprotectRtp(wire))
        }
        assertArrayEquals(voicemail.copyOf(44), made.header)
    }

    @Test
    fun theReadmeShowsThisSnippet() {
        val source = File("src/test/kotlin/org/carevox/ReadmeTest.kt").readText()
        val mine = source.substringAfter("// README: begin\n").substringBefore("        // README: end")
        val shown = File("../README.md").readText().substringAfter("### Kotlin\n").substringAfter("```kotlin\n").substringBefore("```")
        assertEquals(shown.trimEnd(), mine.trimIndent().trimEnd())
    }
}
