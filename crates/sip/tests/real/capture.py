#!/usr/bin/env python3
"""Captures SIP messages from real software on loopback, for the test data in
this directory. Run by hand (needs Debian `sip-tester`, `baresip` and `linphone-cli`); the
tests that use these files only read them. CI also runs both programs live
against parts of this crate: ../live_sipp.rs (SIPp calls, both roles) and
../live_baresip.rs (baresip registering with digest authentication).

    python3 capture.py OUT_DIR

Every datagram is relayed between a client and a server on 127.0.0.1 and
written to OUT_DIR/<scenario>-NN.sip exactly as received.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(OUT, exist_ok=True)


def relay(name, client_cmd, server_cmd, listen=5060, server_port=5070, seconds=8):
    """Client -> 127.0.0.1:listen -> 127.0.0.1:server_port, and back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", listen))
    sock.settimeout(0.2)
    count = [0]
    stop = time.time() + seconds

    def run():
        client = None
        while time.time() < stop:
            try:
                data, addr = sock.recvfrom(65535)
            except socket.timeout:
                continue
            count[0] += 1
            with open(os.path.join(OUT, f"{name}-{count[0]:02}.sip"), "wb") as f:
                f.write(data)
            if addr[1] == server_port:
                if client:
                    sock.sendto(data, client)
            else:
                client = addr
                sock.sendto(data, ("127.0.0.1", server_port))

    t = threading.Thread(target=run)
    t.start()
    server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if server_cmd else None
    time.sleep(0.5)
    client = subprocess.Popen(client_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        client.kill()
    t.join()
    if server:
        server.kill()
        server.wait()
    sock.close()
    print(name, count[0], "messages")


def sipp(scenario, port, remote=None, extra=()):
    cmd = ["sipp", "-sn", scenario, "-i", "127.0.0.1", "-p", str(port), "-m", "1",
           "-timeout", "6", "-nostdin", "-trace_err"]
    cmd += list(extra)
    if remote:
        cmd.append(remote)
    return cmd


def registrar(name, seconds, baresip_cmd, algorithm=b"MD5", stdin=None):
    """Answers REGISTER with 401 then 200, INVITE with 486, and records
    everything the client sends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 5060))
    sock.settimeout(0.2)
    proc = subprocess.Popen(baresip_cmd, stdin=subprocess.PIPE if stdin else None,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin:
        threading.Thread(target=feed, args=(proc, stdin), daemon=True).start()
    stop = time.time() + seconds
    n = 0
    while time.time() < stop:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        n += 1
        with open(os.path.join(OUT, f"{name}-{n:02}.sip"), "wb") as f:
            f.write(data)
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if head[0].startswith(b"REGISTER") or head[0].startswith(b"INVITE"):
            keep = [h for h in head[1:] if h.split(b":", 1)[0].strip().lower()
                    in (b"via", b"from", b"to", b"call-id", b"cseq", b"contact")]
            status = b"200 OK" if head[0].startswith(b"REGISTER") else b"486 Busy Here"
            extra = b"Expires: 60\r\n"
            if head[0].startswith(b"REGISTER") and b"\r\nauthorization:" not in data.lower():
                status = b"401 Unauthorized"
                extra = (b'WWW-Authenticate: Digest realm="carevox.test", '
                         b'nonce="6a1f0c3e9b2d4c5e", qop="auth", algorithm=' + algorithm + b'\r\n')
            resp = b"SIP/2.0 " + status + b"\r\n" + b"\r\n".join(
                h + (b";tag=cap1" if h.lower().startswith(b"to:") else b"") for h in keep
            ) + b"\r\n" + extra + b"Content-Length: 0\r\n\r\n"
            sock.sendto(resp, addr)
    proc.kill()
    proc.wait()
    sock.close()
    print(name, n, "messages")


def feed(proc, lines):
    """Types (delay, line) pairs into an interactive client."""
    for delay, line in lines:
        time.sleep(delay)
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return


relay("sipp-uac", sipp("uac", 5080, "127.0.0.1:5060"), sipp("uas", 5070))
relay("sipp-branch", sipp("branchc", 5080, "127.0.0.1:5060"), sipp("branchs", 5070))
relay("sipp-regexp", sipp("regexp", 5080, "127.0.0.1:5060"), sipp("uas", 5070))

home = tempfile.mkdtemp()
conf = os.path.join(home, ".baresip")
os.makedirs(conf)
with open(os.path.join(conf, "config"), "w") as f:
    f.write("sip_listen 127.0.0.1:5090\nnet_interface 127.0.0.1\n"
            "module_path /usr/lib/baresip/modules\nmodule g711.so\n"
            "module_app account.so\nmodule_app menu.so\n")
with open(os.path.join(conf, "accounts"), "w") as f:
    f.write("<sip:alice@127.0.0.1:5060;transport=udp>;auth_pass=test-only;regint=60\n")
registrar("baresip", 6, ["env", "HOME=" + home, "baresip", "-f", conf, "-t", "5", "-e", "/dial sip:bob@127.0.0.1:5060"])
shutil.rmtree(home)

# linphonec: digest registration answered with SHA-256, then a call offering
# mandatory SDES-SRTP (four crypto lines), refused with 486.
home = tempfile.mkdtemp()
os.makedirs(os.path.join(home, ".local", "share", "linphone"))
rc = os.path.join(home, "linphonerc")
with open(rc, "w") as f:
    f.write("[sip]\nsip_port=5092\nsip_tcp_port=0\nsip_tls_port=0\n"
            "media_encryption=srtp\nmedia_encryption_mandatory=1\n"
            "[net]\nbind_address=127.0.0.1\n[rtp]\naudio_rtp_port=7100-7200\n"
            "[proxy_0]\nreg_proxy=<sip:127.0.0.1:5060;transport=udp>\n"
            "reg_identity=sip:carol@127.0.0.1\nreg_expires=60\nreg_sendregister=1\n"
            "[auth_info_0]\nusername=carol\npasswd=test-only\nrealm=carevox.test\n")
registrar("linphonec", 10, ["env", "HOME=" + home, "linphonec", "-c", rc, "-d", "0"],
          algorithm=b"SHA-256",
          stdin=[(4, "call sip:bob@127.0.0.1:5060"), (4, "quit")])
shutil.rmtree(home)
