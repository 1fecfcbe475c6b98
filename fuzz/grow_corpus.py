#!/usr/bin/env python3
"""Grows the seed corpus of every fuzz target from real inputs.

    python3 fuzz/grow_corpus.py [--capture]

Sources, each named in the seed's file name:
- SIP messages that real software sent on 127.0.0.1 (SIPp, baresip,
  linphonec; crates/sip/tests/real/, refreshed first with --capture, which
  runs crates/sip/tests/real/capture.py), the RFC 4475 torture messages and
  the crate's SDP test data; from these, the URIs of start lines and address
  headers, the SDP bodies and the authentication header values;
- SRTP and SRTCP packets protected by libsrtp2 with the keys the fuzz targets
  use (peers/libsrtp/examples/fuzz_seeds.rs);
- vault objects and audit segments and checkpoints written by the crates
  (their golden files, and a fresh data directory written by the tour).

New seeds are named <source>-<sha1 prefix>, so a seed already present is not
written twice. Afterwards `cargo fuzz cmin <target>` can shrink a corpus.
"""
import hashlib
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
SIP = os.path.join(ROOT, "crates", "sip", "tests")

added = {}


def seed(target, source, data):
    if not data:
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            if hashlib.sha1(f.read()).hexdigest() == digest:
                return
    with open(os.path.join(d, f"{source}-{digest[:12]}"), "wb") as f:
        f.write(data)
    added[target] = added.get(target, 0) + 1


def files(*parts):
    top = os.path.join(*parts)
    for dirpath, _, names in os.walk(top):
        for name in sorted(names):
            if not name.endswith((".py", ".md")):
                yield os.path.join(dirpath, name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


URI = re.compile(rb"<((?:sips?|tel):[^>\r\n]*)>")
ADDRESS_HEADERS = (b"from", b"to", b"contact", b"route", b"record-route", b"f", b"t", b"m",
                   b"refer-to", b"p-asserted-identity")
AUTH_HEADERS = (b"www-authenticate", b"authorization", b"proxy-authenticate",
                b"proxy-authorization", b"authentication-info")


def split_message(source, data):
    """Start-line URI, address URIs, auth values and the body of one message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    first = lines[0].split(b" ")
    if len(first) == 3 and not first[0].startswith(b"SIP/"):
        seed("sip_uri", source, first[1])
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        value = value.strip()
        if name in ADDRESS_HEADERS:
            for m in URI.finditer(value):
                seed("sip_uri", source, m.group(1))
        if name in AUTH_HEADERS:
            seed("sip_auth_params", source, value)
    if body.strip():
        seed("sip_sdp", source, body)


def sip():
    if "--capture" in sys.argv:
        subprocess.run([sys.executable, os.path.join(SIP, "real", "capture.py"),
                        os.path.join(SIP, "real")], check=True)
    for path in files(SIP, "real"):
        name = os.path.basename(path).split("-")[0]
        data = read(path)
        seed("sip_message", name, data)
        split_message(name, data)
    for path in files(SIP, "torture"):
        data = read(path)
        seed("sip_message", "rfc4475", data)
        split_message("rfc4475", data)
    for path in files(SIP, "data", "sdp"):
        seed("sip_sdp", "sdp-data", read(path))


def srtp():
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["cargo", "run", "--quiet", "--locked", "-p", "carevox-peer-libsrtp",
                        "--example", "fuzz_seeds", "--", out], cwd=ROOT, check=True)
        for target in ("srtp_unprotect_rtp", "srtp_unprotect_rtcp"):
            for path in files(out, target):
                seed(target, "libsrtp", read(path))


def storage():
    for path in files(ROOT, "crates", "vault", "tests", "data"):
        seed("vault_object", "golden", read(path))
    for path in files(ROOT, "crates", "audit", "tests", "data"):
        target = "audit_checkpoint" if path.endswith(".cvc") else "audit_segment"
        seed(target, "golden", read(path))
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["cargo", "run", "--quiet", "--locked", "-p", "carevox-tour", "--", out],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        for path in files(out):
            data = read(path)
            if data[:4] == read_magic("vault"):
                seed("vault_object", "tour", data)
            elif path.endswith(".cvc"):
                seed("audit_checkpoint", "tour", data)
            elif path.endswith(".cva"):
                seed("audit_segment", "tour", data)


def read_magic(kind):
    """The first four bytes of the golden files of a storage crate."""
    ending = {"vault": ".cvx"}[kind]
    for path in files(ROOT, "crates", kind, "tests", "data"):
        if path.endswith(ending):
            return read(path)[:4]
    return None


if __name__ == "__main__":
    sip()
    srtp()
    storage()
    for target in sorted(added):
        print(f"{target}: {added[target]} new seeds")
    if not added:
        print("no new seeds")
