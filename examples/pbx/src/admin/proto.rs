//! The control socket's wire format.
//!
//! Every frame is a 4-byte big-endian length, then that many bytes: a tag
//! byte and its payload. Tag `J` carries one JSON message (a [`Request`]
//! from the client, a [`Response`] from the server); tag `D` carries raw
//! bytes of an export in progress. A frame longer than [`MAX_FRAME`], an
//! unknown tag, a JSON message that is not one of the messages below, or
//! a message out of turn is answered with [`Response::Error`] of kind
//! [`ErrorKind::BadFrame`] or [`ErrorKind::BadRequest`] and the connection
//! is closed; the server goes on serving others.
//!
//! A connection is one session: the client logs in ([`Request::Login`]),
//! sends commands, each answered by one response (an export by a start
//! response, data frames and [`Response::StreamEnd`]), and logs off.

use std::io::{self, Read, Write};

use carevox::redact::Pii;

use crate::cdr::CallRecord;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// The longest frame (tag and payload), in bytes.
pub const MAX_FRAME: usize = 64 * 1024;
/// The size of the data frames of an export.
pub const DATA_CHUNK: usize = 32 * 1024;
/// The longest name, role, object id or mailbox in a request, in bytes.
pub const MAX_FIELD: usize = 128;
/// The most mailboxes of one account.
pub const MAX_MAILBOXES: usize = 64;

const TAG_JSON: u8 = b'J';
const TAG_DATA: u8 = b'D';

/// Text that is a secret (a password, a TOTP code, an `otpauth` URI):
/// zeroized on drop, `<redacted>` in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps `text`.
    pub fn new(text: String) -> SecretText {
        SecretText(text)
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretText)
    }
}

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// Creates the first account; refused once any account exists.
    EnrolFirst {
        /// The account name.
        name: String,
        /// Its role in the access policy.
        role: String,
        /// Its password.
        password: SecretText,
        /// The mailboxes (SIP user names) whose voicemail, recordings and call records it serves.
        mailboxes: Vec<String>,
    },
    /// Logs in with password and TOTP code.
    Login {
        /// The account name.
        name: String,
        /// The password.
        password: SecretText,
        /// The current TOTP code.
        totp: SecretText,
    },
    /// The voicemail the session may list.
    VoicemailList,
    /// Streams a voicemail's samples.
    VoicemailExport {
        /// The vault object id.
        id: String,
    },
    /// Crypto-shreds a voicemail and removes its ciphertext.
    VoicemailDelete {
        /// The vault object id.
        id: String,
    },
    /// The call recordings the session may list.
    RecordingList,
    /// Streams a call recording's samples.
    RecordingExport {
        /// The vault object id.
        id: String,
    },
    /// Crypto-shreds a call recording and removes its ciphertext.
    RecordingDelete {
        /// The vault object id.
        id: String,
    },
    /// The call detail records the session may read, newest last.
    CallRecords(CallRecordQuery),
    /// Verifies the audit log with its public key alone.
    AuditVerify,
    /// The monitoring rules' alerts, replayed over the audit log.
    AuditAlerts {
        /// Only those raised at or after this time (Unix seconds).
        since: Option<u64>,
    },
    /// Streams every audit record as one JSON object per line.
    AuditExport,
    /// Adds an account.
    UserAdd {
        /// The account name.
        name: String,
        /// Its role in the access policy.
        role: String,
        /// Its first password.
        password: SecretText,
        /// The mailboxes whose voicemail, recordings and call records it serves.
        mailboxes: Vec<String>,
    },
    /// Disables an account and ends its sessions.
    UserDisable {
        /// The account name.
        name: String,
    },
    /// Gives an account a new TOTP secret, shredding the old one.
    TotpReset {
        /// The account name.
        name: String,
    },
    /// Ends the session.
    Logoff,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes were not a frame (too long, unknown tag, cut short).
    BadFrame,
    /// The frame was not a request, or not one allowed now.
    BadRequest,
    /// A command before a login.
    NotLoggedIn,
    /// The login was refused (whatever was wrong: name, password, code).
    LoginRefused,
    /// Too many failed logins: wait.
    LockedOut,
    /// The access policy refused the action; the message says which rule.
    Denied,
    /// The session ended (idle past `[admin] idle_logoff_secs`, or too old).
    LoggedOff,
    /// No such object or account.
    NotFound,
    /// The account exists already, or enrolment is closed.
    Conflict,
    /// The request's values are not valid.
    Invalid,
    /// Too many connections.
    Busy,
    /// The server failed (storage, audit log); nothing secret is said.
    Internal,
}

