package org.carevox

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.nio.file.Path
import java.security.SecureRandom

class AuditAuthzTest {
    private fun record(i: Int, user: String) = AuditRecord(
        "voicemail_access", "read", AuditOutcome.SUCCESS, (NOW + i.toULong()) * 1000u, user, "physician",
        "carevox-test", "Patient/42", "voicemail", "vm-$i", listOf(AuditDetail("decision", "allowed")),
    )

    @Test
    fun auditVerifiedAndTamperDetected(@TempDir dir: Path) {
        val seed = ByteArray(32).also(SecureRandom()::nextBytes)
        val log = AuditLog.open(dir.toString(), seed)
        seed.fill(0)
        for (i in 0 until 10) log.append(record(i, "user-%02d".format(i)))
        val first = log.checkpoint(NOW * 1000u + 1u)
        for (i in 10 until 15) log.append(record(i, "user-%02d".format(i)))
        val second = log.checkpoint(NOW * 1000u + 2u)
        val key = log.publicKeyHex()
        val ok = auditVerifyLog(dir.toString(), key)
        assertNull(ok.damage)
        assertEquals(15uL, ok.records)
        val proof = log.inclusionProof(4uL, second.treeSize)
        auditVerifyInclusion(4uL, second.treeSize, log.leafHash(4uL), proof, second.root)
        auditVerifyConsistency(first.treeSize, second.treeSize, first.root, second.root,
            log.consistencyProof(first.treeSize, second.treeSize))
        assertThrows<AuditException.ProofInvalid> {
            auditVerifyInclusion(4uL, second.treeSize, log.leafHash(5uL), proof, second.root)
        }
        val segment = dir.toFile().walk().filter(File::isFile)
            .first { String(it.readBytes(), Charsets.ISO_8859_1).contains("user-07") }
        val bytes = segment.readBytes()
        val at = String(bytes, Charsets.ISO_8859_1).indexOf("user-07") + 5
        bytes[at] = (bytes[at].toInt() xor 1).toByte()
        segment.writeBytes(bytes)
        try {
            assertNotNull(auditVerifyLog(dir.toString(), key).damage)
        } catch (e: AuditException.Corrupt) {
            // Refusing to read the damaged segment is detection too.
        }
        assertThrows<AuditException.InvalidArgument> { AuditLog.open(dir.resolve("b").toString(), ByteArray(7)) }
    }

    @Test
    fun loginWithTotpAndAnExplainedDecision() {
        val auth = Authenticator()
        val stored = auth.hashPassword("pager at midnight")
        val enrol = auth.enrolTotp("carevox", "dr.oncall")
        val code = auth.totpCode(enrol.secretBase32, NOW)
        val login = auth.login("dr.oncall", "pager at midnight", stored, enrol.secretBase32, code, NOW, null)
        assertTrue(login.mfa)
        assertThrows<AuthzException.Authentication> {
            auth.login("dr.oncall", "pager at midnight", stored, enrol.secretBase32, code, NOW, login.totpStep)
        }
        val policy = AuthzPolicy.hospitalSample()
        val request = AccessRequest(
            2uL, listOf("physician"), login.mfa, listOf(3u), null, "listen", "voicemail",
            42uL, listOf(3u), true, NOW, null,
        )
        val allowed = policy.decide(request)
        assertTrue(allowed.allowed)
        assertEquals("allowed by rule ${allowed.rule}", allowed.explanation)
        val refused = policy.decide(request.copy(roles = listOf("receptionist"), careTeams = listOf()))
        assertFalse(refused.allowed)
        assertTrue(refused.explanation.startsWith("denied"))
        val offTeam = policy.decide(request.copy(careTeams = listOf()))
        assertFalse(offTeam.allowed)
        assertTrue(offTeam.nearestRule != null && "not_on_care_team" in offTeam.unmet)
        assertTrue(offTeam.explanation.contains("nearest rule ${offTeam.nearestRule} lacks"))
        assertEquals(null, allowed.nearestRule)
        assertTrue(allowed.unmet.isEmpty())
        assertThrows<AuthzException.Unknown> { policy.decide(request.copy(action = "teleport")) }
    }
}
