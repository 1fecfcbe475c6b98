package org.carevox

import java.nio.ByteBuffer
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** 2026-11-23 10:00 UTC: within the day hours of the sample hospital policy. */
const val NOW: ULong = 1_795_428_000uL

fun rtpPacket(seq: Int, ssrc: Int, payload: ByteArray): ByteArray =
    ByteBuffer.allocate(12 + payload.size)
        .put(0x80.toByte()).put(0)
        .putShort(seq.toShort()).putInt(seq * 160).putInt(ssrc)
        .put(payload)
        .array()

/**
 * Packets back to back in a direct buffer, as the batch calls borrow them
 * (position 0, limit at the end of the last packet).
 */
fun direct(packets: List<ByteArray>): ByteBuffer {
    val buffer = ByteBuffer.allocateDirect(packets.sumOf { it.size })
    packets.forEach { buffer.put(it) }
    return buffer.flip()
}

/** A batch's output buffer cut into its packets (empty for refused ones). */
fun split(data: ByteArray, lengths: List<UInt>): List<ByteArray> {
    var at = 0
    return lengths.map { n -> data.copyOfRange(at, at + n.toInt()).also { at += n.toInt() } }
}

/**
 * What an Android app does with the Keystore: the key-encryption key stays
 * in this object (in the Keystore it would never leave the secure hardware);
 * data keys are wrapped with AES-256-GCM bound to the object id.
 */
class KeystoreKeys : VaultKeyProvider {
    private val kek: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    private val random = SecureRandom()
    var calls = 0

    override fun currentVersion(): UInt = 1u

    override fun wrap(version: UInt, dataKey: ByteArray, context: ByteArray): ByteArray {
        calls++
        if (version != 1u) throw CallbackException.Failed("no key version $version")
        val nonce = ByteArray(12).also(random::nextBytes)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, kek, GCMParameterSpec(128, nonce))
        cipher.updateAAD(context)
        val sealed = cipher.doFinal(dataKey)
        dataKey.fill(0)
        return nonce + sealed
    }

    override fun unwrap(version: UInt, wrapped: ByteArray, context: ByteArray): ByteArray {
        calls++
        if (version != 1u) throw CallbackException.Failed("no key version $version")
        try {
            val cipher = Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(Cipher.DECRYPT_MODE, kek, GCMParameterSpec(128, wrapped, 0, 12))
            cipher.updateAAD(context)
            return cipher.doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw CallbackException.Failed("unwrap failed")
        }
    }
}
