import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import carevox

# 2026-11-23 10:00 UTC: within the day hours of the sample hospital policy.
NOW = 1_795_428_000


def rtp_packet(seq: int, ssrc: int, payload: bytes) -> bytes:
    """An RTP packet, PCMU (payload type 0), 20 ms of 8 kHz audio per packet."""
    return struct.pack("!BBHII", 0x80, 0x00, seq & 0xFFFF, seq * 160, ssrc) + payload


class KeychainKeys(carevox.VaultKeyProvider):
    """What an app does with the iOS Keychain or the Android Keystore: the
    key-encryption key never leaves this object; data keys are wrapped with
    AES-256-GCM bound to the object id."""

    def __init__(self):
        self.keks = {1: AESGCM.generate_key(bit_length=256)}
        self.calls = 0

    def current_version(self):
        return 1

    def wrap(self, version, data_key, context):
        self.calls += 1
        kek = self.keks.get(version)
        if kek is None:
            raise carevox.CallbackError.Failed(f"no key version {version}")
        nonce = os.urandom(12)
        wrapped = nonce + AESGCM(kek).encrypt(nonce, bytes(data_key), bytes(context))
        return wrapped

    def unwrap(self, version, wrapped, context):
        self.calls += 1
        kek = self.keks.get(version)
        if kek is None:
            raise carevox.CallbackError.Failed(f"no key version {version}")
        wrapped = bytes(wrapped)
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], bytes(context))
        except Exception:
            raise carevox.CallbackError.Failed("unwrap failed")


@pytest.fixture
def keys():
    return KeychainKeys()
