//! The audit record: who did what to which data, when, from where, why, and
//! with what outcome (IHE ATNA / RFC 3881 / FHIR AuditEvent).

use std::fmt;

use carevox_redact::Pii;
use serde::{Deserialize, Serialize};

use crate::codec::{Reader, put_opt_str, put_str};
use crate::error::{Error, Result};

/// Version byte that opens every canonical record encoding.
pub const RECORD_VERSION: u8 = 1;

/// 10000-01-01T00:00:00Z in milliseconds since the epoch.
const MAX_RFC3339_MILLIS: u64 = 253_402_300_800_000;

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// Time always comes from the caller; the crate never reads a clock. In JSON
/// it is an RFC 3339 string such as `2026-03-01T08:15:00.250Z` (after the
/// year 9999, a string of milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Parses RFC 3339 in UTC (`YYYY-MM-DDTHH:MM:SS[.fff]Z`) or a bare number
    /// of milliseconds since the epoch.
    pub fn parse(s: &str) -> Option<Self> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().ok().map(Timestamp);
        }
        let s = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'))?;
        let (date, time) = s.split_once(['T', 't', ' '])?;
        let mut d = date.splitn(3, '-');
        let year: u64 = d.next()?.parse().ok()?;
        let month: u64 = d.next()?.parse().ok()?;
        let day: u64 = d.next()?.parse().ok()?;
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut t = hms.splitn(3, ':');
        let hour: u64 = t.next()?.parse().ok()?;
        let min: u64 = t.next()?.parse().ok()?;
        let sec: u64 = t.next()?.parse().ok()?;
        if !(1970..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || min > 59
            || sec > 60
        {
            return None;
        }
        let millis = match frac {
            None => 0,
            Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                let mut ms = 0u64;
                let mut scale = 100u64;
                for b in f.bytes().take(3) {
                    ms += u64::from(b - b'0') * scale;
                    scale /= 10;
                }
                ms
            }
            Some(_) => return None,
        };
        let days = days_from_civil(year, month, day)?;
        Some(Timestamp(
            ((days * 24 + hour) * 60 + min) * 60_000 + sec * 1000 + millis,
        ))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let (y, mo, d) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // RFC 3339 stops at year 9999; later times are written as a string
        // of milliseconds, which `parse` also reads.
        if self.0 < MAX_RFC3339_MILLIS {
            s.collect_str(self)
        } else {
            s.collect_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 UTC time"))
    }
}

macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),* $(,)? }
        other: $other_code:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value outside the list above, by name.
            Other(String),
        }

        impl $name {
            fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
                match self {
                    $( $name::$variant => { out.push($code); Ok(()) } )*
                    $name::Other(s) => { out.push($other_code); put_str(out, stringify!($name), s) }
                }
            }

            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                let at = r.pos();
                match r.u8()? {
                    $( $code => Ok($name::$variant), )*
                    $other_code => Ok($name::Other(r.str()?.to_owned())),
                    _ => Err(Error::malformed("record", at, concat!("unknown ", stringify!($name), " code"))),
                }
            }

            /// A short stable name (the JSON name; for `Other`, its text).
            pub fn name(&self) -> &str {
                match self {
                    $( $name::$variant => snake(stringify!($variant)), )*
                    $name::Other(s) => s,
                }
            }
        }
    };
}