/// One alert of the monitoring rules. Who it is about and its detail are
/// PHI-adjacent (people, addresses): `<redacted>` in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertItem {
    /// Its kind (`repeated-failed-logins`, `new-network`,
    /// `break-the-glass`, `outside-working-hours`, `many-patients`,
    /// `bulk-reads`).
    pub kind: String,
    /// The audit record that raised it.
    pub seq: u64,
    /// When (the record's time, milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// The user (or, for failures counted per address, the address).
    pub who: Pii<String>,
    /// A count or a network, by kind.
    pub detail: Pii<String>,
}

/// Which call detail records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecordQuery {
    /// Only calls this SIP user made or received.
    pub user: Option<String>,
    /// Only calls that ended at or after this time (Unix seconds).
    pub since: Option<u64>,
    /// Only calls that started before this time (Unix seconds).
    pub until: Option<u64>,
    /// At most this many, the newest (default [`DEFAULT_CALL_RECORDS`], at
    /// most [`MAX_CALL_RECORDS`]).
    pub limit: Option<u32>,
}

/// The default [`CallRecordQuery::limit`].
pub const DEFAULT_CALL_RECORDS: u32 = 100;
/// The largest [`CallRecordQuery::limit`].
pub const MAX_CALL_RECORDS: u32 = 10_000;

/// One voicemail of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoicemailItem {
    /// The vault object id.
    pub id: String,
    /// The mailbox (the callee's SIP user name); `<redacted>` in `Debug`.
    pub owner: Pii<String>,
    /// When it was recorded, seconds since the Unix epoch.
    pub created_at: u64,
    /// Its length in milliseconds (8000 samples a second).
    pub duration_ms: u64,
}

/// One call recording of a listing. The parties are PHI: `<redacted>` in
/// `Debug`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingItem {
    /// The vault object id.
    pub id: String,
    /// The caller's SIP user name.
    pub caller: Pii<String>,
    /// The callee's SIP user name.
    pub callee: Pii<String>,
    /// When the recording started, seconds since the Unix epoch.
    pub started_at: u64,
    /// Its length in milliseconds (8000 samples a second).
    pub duration_ms: u64,
}

/// What the server answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Response {
    /// An account was made: its TOTP provisioning URI, shown this once.
    Enrolled {
        /// The `otpauth://` URI for an authenticator app.
        otpauth_uri: SecretText,
    },
    /// The login succeeded.
    LoggedIn {
        /// The role the session acts in.
        role: String,
        /// The session is logged off after this many idle seconds.
        idle_logoff_secs: u64,
    },
    /// The voicemail the policy lets the session list.
    Voicemails {
        /// The messages, oldest first.
        items: Vec<VoicemailItem>,
        /// How many others the policy did not let it list.
        withheld: u64,
    },
    /// The call recordings the policy lets the session list.
    Recordings {
        /// The recordings, oldest first.
        items: Vec<RecordingItem>,
        /// How many others the policy did not let it list.
        withheld: u64,
    },
    /// The call detail records the policy lets the session read.
    CallRecords {
        /// The records, oldest first (the newest `limit` of those matching).
        items: Vec<CallRecord>,
        /// Matching records the policy did not let it read.
        withheld: u64,
        /// Matching, readable records left out past the limit (older).
        omitted: u64,
        /// Batches in the vault that could not be read (damaged); the
        /// vault's audit hook recorded each failure.
        unreadable: u64,
    },
    /// The alerts the monitoring rules raise over the audit log.
    Alerts {
        /// Oldest first.
        items: Vec<AlertItem>,
    },
    /// An export starts: data frames follow, then [`Response::StreamEnd`].
    ExportStart {
        /// The media type of the bytes (`audio/PCMU` for voicemail and
        /// call recordings, `application/x-ndjson` for the audit log).
        content_type: String,
        /// Their length, when known beforehand.
        len: Option<u64>,
    },
    /// An export is complete.
    StreamEnd {
        /// Bytes sent.
        bytes: u64,
    },
    /// A voicemail or a call recording was deleted.
    Deleted {
        /// Its id.
        id: String,
    },
    /// The audit log's verification.
    AuditVerified {
        /// Records checked.
        records: u64,
        /// Signed checkpoints checked.
        checkpoints: u64,
        /// The Merkle root over the records, hex.
        root: String,
        /// The public key it was verified with, hex.
        public_key: String,
        /// The first damage found, if any.
        damage: Option<String>,
    },
    /// Done (an account added, disabled, or its TOTP reset without a new
    /// URI to show).
    Done,
    /// An account was added or its TOTP reset: its new provisioning URI.
    Provisioned {
        /// The `otpauth://` URI, shown this once.
        otpauth_uri: SecretText,
    },
    /// The session ended.
    LoggedOff,
    /// The request failed.
    Error {
        /// Why.
        kind: ErrorKind,
        /// What, without secrets or PHI.
        message: String,
    },
}

