package org.carevox

import com.sun.jna.Native
import com.sun.jna.Pointer
import java.nio.Buffer
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.IntBuffer

/**
 * The direct media path for the JVM: SRTP batches through direct buffers
 * allocated once and reused, without the `PacketBatch` record of
 * [SrtpSession.protectRtpBatch] (which UniFFI serialises and Kotlin copies
 * into a `ByteArray`: two copies of each packet on the way out).
 *
 * The caller writes its packets back to back into [input] (from its
 * position 0; a codec's output or `DatagramChannel.receive(batch.input)`
 * goes there directly) and calls [endPacket] after each one. [protect] or
 * [unprotect] then copies each packet once into [output], where the Rust
 * side (the same carevox-ffi code as the UniFFI batch) processes it in
 * place: the results are read from [output] directly, with no further
 * copy. [outputLength] and [status] say what became of packet `i`; a
 * refused packet takes no room in [output].
 *
 * Not for sharing between threads without care: calls are serialised
 * (`@Synchronized`), but [input] and [output] are plain buffers. Keep one
 * instance per media direction and reuse it batch after batch; [close] it
 * when the call ends (it holds a reference to the session).
 */
class SrtpDirectBatch(
    session: SrtpSession,
    /** The most packets one batch takes (50 is one second of 20 ms audio). */
    val maxPackets: Int,
    /** The longest packet, before protection. */
    val maxPacketBytes: Int,
    /**
     * The output buffer's size: by default room for [maxPackets] packets of
     * [maxPacketBytes] plus the session's SRTP overhead (tag and MKI) each.
     */
    outputBytes: Int = maxPackets * (maxPacketBytes + session.rtpOverhead().toInt()),
) : AutoCloseable {
    /** The packets to process, back to back from position 0. */
    val input: ByteBuffer = ByteBuffer.allocateDirect(maxPackets * maxPacketBytes)

    /** The processed packets, back to back from position 0, after a call. */
    val output: ByteBuffer = ByteBuffer.allocateDirect(outputBytes)

    /** Each input packet's length; [endPacket] fills it. */
    val inputLengths: IntBuffer = ints(maxPackets)
    private val outputLengths: IntBuffer = ints(maxPackets)
    private val statuses: ByteBuffer = ByteBuffer.allocateDirect(maxPackets)

    private val inputAddress = address(input)
    private val outputAddress = address(output)
    private val inputLengthsAddress = address(inputLengths)
    private val outputLengthsAddress = address(outputLengths)
    private val statusesAddress = address(statuses)

    /** Our own reference to the session: taken here, given back by [close]. */
    private val handle: Long = session.uniffiCloneHandle()
    private val cleanable = UniffiLib.CLEANER.register(this, Release(handle))
    private var closed = false

    /** The packets added since the last call. */
    var count: Int = 0
        private set

    /** The bytes of [input] the [count] packets cover. */
    private var filled = 0

    init {
        require(maxPackets > 0 && maxPacketBytes > 0) { "maxPackets and maxPacketBytes must be positive" }
    }

    /** Marks the end of the packet just written into [input]. */
    fun endPacket() {
        if (count == maxPackets) throw SrtpException.InvalidBatch("the batch already holds $maxPackets packets")
        val end = input.position()
        inputLengths.put(count, end - filled)
        filled = end
        count++
    }

    /** Copies [packet] into [input] and marks its end (a copy the caller can avoid by writing into [input]). */
    fun add(packet: ByteArray) {
        input.put(packet)
        endPacket()
    }

    /**
     * Protects the [count] packets in [input] into [output]; returns the
     * bytes written there ([output]'s position 0 to its limit) and starts a
     * new batch.
     */
    fun protect(): Int = run(true)

    /** Authenticates and decrypts the [count] packets in [input], as [protect]. */
    fun unprotect(): Int = run(false)

    /** Packet `i`'s output length (0 if refused). */
    fun outputLength(i: Int): Int = outputLengths.get(i)

    /** Packet `i`'s status. */
    fun status(i: Int): PacketStatus = STATUSES[statuses.get(i).toInt()]

    @Synchronized
    private fun run(protect: Boolean): Int {
        check(!closed) { "SrtpDirectBatch is closed" }
        val n = count
        val inLen = input.position().toLong()
        val r = if (protect) {
            DirectLib.carevox_srtp_protect_rtp_into(
                handle, inputAddress, inLen, inputLengthsAddress, n.toLong(),
                outputAddress, output.capacity().toLong(), outputLengthsAddress, statusesAddress,
            )
        } else {
            DirectLib.carevox_srtp_unprotect_rtp_into(
                handle, inputAddress, inLen, inputLengthsAddress, n.toLong(),
                outputAddress, output.capacity().toLong(), outputLengthsAddress, statusesAddress,
            )
        }
        input.clear()
        count = 0
        filled = 0
        val written = checkCode(r)
        (output as Buffer).clear().limit(written)
        return written
    }

    @Synchronized
    override fun close() {
        if (!closed) {
            closed = true
            cleanable.clean()
        }
    }

    private class Release(private val handle: Long) : Runnable {
        override fun run() {
            UniffiLib.uniffi_carevox_ffi_fn_free_srtpsession(handle, UniffiRustCallStatus())
        }
    }

    private companion object {
        val STATUSES = arrayOf(
            PacketStatus.OK, PacketStatus.AUTHENTICATION_FAILED, PacketStatus.REPLAY,
            PacketStatus.MALFORMED, PacketStatus.STREAM, PacketStatus.KEY_EXPIRED, PacketStatus.OTHER,
        )

        fun ints(n: Int): IntBuffer =
            ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asIntBuffer()

        fun address(b: Buffer): Long = Pointer.nativeValue(Native.getDirectBufferPointer(b))

        /** The byte count, or the exception the UniFFI path throws for the same fault. */
        fun checkCode(r: Long): Int = when (r) {
            in 0L..Int.MAX_VALUE.toLong() -> r.toInt()
            -1L -> throw SrtpException.Other("the session handle is null")
            -2L -> throw SrtpException.InvalidBatch("a buffer pointer is null")
            -3L -> throw SrtpException.InvalidBatch("a length is out of range or an array is misaligned")
            -4L -> throw SrtpException.InvalidBatch("the packet lengths do not add up to the input's length")
            -5L -> throw SrtpException.InvalidBatch("the output buffer has no room for every packet and its SRTP overhead")
            -6L -> throw SrtpException.Other("SRTP session lock poisoned")
            else -> throw SrtpException.Other("the direct SRTP call failed ($r)")
        }
    }
}

/** The two C functions of carevox-ffi's `direct` module, through JNA direct mapping. */
private object DirectLib {
    init {
        // The library the generated code loads, under the same override property.
        val name = System.getProperty("uniffi.component.carevox.libraryOverride") ?: "carevox_ffi"
        Native.register(DirectLib::class.java, name)
    }

    external fun carevox_srtp_protect_rtp_into(
        session: Long, input: Long, inLen: Long, lengths: Long, count: Long,
        output: Long, outCap: Long, outLengths: Long, statuses: Long,
    ): Long

    external fun carevox_srtp_unprotect_rtp_into(
        session: Long, input: Long, inLen: Long, lengths: Long, count: Long,
        output: Long, outCap: Long, outLengths: Long, statuses: Long,
    ): Long
}
