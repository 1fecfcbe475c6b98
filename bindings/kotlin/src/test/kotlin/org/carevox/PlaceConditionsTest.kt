package org.carevox

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

// A rule that depends on where the request comes from: the site (which also
// picks the time zone of `hours`), the location inside it and the network.
private val PLACE_POLICY = """
    version = 1
    time_zone = "UTC"
    networks = ["clinic-lan", "vpn", "internet"]
    locations = ["icu", "lobby"]

    [[sites]]
    name = "boston"
    time_zone = "America/New_York"

    [[sites]]
    name = "denver"
    time_zone = "America/Denver"

    [[roles]]
    name = "nurse"

    [[resources]]
    name = "voicemail"
    actions = ["listen"]

    [[rules]]
    id = "icu-nurse-voicemail"
    effect = "permit"
    roles = ["nurse"]
    resources = ["voicemail"]
    actions = ["listen"]
    hours = { from = "08:00", to = "18:00" }
    conditions = [
        "request.site == resource.site",
        'request.location == "icu"',
        'request.network in ["clinic-lan", "vpn"]',
    ]
""".trimIndent()

// 2026-11-23 14:00 UTC: 09:00 in Boston (UTC-5), 07:00 in Denver (UTC-7).
private val AFTERNOON_UTC: ULong = NOW + 4uL * 3600uL

class PlaceConditionsTest {
    private val policy = AuthzPolicy.fromToml(PLACE_POLICY)

    private val atTheIcu = AccessRequest(
        userId = 7uL, roles = listOf("nurse"), mfa = true, careTeams = listOf(), ownPatient = null,
        action = "listen", resourceType = "voicemail", resourceOwner = 42uL,
        resourceCareTeams = listOf(3u), ephi = true, now = AFTERNOON_UTC, breakGlass = null,
        site = "boston", location = "icu", network = "clinic-lan",
        resourceSite = "boston", resourceLocation = "icu",
    )

    @Test
    fun allowedAtTheRightSiteLocationAndNetwork() {
        val allowed = policy.decide(atTheIcu)
        assertTrue(allowed.allowed)
        assertEquals("icu-nurse-voicemail", allowed.rule)
        assertEquals("allowed by rule icu-nurse-voicemail", allowed.explanation)
        assertTrue(policy.decide(atTheIcu.copy(network = "vpn")).allowed)
    }

    @Test
    fun refusedElsewhereWithItsExplanation() {
        val fromInternet = policy.decide(atTheIcu.copy(network = "internet"))
        assertFalse(fromInternet.allowed)
        assertEquals(DecisionReason.NOT_PERMITTED, fromInternet.reason)
        assertEquals("icu-nurse-voicemail", fromInternet.nearestRule)
        assertEquals(listOf("wrong_network"), fromInternet.unmet)
        assertEquals(
            "denied: no rule permits it; nearest rule icu-nurse-voicemail lacks wrong_network",
            fromInternet.explanation,
        )
        assertEquals(listOf("wrong_location"), policy.decide(atTheIcu.copy(location = "lobby")).unmet)
        // No network given: an unknown attribute never equals anything.
        assertEquals(listOf("wrong_network"), policy.decide(atTheIcu.copy(network = null)).unmet)
        // Another site than the resource's, where it is 07:00.
        val elsewhere = policy.decide(atTheIcu.copy(site = "denver"))
        assertFalse(elsewhere.allowed)
        assertEquals(listOf("outside_hours", "wrong_site"), elsewhere.unmet)
        assertTrue(elsewhere.explanation.endsWith("lacks outside_hours, wrong_site"))
    }

    @Test
    fun hoursAreReadInTheTimeZoneOfTheRequestSite() {
        val denver = atTheIcu.copy(site = "denver", resourceSite = "denver")
        val early = policy.decide(denver)
        assertFalse(early.allowed)
        assertEquals(listOf("outside_hours"), early.unmet)
        assertTrue(policy.decide(denver.copy(now = AFTERNOON_UTC + 2uL * 3600uL)).allowed)
    }

    @Test
    fun placesThePolicyDoesNotDeclareAreRefused() {
        val e = assertThrows<AuthzException.Unknown> { policy.decide(atTheIcu.copy(network = "wifi")) }
        assertTrue("wifi" in e.message!!)
        assertThrows<AuthzException.Unknown> { policy.decide(atTheIcu.copy(site = "paris")) }
        assertThrows<AuthzException.Unknown> { policy.decide(atTheIcu.copy(resourceLocation = "roof")) }
    }
}