/// The snake_case name of a CamelCase identifier, for the few fixed names.
fn snake(ident: &'static str) -> &'static str {
    // The names are fixed at compile time; the table maps each to its JSON name.
    match ident {
        "Login" => "login",
        "Logout" => "logout",
        "PatientRecordAccess" => "patient_record_access",
        "RecordingAccess" => "recording_access",
        "VoicemailAccess" => "voicemail_access",
        "CallStart" => "call_start",
        "CallEnd" => "call_end",
        "Disclosure" => "disclosure",
        "Export" => "export",
        "PermissionChange" => "permission_change",
        "ConfigurationChange" => "configuration_change",
        "KeyManagement" => "key_management",
        "Create" => "create",
        "Read" => "read",
        "Update" => "update",
        "Delete" => "delete",
        "Execute" => "execute",
        "None" => "none",
        "Password" => "password",
        "PasswordMfa" => "password_mfa",
        "Certificate" => "certificate",
        "SipDigest" => "sip_digest",
        "Token" => "token",
        "Treatment" => "treatment",
        "Payment" => "payment",
        "Operations" => "operations",
        "Patient" => "patient",
        "Recording" => "recording",
        "Voicemail" => "voicemail",
        "Call" => "call",
        "Account" => "account",
        "Document" => "document",
        other => other,
    }
}

coded_enum! {
    /// What kind of activity the record describes (FHIR AuditEvent.type).
    EventType {
        /// A login attempt (see the outcome for success or failure).
        Login = 1,
        /// A logout or session end.
        Logout = 2,
        /// Access to a patient's record or chart.
        PatientRecordAccess = 3,
        /// Playback or download of a call recording.
        RecordingAccess = 4,
        /// Playback of a voicemail.
        VoicemailAccess = 5,
        /// A call was set up.
        CallStart = 6,
        /// A call ended.
        CallEnd = 7,
        /// PHI was disclosed outside the organisation.
        Disclosure = 8,
        /// Data was exported.
        Export = 9,
        /// A role or permission changed.
        PermissionChange = 10,
        /// System configuration changed.
        ConfigurationChange = 11,
        /// A key was created, rotated or destroyed.
        KeyManagement = 12,
        /// The audit log cut the torn tail of an unacknowledged write when
        /// it was opened after a crash; the details say which file, where
        /// and how many bytes.
        LogRecovery = 13,
    }
    other: 255
}

coded_enum! {
    /// What was done (FHIR AuditEvent.action: C, R, U, D, E).
    Action {
        /// Create.
        Create = 1,
        /// Read, view, play back.
        Read = 2,
        /// Update.
        Update = 3,
        /// Delete.
        Delete = 4,
        /// Execute: a login, a call, a query.
        Execute = 5,
    }
    other: 255
}

coded_enum! {
    /// How the actor was authenticated.
    AuthMethod {
        /// Not authenticated (e.g. a failed login before any factor).
        None = 0,
        /// Password only.
        Password = 1,
        /// Password and a second factor (MFA).
        PasswordMfa = 2,
        /// A client certificate.
        Certificate = 3,
        /// SIP digest authentication.
        SipDigest = 4,
        /// A bearer or session token.
        Token = 5,
    }
    other: 255
}

coded_enum! {
    /// The kind of object an entity refers to.
    ObjectKind {
        /// A patient record.
        Patient = 1,
        /// A call recording.
        Recording = 2,
        /// A voicemail.
        Voicemail = 3,
        /// A call, by SIP Call-ID.
        Call = 4,
        /// A user account.
        Account = 5,
        /// A document.
        Document = 6,
    }
    other: 255
}

/// The outcome (RFC 3881 / FHIR AuditEvent.outcome codes 0, 4, 8, 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Success.
    Success,
    /// Minor failure (e.g. a wrong password).
    MinorFailure,
    /// Serious failure.
    SeriousFailure,
    /// Major failure.
    MajorFailure,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::MinorFailure => 4,
            Outcome::SeriousFailure => 8,
            Outcome::MajorFailure => 12,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Outcome::Success),
            4 => Some(Outcome::MinorFailure),
            8 => Some(Outcome::SeriousFailure),
            12 => Some(Outcome::MajorFailure),
            _ => None,
        }
    }

    /// True for every outcome but success.
    pub fn is_failure(self) -> bool {
        self != Outcome::Success
    }
}

/// Why the data was used (HL7 PurposeOfUse).
///
/// An emergency justification is free text that may name a patient or a
/// condition: it is a [`Pii`], so `Debug` prints `<redacted>` for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PurposeOfUse {
    /// Treatment (HL7 TREAT).
    Treatment,
    /// Payment (HL7 HPAYMT).
    Payment,
    /// Healthcare operations (HL7 HOPERAT).
    Operations,
    /// Emergency access, "break the glass" (HL7 ETREAT), with its justification.
    Emergency {
        /// Why normal access control was bypassed.
        justification: Pii<String>,
    },
    /// Any other purpose, by name.
    Other(String),
}

impl PurposeOfUse {
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            PurposeOfUse::Treatment => out.push(1),
            PurposeOfUse::Payment => out.push(2),
            PurposeOfUse::Operations => out.push(3),
            PurposeOfUse::Emergency { justification } => {
                out.push(4);
                put_str(out, "justification", justification.expose())?;
            }
            PurposeOfUse::Other(s) => {
                out.push(255);
                put_str(out, "purpose", s)?;
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.pos();
        Ok(match r.u8()? {
            1 => PurposeOfUse::Treatment,
            2 => PurposeOfUse::Payment,
            3 => PurposeOfUse::Operations,
            4 => PurposeOfUse::Emergency {
                justification: Pii::new(r.str()?.to_owned()),
            },
            255 => PurposeOfUse::Other(r.str()?.to_owned()),
            _ => return Err(Error::malformed("record", at, "unknown purpose of use")),
        })
    }

