package org.carevox

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.nio.file.Path
import java.security.MessageDigest

class VaultTest {
    /** A recording produced chunk by chunk, never whole in memory. */
    class Recorder(private var left: Long) : ByteSource {
        val digest: MessageDigest = MessageDigest.getInstance("SHA-256")
        private var n = 0
        override fun read(maxLen: UInt): ByteArray {
            val size = minOf(maxLen.toLong(), left, 40_000L).toInt()
            if (size == 0) return ByteArray(0)
            val chunk = ByteArray(size) { ((it + n) * 31).toByte() }
            n += size
            left -= size
            digest.update(chunk)
            return chunk
        }
        fun byteAt(offset: Long): Byte {
            // Chunks are 40000 bytes except the last: byte i of chunk k is ((i + 40000k) * 31).
            return (offset * 31).toInt().toByte()
        }
    }

    class Player : ByteSink {
        val digest: MessageDigest = MessageDigest.getInstance("SHA-256")
        var total = 0L
        override fun write(data: ByteArray) {
            digest.update(data)
            total += data.size
        }
    }

    @Test
    fun voicemailStreamedThroughKeystoreKeysAndReadInRanges(@TempDir dir: Path) {
        val keys = KeystoreKeys()
        val vault = Vault.open(dir.resolve("vault").toString(), keys)
        val size = 3L * 1024 * 1024 + 77
        val rec = Recorder(size)
        val info = vault.putStream("vm-1", "audio/wav", NOW, NOW + 100_000u, mapOf("patient" to "Patient/42"), rec)
        assertEquals(size.toULong(), info.len)
        assertTrue(keys.calls > 0)
        val player = Player()
        val back = vault.getStream("vm-1", player)
        assertEquals(mapOf("patient" to "Patient/42"), back.labels)
        assertEquals(size, player.total)
        assertArrayEquals(rec.digest.digest(), player.digest.digest())
        for (offset in listOf(0L, 65_530L, size - 50)) {
            val range = vault.getRange("vm-1", offset.toULong(), 100u)
            assertEquals(minOf(100L, size - offset).toInt(), range.size)
            range.forEachIndexed { i, b -> assertEquals(rec.byteAt(offset + i), b) }
        }
        assertEquals(listOf("vm-1"), vault.list().map { it.id })
        vault.shred("vm-1")
        assertThrows<VaultException.NotFound> { vault.get("vm-1") }
    }

    @Test
    fun corruptFileAndForeignFailuresAreTyped(@TempDir dir: Path) {
        val vault = Vault.open(dir.toString(), KeystoreKeys())
        vault.put("rec", "audio/wav", NOW, NOW + 10u, mapOf(), ByteArray(150_000) { it.toByte() })
        val biggest = dir.toFile().walk().filter(File::isFile).maxByOrNull(File::length)!!
        val bytes = biggest.readBytes()
        bytes[bytes.size / 2] = (bytes[bytes.size / 2].toInt() xor 1).toByte()
        biggest.writeBytes(bytes)
        assertThrows<VaultException.Corrupt> { vault.get("rec") }
        val failing = object : ByteSource {
            override fun read(maxLen: UInt): ByteArray = throw CallbackException.Failed("recorder stopped")
        }
        assertThrows<VaultException.Stream> { vault.putStream("x", "audio/wav", NOW, NOW, mapOf(), failing) }
        assertThrows<VaultException.Key> { Vault.open(dir.toString(), KeystoreKeys()).get("rec") }
    }
}
