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
