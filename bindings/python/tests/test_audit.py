import os

import pytest

import carevox
from conftest import NOW


def record(i, user="dr.lee"):
    return carevox.AuditRecord(
        event="voicemail_access", action="read", outcome=carevox.AuditOutcome.SUCCESS,
        time_ms=(NOW + i) * 1000, user_id=user, role="physician", source_id="carevox-test",
        patient="Patient/42", object_kind="voicemail", object_id=f"vm-{i}",
        details=[carevox.AuditDetail(key="decision", value="allowed")])


def test_append_checkpoint_verify_and_prove(tmp_path):
    seed = os.urandom(32)
    log = carevox.AuditLog.open(str(tmp_path / "audit"), seed)
    seqs = [log.append(record(i)) for i in range(5)]
    assert seqs == sorted(seqs) and log.size() == 5
    first = log.checkpoint((NOW + 10) * 1000)
    assert first.tree_size == 5 and len(first.root) == 32
    for i in range(5, 12):
        log.append(record(i))
    second = log.checkpoint((NOW + 20) * 1000)
    assert second.tree_size == 12
    key = log.public_key_hex()

    report = carevox.audit_verify_log(str(tmp_path / "audit"), key)
    assert report.damage is None and report.records == 12 and report.checkpoints == 2

    seq = seqs[3]
    proof = log.inclusion_proof(seq, second.tree_size)
    carevox.audit_verify_inclusion(seq, second.tree_size, log.leaf_hash(seq), proof, second.root)
    with pytest.raises(carevox.AuditError.ProofInvalid):
        carevox.audit_verify_inclusion(seq, second.tree_size, log.leaf_hash(seq + 1), proof,
                                       second.root)
    consistency = log.consistency_proof(first.tree_size, second.tree_size)
    carevox.audit_verify_consistency(first.tree_size, second.tree_size, first.root,
                                     second.root, consistency)
    with pytest.raises(carevox.AuditError.ProofInvalid):
        carevox.audit_verify_consistency(first.tree_size, second.tree_size, second.root,
                                         second.root, consistency)
    with pytest.raises(carevox.AuditError.InvalidArgument):
        carevox.audit_verify_inclusion(seq, 12, b"short", proof, second.root)


def test_tampered_byte_detected(tmp_path):
    d = tmp_path / "audit"
    log = carevox.AuditLog.open(str(d), os.urandom(32))
    for i in range(20):
        log.append(record(i, user=f"user-{i:02}"))
    log.checkpoint((NOW + 30) * 1000)
    key = log.public_key_hex()
    del log
    segments = [p for p in d.rglob("*") if p.is_file() and p.read_bytes().find(b"user-07") >= 0]
    assert segments, "the record text is in a segment file"
    data = bytearray(segments[0].read_bytes())
    at = data.find(b"user-07")
    data[at + 5] ^= 0x01  # user-07 -> user-16's neighbour: one bit
    segments[0].write_bytes(bytes(data))
    try:
        report = carevox.audit_verify_log(str(d), key)
        assert report.damage is not None
    except carevox.AuditError.Corrupt:
        pass


def test_bad_input(tmp_path):
    with pytest.raises(carevox.AuditError.InvalidArgument):
        carevox.AuditLog.open(str(tmp_path / "a"), b"\x01" * 31)
    log = carevox.AuditLog.open(str(tmp_path / "b"), os.urandom(32))
    bad = record(0)
    bad.event = "no_such_event"
    with pytest.raises(carevox.AuditError.InvalidArgument):
        log.append(bad)
    with pytest.raises(carevox.AuditError):
        carevox.audit_verify_log(str(tmp_path / "b"), "zz")
    with pytest.raises(carevox.AuditError):
        log.inclusion_proof(5, 1)