    /// True for emergency ("break the glass") access.
    pub fn is_emergency(&self) -> bool {
        matches!(self, PurposeOfUse::Emergency { .. })
    }
}

/// Who acted.
///
/// The user id and the network address are [`Pii`]: `Debug` prints the role
/// and the authentication method, and `<redacted>` for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The unique user id (HIPAA 164.312(a)(2)(i)).
    pub user_id: Pii<String>,
    /// The user's role when acting, if known.
    pub role: Option<String>,
    /// The network address the request came from (IP address, no port needed).
    pub network_address: Option<Pii<String>>,
    /// How the user was authenticated.
    pub auth: AuthMethod,
}

/// A reference to an object (a recording id, a Call-ID, a document id).
///
/// The id is a [`Pii`] (a Call-ID may carry a host name or an address):
/// `Debug` prints the kind and `<redacted>` for the id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// What kind of object.
    pub kind: ObjectKind,
    /// Its identifier.
    pub id: Pii<String>,
}

/// What the action touched.
///
/// The patient reference and the object id are [`Pii`]: `Debug` prints
/// `<redacted>` for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Entity {
    /// The patient whose data was touched (an MRN or FHIR `Patient/...` reference).
    pub patient: Option<Pii<String>>,
    /// The object acted on.
    pub object: Option<ObjectRef>,
}

/// One extensible key/value detail.
///
/// Key and value are free text, so both are [`Pii`]: `Debug` prints
/// `<redacted>` for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Detail {
    /// The key.
    pub key: Pii<String>,
    /// The value.
    pub value: Pii<String>,
}

/// One audit record.
///
/// Its canonical binary encoding ([`Record::encode`]) is deterministic and
/// versioned; it is what the log hashes. JSON (serde) is for export.
///
/// Everything that may be PHI or identify a person (the user id, network
/// address, patient reference, object id, emergency justification,
/// correlation id and the details' text) is held in [`Pii`], so the derived
/// `Debug` prints what is safe to log (event type, action, outcome, times,
/// role, authentication method, purpose, source id, one entry per detail)
/// and `<redacted>` for the rest. JSON carries the values unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    /// What kind of event.
    pub event: EventType,
    /// What was done.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// When it happened (UTC, from the caller's clock).
    pub occurred: Timestamp,
    /// When it was recorded (UTC, from the caller's clock). Within one log
    /// this never goes backwards.
    pub recorded: Timestamp,
    /// Who acted.
    pub actor: Actor,
    /// Why.
    pub purpose: PurposeOfUse,
    /// What was touched.
    pub entity: Entity,
    /// Which system reported the event (ATNA AuditSourceIdentification).
    pub source_id: String,
    /// A session or correlation id tying related records together.
    pub correlation_id: Option<Pii<String>>,
    /// Extensible key/value details, in the order given.
    pub details: Vec<Detail>,
}

impl Record {
    /// A record with the required fields; the optional ones start empty.
    pub fn new(
        event: EventType,
        action: Action,
        outcome: Outcome,
        at: Timestamp,
        user_id: impl Into<String>,
        source_id: impl Into<String>,
    ) -> Self {
        Record {
            event,
            action,
            outcome,
            occurred: at,
            recorded: at,
            actor: Actor {
                user_id: Pii::new(user_id.into()),
                role: None,
                network_address: None,
                auth: AuthMethod::None,
            },
            purpose: PurposeOfUse::Treatment,
            entity: Entity::default(),
            source_id: source_id.into(),
            correlation_id: None,
            details: Vec::new(),
        }
    }

