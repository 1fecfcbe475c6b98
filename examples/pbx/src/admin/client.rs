//! The admin console's client: one connection, one session.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use carevox::audio::{G711, wav_header};

use crate::cdr::CallRecord;

use super::proto::{
    AlertItem, CallRecordQuery, ErrorKind, Frame, FrameError, RecordingItem, Request, Response,
    SecretText, VoicemailItem, parse, read_frame, write_json,
};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket or a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The server refused or failed the request.
    #[error("{message}")]
    Server {
        /// Why, as a type.
        kind: ErrorKind,
        /// What the server said.
        message: String,
    },
    /// The server's answer was not what the protocol allows.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The server's error kind, if the server refused.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Server { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ClientError {
    move |source| ClientError::Io { what, source }
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerified {
    /// Records checked.
    pub records: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// The Merkle root, hex.
    pub root: String,
    /// The public key used, hex.
    pub public_key: String,
    /// The first damage, if any.
    pub damage: Option<String>,
}

/// What `cdr list` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecordList {
    /// The records, oldest first.
    pub items: Vec<CallRecord>,
    /// Matching records the policy withheld.
    pub withheld: u64,
    /// Matching records left out past the limit.
    pub omitted: u64,
    /// Damaged batches.
    pub unreadable: u64,
}

