package org.carevox

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.security.MessageDigest

class SipTest {
    private val invite = (
        "INVITE sip:bob@biloxi.example SIP/2.0\r\n" +
            "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n" +
            "Max-Forwards: 70\r\n" +
            "From: \"Alice\" <sip:alice@atlanta.example>;tag=1928301774\r\n" +
            "To: <sip:bob@biloxi.example>\r\n" +
            "Call-ID: a84b4c76e66710@pc33.atlanta.example\r\n" +
            "CSeq: 314159 INVITE\r\n" +
            "Contact: <sip:alice@192.0.2.10:5061;transport=tls>\r\n" +
            "Content-Length: 0\r\n\r\n"
        ).toByteArray()

    @Test
    fun parseValidateAndRespond() {
        val m = SipMessage.parse(invite)
        assertEquals("INVITE", m.method())
        assertEquals(314159u, m.cseq().seq)
        assertEquals("1928301774", m.fromHeader().tag)
        assertNull(m.validate())
        val resp = sipBuildResponse(m, 180.toUShort(), "Ringing", "b1", listOf(), null)
        val parsed = SipMessage.parse(resp.toBytes())
        assertEquals(180.toUShort(), parsed.statusCode())
        assertEquals("b1", parsed.toHeader().tag)
        val bad = SipMessage.parse(String(invite).replaceFirst("SIP/2.0\r\n", "SIP/3.0\r\n").toByteArray())
        assertEquals(505.toUShort(), bad.validate()?.statusCode)
        assertThrows<SipException.Parse> { SipMessage.parse(byteArrayOf(0, 1, 2)) }
    }

    private fun md5(s: String) =
        MessageDigest.getInstance("MD5").digest(s.toByteArray()).joinToString("") { "%02x".format(it) }

    @Test
    fun digestChallengeAnswered() {
        val challenge = SipMessage.parse(
            ("SIP/2.0 407 Proxy Authentication Required\r\n" +
                "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n" +
                "From: <sip:alice@carevox.test>;tag=1\r\nTo: <sip:bob@carevox.test>;tag=2\r\n" +
                "Call-ID: c@x\r\nCSeq: 1 INVITE\r\n" +
                "Proxy-Authenticate: Digest realm=\"carevox.test\", nonce=\"n0nce\", qop=\"auth\"\r\n" +
                "Content-Length: 0\r\n\r\n").toByteArray(),
        )
        val client = DigestClient("alice", "correct horse")
        val auth = client.authorize(challenge, "INVITE", "sip:bob@carevox.test", null)
        assertEquals("Proxy-Authorization", auth.headerName)
        assertFalse(auth.value.contains("correct horse"))
        val params = Regex("(\\w+)=\"?([^\",]+)\"?").findAll(auth.value).associate { it.groupValues[1] to it.groupValues[2] }
        val ha1 = md5("alice:carevox.test:correct horse")
        val ha2 = md5("INVITE:sip:bob@carevox.test")
        assertEquals(md5("$ha1:n0nce:${params["nc"]}:${params["cnonce"]}:auth:$ha2"), params["response"])
        assertTrue(auth.value.startsWith("Digest "))
    }
}