    /// Appends the canonical encoding to `out`.
    ///
    /// Strings are length-prefixed (at most 65 535 bytes each), enums are
    /// one-byte codes, integers big-endian; details keep their order.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(RECORD_VERSION);
        self.event.encode(out)?;
        self.action.encode(out)?;
        out.push(self.outcome.code());
        out.extend_from_slice(&self.occurred.0.to_be_bytes());
        out.extend_from_slice(&self.recorded.0.to_be_bytes());
        put_str(out, "user_id", self.actor.user_id.expose())?;
        put_opt_str(out, "role", self.actor.role.as_deref())?;
        put_opt_str(out, "network_address", exposed(&self.actor.network_address))?;
        self.actor.auth.encode(out)?;
        self.purpose.encode(out)?;
        put_opt_str(out, "patient", exposed(&self.entity.patient))?;
        match &self.entity.object {
            None => out.push(0),
            Some(o) => {
                out.push(1);
                o.kind.encode(out)?;
                put_str(out, "object id", o.id.expose())?;
            }
        }
        put_str(out, "source_id", &self.source_id)?;
        put_opt_str(out, "correlation_id", exposed(&self.correlation_id))?;
        let n = u16::try_from(self.details.len()).map_err(|_| Error::FieldTooLong {
            field: "details",
            max: usize::from(u16::MAX),
        })?;
        out.extend_from_slice(&n.to_be_bytes());
        for d in &self.details {
            put_str(out, "detail key", d.key.expose())?;
            put_str(out, "detail value", d.value.expose())?;
        }
        Ok(())
    }

    /// The canonical encoding in a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes a canonical encoding; any other byte string is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "record");
        let version = r.u8()?;
        if version != RECORD_VERSION {
            return Err(Error::malformed("record", 0, "unknown record version"));
        }
        let event = EventType::decode(&mut r)?;
        let action = Action::decode(&mut r)?;
        let at = r.pos();
        let outcome = Outcome::from_code(r.u8()?)
            .ok_or_else(|| Error::malformed("record", at, "unknown outcome"))?;
        let occurred = Timestamp(r.u64()?);
        let recorded = Timestamp(r.u64()?);
        let user_id = Pii::new(r.str()?.to_owned());
        let role = r.opt_str()?.map(str::to_owned);
        let network_address = r.opt_str()?.map(Pii::from);
        let auth = AuthMethod::decode(&mut r)?;
        let purpose = PurposeOfUse::decode(&mut r)?;
        let patient = r.opt_str()?.map(Pii::from);
        let at = r.pos();
        let object = match r.u8()? {
            0 => None,
            1 => Some(ObjectRef {
                kind: ObjectKind::decode(&mut r)?,
                id: Pii::from(r.str()?),
            }),
            _ => return Err(Error::malformed("record", at, "bad option flag")),
        };
        let source_id = r.str()?.to_owned();
        let correlation_id = r.opt_str()?.map(Pii::from);
        let n = r.u16()?;
        let mut details = Vec::with_capacity(usize::from(n).min(r.remaining() / 4));
        for _ in 0..n {
            let key = Pii::from(r.str()?);
            let value = Pii::from(r.str()?);
            details.push(Detail { key, value });
        }
        r.finish()?;
        Ok(Record {
            event,
            action,
            outcome,
            occurred,
            recorded,
            actor: Actor {
                user_id,
                role,
                network_address,
                auth,
            },
            purpose,
            entity: Entity { patient, object },
            source_id,
            correlation_id,
            details,
        })
    }

    /// Checks that `bytes` is a canonical record encoding without building
    /// the record (no allocation): the same rules as [`Record::decode`].
    pub fn validate(bytes: &[u8]) -> Result<()> {
        fn coded(r: &mut Reader<'_>, known: std::ops::RangeInclusive<u8>) -> Result<()> {
            let at = r.pos();
            match r.u8()? {
                255 => r.str().map(drop),
                c if known.contains(&c) => Ok(()),
                _ => Err(Error::malformed("record", at, "unknown code")),
            }
        }
        let mut r = Reader::new(bytes, "record");
        if r.u8()? != RECORD_VERSION {
            return Err(Error::malformed("record", 0, "unknown record version"));
        }
        coded(&mut r, 1..=13)?; // event type (LogRecovery is 13)
        coded(&mut r, 1..=5)?; // action
        let at = r.pos();
        if Outcome::from_code(r.u8()?).is_none() {
            return Err(Error::malformed("record", at, "unknown outcome"));
        }
        r.u64()?;
        r.u64()?;
        r.str()?;
        r.opt_str()?;
        r.opt_str()?;
        coded(&mut r, 0..=5)?; // how authenticated
        let at = r.pos();
        match r.u8()? {
            1..=3 => {}
            4 | 255 => {
                r.str()?;
            }
            _ => return Err(Error::malformed("record", at, "unknown purpose of use")),
        }
        r.opt_str()?;
        let at = r.pos();
        match r.u8()? {
            0 => {}
            1 => {
                coded(&mut r, 1..=6)?; // object kind
                r.str()?;
            }
            _ => return Err(Error::malformed("record", at, "bad option flag")),
        }
        r.str()?;
        r.opt_str()?;
        for _ in 0..r.u16()? {
            r.str()?;
            r.str()?;
        }
        r.finish()
    }

    /// Reads only the `recorded` time of a canonical encoding, without
    /// decoding the rest. Returns `None` if the bytes are too short.
    pub(crate) fn peek_recorded(bytes: &[u8]) -> Option<Timestamp> {
        let mut r = Reader::new(bytes, "record");
        r.u8().ok()?;
        skip_coded(&mut r)?;
        skip_coded(&mut r)?;
        r.u8().ok()?;
        r.u64().ok()?;
        r.u64().ok().map(Timestamp)
    }

    /// Adds a detail.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.push(Detail {
            key: Pii::new(key.into()),
            value: Pii::new(value.into()),
        });
        self
    }
}

