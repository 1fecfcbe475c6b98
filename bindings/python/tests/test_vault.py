import hashlib
import os

import pytest

import carevox
from conftest import NOW

MB = 1024 * 1024


class Recording(carevox.ByteSource):
    """A voicemail produced chunk by chunk (as a recorder would), never whole."""

    def __init__(self, size):
        self.left = size
        self.hash = hashlib.sha256()
        self.counter = 0

    def read(self, max_len):
        n = min(max_len, self.left, 48 * 1024)
        if n == 0:
            return b""
        chunk = hashlib.sha256(self.counter.to_bytes(8, "big")).digest() * (n // 32 + 1)
        chunk = chunk[:n]
        self.counter += 1
        self.left -= n
        self.hash.update(chunk)
        return chunk

    def expected(self, offset, length):
        # Regenerate the deterministic stream to check ranges.
        out, pos, counter = bytearray(), 0, 0
        total = offset + length
        while pos < total:
            block = hashlib.sha256(counter.to_bytes(8, "big")).digest() * (48 * 1024 // 32 + 1)
            block = block[:48 * 1024]
            out += block
            pos += len(block)
            counter += 1
        return bytes(out[offset:offset + length])


class Player(carevox.ByteSink):
    def __init__(self):
        self.hash = hashlib.sha256()
        self.chunks = 0
        self.total = 0

    def write(self, data):
        self.hash.update(data)
        self.chunks += 1
        self.total += len(data)


class FailingSource(carevox.ByteSource):
    def read(self, max_len):
        raise carevox.CallbackError.Failed("microphone unplugged")


def test_voicemail_streamed_in_and_read_back_in_ranges(tmp_path, keys):
    vault = carevox.Vault.open(str(tmp_path / "vault"), keys)
    size = 5 * MB + 12345
    source = Recording(size)
    info = vault.put_stream("vm-0001", "audio/wav", NOW, NOW + 86400 * 365 * 6,
                            {"patient": "Patient/42", "call-id": "c1@test"}, source)
    assert info.len == size and info.id == "vm-0001"
    assert keys.calls >= 1
    sink = Player()
    back = vault.get_stream("vm-0001", sink)
    assert back.labels == {"patient": "Patient/42", "call-id": "c1@test"}
    assert sink.total == size and sink.chunks > 1
    assert sink.hash.digest() == source.hash.digest()
    for offset, length in [(0, 44), (65536 - 10, 20), (size - 100, 100), (3 * MB, 70000)]:
        assert vault.get_range("vm-0001", offset, length) == source.expected(offset, length)
    assert vault.get_range("vm-0001", size - 10, 100) == source.expected(size - 10, 10)
    assert [e.id for e in vault.list()] == ["vm-0001"]
    assert vault.info("vm-0001").len == size


def test_put_get_shred_and_errors(tmp_path, keys):
    vault = carevox.Vault.open(str(tmp_path / "v"), keys)
    vault.put("note-1", "text/plain", NOW, NOW + 100, {}, b"call back at 5")
    assert vault.get("note-1") == b"call back at 5"
    with pytest.raises(carevox.VaultError.AlreadyExists):
        vault.put("note-1", "text/plain", NOW, NOW + 100, {}, b"again")
    with pytest.raises(carevox.VaultError.NotFound):
        vault.get("nope")
    with pytest.raises(carevox.VaultError.InvalidId):
        vault.put("../escape", "text/plain", NOW, NOW + 100, {}, b"x")
    with pytest.raises(carevox.VaultError.Stream):
        vault.put_stream("vm-2", "audio/wav", NOW, NOW + 100, {}, FailingSource())
    assert [e.id for e in vault.list()] == ["note-1"]
    vault.shred("note-1")
    with pytest.raises(carevox.VaultError.NotFound):
        vault.get("note-1")


def test_another_key_cannot_read(tmp_path, keys):
    vault = carevox.Vault.open(str(tmp_path / "v"), keys)
    vault.put("a", "text/plain", NOW, NOW + 100, {}, b"secret note")
    other = carevox.Vault.open(str(tmp_path / "v"), type(keys)())
    with pytest.raises(carevox.VaultError.Key):
        other.get("a")


def test_corrupt_vault_file_is_a_typed_error(tmp_path, keys):
    root = tmp_path / "v"
    vault = carevox.Vault.open(str(root), keys)
    vault.put("rec", "audio/wav", NOW, NOW + 100, {}, os.urandom(200_000))
    files = [p for p in root.rglob("*") if p.is_file()]
    biggest = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0x01
    biggest.write_bytes(bytes(data))
    with pytest.raises(carevox.VaultError.Corrupt):
        vault.get("rec")
    with pytest.raises(carevox.VaultError.Corrupt):
        vault.get_range("rec", 100_000, 1000)