/// A frame read from the socket.
#[derive(Debug)]
pub enum Frame {
    /// A JSON message (still to be parsed).
    Json(Vec<u8>),
    /// Export bytes.
    Data(Vec<u8>),
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("the connection was closed")]
    Closed,
    /// The length is zero or above [`MAX_FRAME`].
    #[error("a frame of {0} bytes (at most {MAX_FRAME})")]
    Length(u64),
    /// The tag byte is unknown.
    #[error("unknown frame tag {0:#04x}")]
    Tag(u8),
    /// The socket failed or timed out.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

/// Reads one frame.
pub fn read_frame(r: &mut impl Read) -> Result<Frame, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(len.get_mut(got..).unwrap_or_default()) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len);
    let n = usize::try_from(len).map_err(|_| FrameError::Length(u64::from(len)))?;
    if n == 0 || n > MAX_FRAME {
        return Err(FrameError::Length(u64::from(len)));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf)?;
    let tag = buf.remove(0);
    match tag {
        TAG_JSON => Ok(Frame::Json(buf)),
        TAG_DATA => Ok(Frame::Data(buf)),
        t => {
            buf.zeroize();
            Err(FrameError::Tag(t))
        }
    }
}

fn write_tagged(w: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    let n = payload.len().saturating_add(1);
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message longer than a frame",
        ));
    }
    let len = u32::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&[tag])?;
    w.write_all(payload)?;
    w.flush()
}

/// Writes one JSON message; the serialised bytes are zeroized after.
pub fn write_json(w: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
    let r = write_tagged(w, TAG_JSON, &bytes);
    bytes.zeroize();
    r
}

/// Writes one data frame (at most [`DATA_CHUNK`] bytes is usual).
pub fn write_data(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    write_tagged(w, TAG_DATA, bytes)
}

/// Parses a JSON message; the frame's bytes are zeroized whatever the
/// outcome (they may hold a password).
pub fn parse<T: for<'de> Deserialize<'de>>(mut bytes: Vec<u8>) -> Result<T, String> {
    let r = serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's message names the line and column, never the input.
        format!("not a valid message: {}", e.classify_name())
    });
    bytes.zeroize();
    r
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "cut short",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "not a known message",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_hides_its_secrets_in_debug() {
        let mut wire = Vec::new();
        write_json(
            &mut wire,
            &Request::Login {
                name: "dr.lee".into(),
                password: SecretText::new("pw-123".into()),
                totp: SecretText::new("123456".into()),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Frame::Json(body) = read_frame(&mut wire.as_slice()).unwrap_or_else(|e| panic!("{e}"))
        else {
            panic!("not JSON")
        };
        let request: Request = parse(body).unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("pw-123") && !shown.contains("123456"),
            "{shown}"
        );
        assert!(matches!(request, Request::Login { ref name, .. } if name == "dr.lee"));
        let listing = Response::Voicemails {
            items: vec![VoicemailItem {
                id: "vm-1".into(),
                owner: Pii::new("bob.mailbox".into()),
                created_at: 1,
                duration_ms: 2,
            }],
            withheld: 0,
        };
        let recordings = Response::Recordings {
            items: vec![RecordingItem {
                id: "rec-1".into(),
                caller: Pii::new("alice.caller".into()),
                callee: Pii::new("bob.callee".into()),
                started_at: 1,
                duration_ms: 2,
            }],
            withheld: 0,
        };
        let uri = Response::Provisioned {
            otpauth_uri: SecretText::new("otpauth://totp/x?secret=ABCDEFGH".into()),
        };
        assert_eq!(
            carevox::redact::debug_leak(
                &(listing, recordings, uri),
                &["bob.mailbox", "alice.caller", "bob.callee", "ABCDEFGH"]
            ),
            None
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert!(matches!(
            read_frame(&mut [].as_slice()),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut [0xff, 0xff, 0xff, 0xff].as_slice()),
            Err(FrameError::Length(_))
        ));
        assert!(matches!(
            read_frame(&mut [0, 0, 0, 0].as_slice()),
            Err(FrameError::Length(0))
        ));
        assert!(matches!(
            read_frame(&mut [0, 0, 0, 2, b'X', 1].as_slice()),
            Err(FrameError::Tag(b'X'))
        ));
        assert!(matches!(
            read_frame(&mut [0, 0, 0, 9, b'J'].as_slice()),
            Err(FrameError::Io(_))
        ));
        assert!(parse::<Request>(b"{\"request\":\"nope\"}".to_vec()).is_err());
        assert!(parse::<Request>(b"\xff\xfe".to_vec()).is_err());
    }
}
