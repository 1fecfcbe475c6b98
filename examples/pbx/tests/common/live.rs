//! Helpers of the live tests with real phones: the registration records
//! the PBX audited, WAV files the phones recorded, and tshark capturing
//! the relay's ports on the loopback interface.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)] // a real clock: these tests run real programs

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carevox::audit::Record;
use carevox_testkit::find_binary;

use super::Capture;

/// The value of the detail `key` of `record`, if any.
pub fn detail<'r>(record: &'r Record, key: &str) -> Option<&'r str> {
    record
        .details
        .iter()
        .find(|d| d.key.expose() == key)
        .map(|d| d.value.expose().as_str())
}

/// Waits up to `within` for the PBX to audit a successful registration of
/// `user`, and returns that record.
pub async fn registered(audit: &Capture, user: &str, within: Duration) -> Option<Record> {
    let until = Instant::now() + within;
    loop {
        let found = audit
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|r| {
                r.actor.user_id.expose() == user && detail(r, "registration") == Some("registered")
            })
            .cloned();
        if found.is_some() || Instant::now() >= until {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to `within` until `log()` contains `text` (ignoring case);
/// returns whether it did.
pub async fn appears(log: impl Fn() -> String, text: &str, within: Duration) -> bool {
    let text = text.to_lowercase();
    let until = Instant::now() + within;
    loop {
        if log().to_lowercase().contains(&text) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 16-bit PCM samples (the first channel), their rate and the number of
/// channels, from a WAV file.
pub fn wav_samples(path: &Path) -> (Vec<i16>, u32, u16) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    let mut at = 12;
    let (mut rate, mut channels, mut data) = (0u32, 0u16, Vec::new());
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes(body[2..4].try_into().unwrap());
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            data = body.to_vec();
        }
        at += 8 + len + (len % 2);
    }
    let samples = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .step_by(usize::from(channels.max(1)))
        .collect();
    (samples, rate, channels)
}

/// tshark capturing the UDP payloads to and from `ports` (the relay's).
pub fn capture(ports: (u16, u16)) -> Child {
    let tshark = find_binary("tshark", "tshark");
    Command::new(tshark)
        .args([
            "-i",
            "lo",
            "-l",
            "-f",
            &format!("udp portrange {}-{}", ports.0, ports.1),
            "-T",
            "fields",
            "-e",
            "udp.payload",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark starts")
}

/// Stops tshark with SIGINT (so that it stops its dumpcap too, which holds
/// the output pipe) and returns the payloads it printed; kills both if
/// they linger.
pub fn stop_capture(mut tshark: Child) -> Vec<Vec<u8>> {
    let pid = tshark.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let mut stdout = tshark.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while tshark.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if tshark.try_wait().unwrap().is_none() {
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
        let _ = tshark.kill();
        let _ = tshark.wait();
    }
    let out = reader.join().unwrap();
    String::from_utf8_lossy(&out)
        .lines()
        .map(unhex)
        .filter(|p| !p.is_empty())
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The captured payloads shaped as RTP (version 2) carrying PCMU.
pub fn pcmu_packets(payloads: &[Vec<u8>]) -> Vec<&Vec<u8>> {
    payloads
        .iter()
        .filter(|p| p.len() >= 12 && p[0] >> 6 == 2 && p[1] & 0x7f == 0)
        .collect()
}

/// The audio a baresip peer decoded during its call (its `sndfile`
/// module's `*-dec.wav` dump in its HOME): samples and rate; fails the
/// test without one or with less than a second.
pub fn decoded_dump(peer: &carevox_testkit::peer::Peer) -> (Vec<i16>, u32) {
    let dumps = peer.home().path().to_owned();
    let dec = std::fs::read_dir(&dumps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("no decoded dump in {}:\n{}", dumps.display(), peer.log()));
    let (samples, rate, _) = wav_samples(&dec);
    assert!(
        rate > 0 && samples.len() as u64 >= u64::from(rate),
        "{} samples at {rate} Hz",
        samples.len()
    );
    (samples, rate)
}