/// A connection to the control socket.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(io_err("connect to the control socket"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(io_err("socket"))?;
        Ok(Client { stream })
    }

    /// Sends `request` and reads one response; a [`Response::Error`] is
    /// returned as [`ClientError::Server`].
    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        write_json(&mut self.stream, request).map_err(io_err("send"))?;
        self.response()
    }

    fn response(&mut self) -> Result<Response, ClientError> {
        match read_frame(&mut self.stream) {
            Ok(Frame::Json(body)) => match parse::<Response>(body) {
                Ok(Response::Error { kind, message }) => Err(ClientError::Server { kind, message }),
                Ok(r) => Ok(r),
                Err(m) => Err(ClientError::Protocol(m)),
            },
            Ok(Frame::Data(_)) => Err(ClientError::Protocol("data out of turn".into())),
            Err(FrameError::Closed) => Err(ClientError::Protocol(
                "the server closed the connection".into(),
            )),
            Err(FrameError::Io(e)) => Err(ClientError::Io {
                what: "receive",
                source: e,
            }),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        }
    }

    fn unexpected(r: &Response) -> ClientError {
        ClientError::Protocol(format!("unexpected answer {r:?}"))
    }

    /// Makes the first account (only while none exists); returns its TOTP
    /// provisioning URI.
    pub fn enrol_first(
        &mut self,
        name: &str,
        role: &str,
        password: SecretText,
        mailboxes: Vec<String>,
    ) -> Result<SecretText, ClientError> {
        match self.request(&Request::EnrolFirst {
            name: name.to_owned(),
            role: role.to_owned(),
            password,
            mailboxes,
        })? {
            Response::Enrolled { otpauth_uri } => Ok(otpauth_uri),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Logs in; returns the role and the idle logoff in seconds.
    pub fn login(
        &mut self,
        name: &str,
        password: SecretText,
        totp: SecretText,
    ) -> Result<(String, u64), ClientError> {
        match self.request(&Request::Login {
            name: name.to_owned(),
            password,
            totp,
        })? {
            Response::LoggedIn {
                role,
                idle_logoff_secs,
            } => Ok((role, idle_logoff_secs)),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// The monitoring rules' alerts over the audit log, at or after
    /// `since` (Unix seconds).
    pub fn audit_alerts(&mut self, since: Option<u64>) -> Result<Vec<AlertItem>, ClientError> {
        match self.request(&Request::AuditAlerts { since })? {
            Response::Alerts { items } => Ok(items),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// The call detail records the policy lets the session read.
    pub fn call_records(&mut self, query: CallRecordQuery) -> Result<CallRecordList, ClientError> {
        match self.request(&Request::CallRecords(query))? {
            Response::CallRecords {
                items,
                withheld,
                omitted,
                unreadable,
            } => Ok(CallRecordList {
                items,
                withheld,
                omitted,
                unreadable,
            }),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// The voicemail the session may list, and how many were withheld.
    pub fn voicemail_list(&mut self) -> Result<(Vec<VoicemailItem>, u64), ClientError> {
        match self.request(&Request::VoicemailList)? {
            Response::Voicemails { items, withheld } => Ok((items, withheld)),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// The call recordings the session may list, and how many were
    /// withheld.
    pub fn recording_list(&mut self) -> Result<(Vec<RecordingItem>, u64), ClientError> {
        match self.request(&Request::RecordingList)? {
            Response::Recordings { items, withheld } => Ok((items, withheld)),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Reads an export's data frames into `out` up to its end; returns the
    /// byte count, checked against the server's.
    fn receive(&mut self, out: &mut impl Write, expected: Option<u64>) -> Result<u64, ClientError> {
        let mut got = 0u64;
        loop {
            match read_frame(&mut self.stream) {
                Ok(Frame::Data(bytes)) => {
                    out.write_all(&bytes).map_err(io_err("write the file"))?;
                    got = got.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
                }
                Ok(Frame::Json(body)) => {
                    return match parse::<Response>(body) {
                        Ok(Response::StreamEnd { bytes })
                            if bytes == got && expected.is_none_or(|e| e == got) =>
                        {
                            Ok(got)
                        }
                        Ok(Response::StreamEnd { .. }) => Err(ClientError::Protocol(
                            "the export ended at another length than announced".into(),
                        )),
                        Ok(Response::Error { kind, message }) => {
                            Err(ClientError::Server { kind, message })
                        }
                        Ok(r) => Err(Self::unexpected(&r)),
                        Err(m) => Err(ClientError::Protocol(m)),
                    };
                }
                Err(FrameError::Closed) => {
                    return Err(ClientError::Protocol("the export was cut short".into()));
                }
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
        }
    }

    /// Creates a new file at `dest` (mode 0600, never replacing one)
    /// before anything is asked of the server, runs `f` writing into it,
    /// and removes it if `f` fails.
    fn into_new_file(
        dest: &Path,
        f: impl FnOnce(&mut BufWriter<File>) -> Result<u64, ClientError>,
    ) -> Result<u64, ClientError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(io_err("create the file (it must not exist)"))?;
        let mut w = BufWriter::new(file);
        let r = f(&mut w).and_then(|n| {
            let file = w.into_inner().map_err(|e| ClientError::Io {
                what: "write the file",
                source: e.into_error(),
            })?;
            file.sync_all().map_err(io_err("sync the file"))?;
            Ok(n)
        });
        if r.is_err() {
            let _ = fs::remove_file(dest);
        }
        r
    }

    /// Exports voicemail `id` as a WAV file at `dest` (created 0600, never
    /// replacing a file), streamed; returns the samples' byte count.
    pub fn voicemail_export(&mut self, id: &str, dest: &Path) -> Result<u64, ClientError> {
        self.wav_export(
            &Request::VoicemailExport { id: id.to_owned() },
            "voicemail",
            dest,
        )
    }

    /// Exports call recording `id` as a WAV file at `dest` (created 0600,
    /// never replacing a file), streamed; returns the samples' byte count.
    pub fn recording_export(&mut self, id: &str, dest: &Path) -> Result<u64, ClientError> {
        self.wav_export(
            &Request::RecordingExport { id: id.to_owned() },
            "recording",
            dest,
        )
    }

    /// Sends `request`, an export of G.711 audio (`what` names it in
    /// errors), and writes the answer as a WAV file at `dest`.
    fn wav_export(
        &mut self,
        request: &Request,
        what: &str,
        dest: &Path,
    ) -> Result<u64, ClientError> {
        Self::into_new_file(dest, |w| {
            let (law, len) = match self.request(request)? {
                Response::ExportStart {
                    content_type,
                    len: Some(len),
                } => {
                    let law = match content_type.as_str() {
                        "audio/PCMU" => G711::Pcmu,
                        "audio/PCMA" => G711::Pcma,
                        other => {
                            return Err(ClientError::Protocol(format!("a {what} of type {other}")));
                        }
                    };
                    (law, len)
                }
                r => return Err(Self::unexpected(&r)),
            };
            let data_len = u32::try_from(len)
                .map_err(|_| ClientError::Protocol(format!("a {what} too long for WAV")))?;
            w.write_all(&wav_header(law, data_len))
                .map_err(io_err("write the file"))?;
            self.receive(w, Some(len))
        })
    }

    /// Crypto-shreds voicemail `id`, then removes its ciphertext.
    pub fn voicemail_delete(&mut self, id: &str) -> Result<(), ClientError> {
        self.delete(&Request::VoicemailDelete { id: id.to_owned() })
    }

    /// Crypto-shreds call recording `id`, then removes its ciphertext.
    pub fn recording_delete(&mut self, id: &str) -> Result<(), ClientError> {
        self.delete(&Request::RecordingDelete { id: id.to_owned() })
    }

    /// Sends a delete `request`; done once the server says it deleted.
    fn delete(&mut self, request: &Request) -> Result<(), ClientError> {
        match self.request(request)? {
            Response::Deleted { .. } => Ok(()),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Verifies the audit log with its public key alone.
    pub fn audit_verify(&mut self) -> Result<AuditVerified, ClientError> {
        match self.request(&Request::AuditVerify)? {
            Response::AuditVerified {
                records,
                checkpoints,
                root,
                public_key,
                damage,
            } => Ok(AuditVerified {
                records,
                checkpoints,
                root,
                public_key,
                damage,
            }),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Exports the audit log (one JSON record per line) to `dest`.
    pub fn audit_export(&mut self, dest: &Path) -> Result<u64, ClientError> {
        Self::into_new_file(dest, |w| {
            match self.request(&Request::AuditExport)? {
                Response::ExportStart { .. } => {}
                r => return Err(Self::unexpected(&r)),
            }
            self.receive(w, None)
        })
    }

    /// Adds an account; returns its TOTP provisioning URI.
    pub fn user_add(
        &mut self,
        name: &str,
        role: &str,
        password: SecretText,
        mailboxes: Vec<String>,
    ) -> Result<SecretText, ClientError> {
        match self.request(&Request::UserAdd {
            name: name.to_owned(),
            role: role.to_owned(),
            password,
            mailboxes,
        })? {
            Response::Provisioned { otpauth_uri } => Ok(otpauth_uri),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Disables an account.
    pub fn user_disable(&mut self, name: &str) -> Result<(), ClientError> {
        match self.request(&Request::UserDisable {
            name: name.to_owned(),
        })? {
            Response::Done => Ok(()),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Gives an account a new TOTP secret; returns its provisioning URI.
    pub fn totp_reset(&mut self, name: &str) -> Result<SecretText, ClientError> {
        match self.request(&Request::TotpReset {
            name: name.to_owned(),
        })? {
            Response::Provisioned { otpauth_uri } => Ok(otpauth_uri),
            r => Err(Self::unexpected(&r)),
        }
    }

    /// Logs off.
    pub fn logoff(mut self) -> Result<(), ClientError> {
        match self.request(&Request::Logoff)? {
            Response::LoggedOff => Ok(()),
            r => Err(Self::unexpected(&r)),
        }
    }
}