/// The text of an optional PHI field, for the canonical encoding.
fn exposed(v: &Option<Pii<String>>) -> Option<&str> {
    v.as_ref().map(|p| p.expose().as_str())
}

fn skip_coded(r: &mut Reader<'_>) -> Option<()> {
    if r.u8().ok()? == 255 {
        r.str().ok()?;
    }
    Some(())
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_rfc3339() {
        for ms in [
            0u64,
            1,
            999,
            86_399_999,
            951_782_400_000,
            1_764_000_000_123,
            4_102_444_800_000,
        ] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{t}");
        }
        assert_eq!(
            Timestamp::parse("2000-02-29T00:00:00Z"),
            Some(Timestamp(951_782_400_000))
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::parse("12345"), Some(Timestamp(12345)));
        assert_eq!(Timestamp::parse("2000-13-01T00:00:00Z"), None);
        assert_eq!(Timestamp::parse("2000-01-01T00:00:00"), None);
    }

    #[test]
    fn record_round_trips_and_rejects_trailing_bytes() {
        let mut r = Record::new(
            EventType::RecordingAccess,
            Action::Read,
            Outcome::Success,
            Timestamp(1_700_000_000_000),
            "dr.lee",
            "pbx-1",
        )
        .with_detail("reason", "QA");
        r.purpose = PurposeOfUse::Emergency {
            justification: "cardiac arrest".into(),
        };
        r.entity.object = Some(ObjectRef {
            kind: ObjectKind::Call,
            id: "a84b4c76e66710@pc33".into(),
        });
        r.actor.auth = AuthMethod::Other("smartcard".into());
        let mut bytes = r.to_bytes().unwrap();
        assert_eq!(Record::decode(&bytes).unwrap(), r);
        assert_eq!(Record::peek_recorded(&bytes), Some(r.recorded));
        bytes.push(0);
        assert!(Record::decode(&bytes).is_err());
    }

    #[test]
    fn debug_redacts_phi() {
        let mut r = Record::new(
            EventType::PatientRecordAccess,
            Action::Read,
            Outcome::Success,
            Timestamp(1_700_000_000_000),
            "dr.secret-user",
            "pbx-1",
        )
        .with_detail("diagnosis-key", "diagnosis-value");
        r.actor.network_address = Some("198.51.100.77".into());
        r.actor.role = Some("physician".into());
        r.entity.patient = Some("Patient/MRN-4711-SECRET".into());
        r.entity.object = Some(ObjectRef {
            kind: ObjectKind::Call,
            id: "call-id-secret@host".into(),
        });
        r.purpose = PurposeOfUse::Emergency {
            justification: "justification-secret".into(),
        };
        r.correlation_id = Some("correlation-secret".into());
        let text = format!("{r:?}");
        let pretty = format!("{r:#?}");
        for out in [&text, &pretty] {
            for phi in [
                "MRN-4711",
                "dr.secret-user",
                "198.51.100.77",
                "call-id-secret",
                "justification-secret",
                "correlation-secret",
                "diagnosis-key",
                "diagnosis-value",
            ] {
                assert!(!out.contains(phi), "{phi} leaked into {out}");
            }
        }
        for safe in [
            "PatientRecordAccess",
            "Read",
            "Success",
            "1700000000000",
            "physician",
            "pbx-1",
            "<redacted>",
        ] {
            assert!(text.contains(safe), "{safe} missing from {text}");
        }
    }

    #[test]
    fn overlong_field_is_an_error() {
        let r = Record::new(
            EventType::Login,
            Action::Execute,
            Outcome::Success,
            Timestamp(0),
            "x".repeat(70_000),
            "s",
        );
        assert!(matches!(
            r.to_bytes(),
            Err(Error::FieldTooLong {
                field: "user_id",
                ..
            })
        ));
    }
}
