import pytest

import carevox
from conftest import NOW


def request(roles, user_id=2, teams=(), **kw):
    base = dict(user_id=user_id, roles=list(roles), mfa=True, care_teams=list(teams),
                own_patient=None, action="listen", resource_type="voicemail",
                resource_owner=42, resource_care_teams=[3], ephi=True, now=NOW,
                break_glass=None)
    base.update(kw)
    return carevox.AccessRequest(**base)


def test_login_with_password_and_totp():
    auth = carevox.Authenticator()
    stored = auth.hash_password("stethoscope on the desk")
    assert stored.startswith("$argon2id$") and "stethoscope" not in stored
    enrol = auth.enrol_totp("carevox", "dr.lee")
    assert enrol.provisioning_uri.startswith("otpauth://totp/")
    code = auth.totp_code(enrol.secret_base32, NOW)
    assert len(code) == 6
    login = auth.login("dr.lee", "stethoscope on the desk", stored, enrol.secret_base32, code,
                       NOW, None)
    assert login.mfa and login.token and login.session_id not in login.token
    assert auth.touch_session(login.token, NOW + 60) > NOW + 60
    # The same code again is a replay.
    with pytest.raises(carevox.AuthzError.Authentication):
        auth.login("dr.lee", "stethoscope on the desk", stored, enrol.secret_base32, code,
                   NOW + 1, login.totp_step)
    with pytest.raises(carevox.AuthzError.Authentication):
        auth.login("dr.lee", "wrong", stored, enrol.secret_base32,
                   auth.totp_code(enrol.secret_base32, NOW + 60), NOW + 60, login.totp_step)
    with pytest.raises(carevox.AuthzError.InvalidInput):
        auth.verify_totp("not base32!", "123456", NOW, None)
    assert auth.logoff(login.token)
    with pytest.raises(carevox.AuthzError.Session):
        auth.touch_session(login.token, NOW + 120)
    with pytest.raises(carevox.AuthzError.Session):
        auth.touch_session("garbage token", NOW)


def test_access_decisions_explained():
    policy = carevox.AuthzPolicy.hospital_sample()
    assert "physician" in policy.role_names()
    allowed = policy.decide(request(["physician"], teams=[3]))
    assert allowed.allowed and allowed.reason == carevox.DecisionReason.PERMITTED
    assert allowed.rule and allowed.explanation == f"allowed by rule {allowed.rule}"
    refused = policy.decide(request(["receptionist"], user_id=3))
    assert not refused.allowed
    assert refused.explanation.startswith("denied")
    # A physician off the patient's care team: the nearest permit and what it lacked.
    off_team = policy.decide(request(["physician"], teams=[]))
    assert not off_team.allowed and off_team.reason == carevox.DecisionReason.NOT_PERMITTED
    assert off_team.nearest_rule and "not_on_care_team" in off_team.unmet
    assert f"nearest rule {off_team.nearest_rule} lacks" in off_team.explanation
    assert allowed.nearest_rule is None and allowed.unmet == []
    grant = carevox.BreakGlassGrant(reason="patient unresponsive in ED", issued_at=NOW,
                                    expires_at=NOW + 1800)
    emergency = policy.decide(request(["on_call_physician"], user_id=4, break_glass=grant))
    assert emergency.review and emergency.break_glass != carevox.BreakGlassOutcome.NOT_PRESENTED
    assert "review required" in emergency.explanation
    with pytest.raises(carevox.AuthzError.Unknown):
        policy.decide(request(["astronaut"]))
    with pytest.raises(carevox.AuthzError.Unknown):
        policy.decide(request(["physician"], action="teleport"))
    with pytest.raises(carevox.AuthzError.Policy):
        carevox.AuthzPolicy.from_toml("this is = not [a policy")


# A rule that depends on where the request comes from: the site (which also
# picks the time zone of `hours`), the location inside it and the network.
PLACE_POLICY = """
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
"""

# 2026-11-23 14:00 UTC: 09:00 in Boston (UTC-5), 07:00 in Denver (UTC-7).
AFTERNOON_UTC = NOW + 4 * 3600


def place_request(**kw):
    base = dict(site="boston", location="icu", network="clinic-lan", resource_site="boston",
                resource_location="icu", now=AFTERNOON_UTC)
    base.update(kw)
    return request(["nurse"], **base)


def test_site_location_and_network_conditions():
    policy = carevox.AuthzPolicy.from_toml(PLACE_POLICY)

    at_the_icu = policy.decide(place_request())
    assert at_the_icu.allowed
    assert at_the_icu.rule == "icu-nurse-voicemail"
    assert at_the_icu.explanation == "allowed by rule icu-nurse-voicemail"
    assert policy.decide(place_request(network="vpn")).allowed

    from_internet = policy.decide(place_request(network="internet"))
    assert not from_internet.allowed
    assert from_internet.reason == carevox.DecisionReason.NOT_PERMITTED
    assert from_internet.nearest_rule == "icu-nurse-voicemail"
    assert from_internet.unmet == ["wrong_network"]
    assert from_internet.explanation == (
        "denied: no rule permits it; nearest rule icu-nurse-voicemail lacks wrong_network")

    in_the_lobby = policy.decide(place_request(location="lobby"))
    assert not in_the_lobby.allowed and in_the_lobby.unmet == ["wrong_location"]

    # No network given: an unknown attribute never equals anything.
    unknown = policy.decide(place_request(network=None))
    assert not unknown.allowed and unknown.unmet == ["wrong_network"]

    # Another site than the resource's; 07:00 there, before the rule's hours.
    elsewhere = policy.decide(place_request(site="denver"))
    assert not elsewhere.allowed
    assert elsewhere.unmet == ["outside_hours", "wrong_site"]
    assert "lacks outside_hours, wrong_site" in elsewhere.explanation

    # The hours are read in the request site's time zone: the same instant
    # is 07:00 in Denver, and 09:00 there two hours later.
    denver = dict(site="denver", resource_site="denver")
    early = policy.decide(place_request(**denver))
    assert not early.allowed and early.unmet == ["outside_hours"]
    assert policy.decide(place_request(now=AFTERNOON_UTC + 2 * 3600, **denver)).allowed


def test_places_the_policy_does_not_declare_are_refused():
    policy = carevox.AuthzPolicy.from_toml(PLACE_POLICY)
    for field, value in [("site", "paris"), ("location", "roof"), ("network", "wifi"),
                         ("resource_site", "paris"), ("resource_location", "roof")]:
        with pytest.raises(carevox.AuthzError.Unknown) as e:
            policy.decide(place_request(**{field: value}))
        assert value in str(e.value)


def test_the_sample_policy_forbids_ephi_from_the_internet():
    policy = carevox.AuthzPolicy.hospital_sample()
    base = dict(teams=[3])
    assert policy.decide(request(["nurse"], network="clinic-lan", **base)).allowed
    refused = policy.decide(request(["nurse"], network="internet", **base))
    assert not refused.allowed
    assert refused.reason == carevox.DecisionReason.FORBIDDEN
    assert refused.explanation == "denied: forbidden by rule forbid-ephi-from-internet"
