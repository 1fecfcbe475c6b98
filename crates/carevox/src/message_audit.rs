//! Text messages (SIP MESSAGE, RFC 3428) passing through a PBX turned into
//! audit records of carevox-audit. A message is PHI: who wrote to whom,
//! and when, is recorded; its text never is.
//!
//! | event | actor | action | outcome |
//! |---|---|---|---|
//! | `Relayed` (the recipient's phone took it at once) | sender | `Create` | success |
//! | `Held` (stored encrypted for a recipient who is offline) | sender | `Create` | success |
//! | `Delivered` (a held message reached the recipient's phone) | recipient | `Read` | success |
//! | `Refused` (not taken; the sender got this status) | sender | `Execute` | minor failure |
//!
//! Every record's event type is `message` ([`MESSAGE_EVENT`]); the entity
//! is the message, by its Call-ID, or by the stored object's id once held.
//! Both parties, the Call-ID, the address and every detail are held in
//! [`Pii`] by the record, so its `Debug` names none of them.
//!
//! ```
//! use carevox::audit::{Action, Outcome};
//! use carevox::message_audit::{MessageEvent, MessageSubject, message_record};
//! use carevox::redact::Pii;
//!
//! let m = MessageSubject {
//!     sender: Pii::new("dr.lee"),
//!     recipient: Pii::new("nurse.kim"),
//!     call_id: Pii::new("a84b4c76e66710"),
//!     network_address: Pii::new(Some("192.0.2.7")),
//! };
//! let r = message_record(&MessageEvent::Held { object: "msg-1" }, &m, 1_795_428_000, "pbx");
//! assert_eq!((&r.action, r.outcome), (&Action::Create, Outcome::Success));
//! assert!(!format!("{r:?}").contains("nurse.kim"));
//! ```

use carevox_audit::{
    Action, AuthMethod, EventType, ObjectKind, ObjectRef, Outcome, Record, Timestamp,
};
use carevox_redact::Pii;

/// The event type of every message record.
pub const MESSAGE_EVENT: &str = "message";

/// One message event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageEvent<'a> {
    /// The recipient's phone answered 2xx to the message passed on.
    Relayed,
    /// The recipient was offline: the message was stored as `object`.
    Held {
        /// The stored object's id.
        object: &'a str,
    },
    /// The message stored as `object` reached the recipient's phone.
    Delivered {
        /// The stored object's id.
        object: &'a str,
    },
    /// The message was not taken; the sender got this status.
    Refused {
        /// The final status sent to the sender.
        status: u16,
    },
}

/// Which message the event is about. Every field is [`Pii`], so `Debug`
/// prints none of them.
#[derive(Debug, Clone, Copy)]
pub struct MessageSubject<'a> {
    /// The sender's user id (the digest user name).
    pub sender: Pii<&'a str>,
    /// The recipient's user id.
    pub recipient: Pii<&'a str>,
    /// The MESSAGE's Call-ID.
    pub call_id: Pii<&'a str>,
    /// The sender's address (for `Delivered`, the recipient's).
    pub network_address: Pii<Option<&'a str>>,
}

/// The audit record of `event` at `now` (seconds since the Unix epoch),
/// reported by `source`. See the [module documentation](self).
pub fn message_record(
    event: &MessageEvent<'_>,
    message: &MessageSubject<'_>,
    now: u64,
    source: &str,
) -> Record {
    let (action, outcome, actor) = match event {
        MessageEvent::Relayed | MessageEvent::Held { .. } => {
            (Action::Create, Outcome::Success, message.sender)
        }
        MessageEvent::Delivered { .. } => (Action::Read, Outcome::Success, message.recipient),
        MessageEvent::Refused { .. } => (Action::Execute, Outcome::MinorFailure, message.sender),
    };
    let mut r = Record::new(
        EventType::Other(MESSAGE_EVENT.to_owned()),
        action,
        outcome,
        Timestamp(now.saturating_mul(1000)),
        *actor.expose(),
        source,
    );
    r.actor.auth = AuthMethod::SipDigest;
    r.actor.network_address = message
        .network_address
        .expose()
        .map(|a| Pii::new(a.to_owned()));
    let object = match event {
        MessageEvent::Held { object } | MessageEvent::Delivered { object } => *object,
        _ => *message.call_id.expose(),
    };
    r.entity.object = Some(ObjectRef {
        kind: ObjectKind::Other(MESSAGE_EVENT.to_owned()),
        id: Pii::new(object.to_owned()),
    });
    r.correlation_id = Some(Pii::new((*message.call_id.expose()).to_owned()));
    r = r.with_detail("sender", *message.sender.expose());
    r = r.with_detail("recipient", *message.recipient.expose());
    match event {
        MessageEvent::Relayed => r = r.with_detail("delivery", "relayed"),
        MessageEvent::Held { .. } => r = r.with_detail("delivery", "held"),
        MessageEvent::Delivered { .. } => r = r.with_detail("delivery", "delivered"),
        MessageEvent::Refused { status } => r = r.with_detail("status", status.to_string()),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use carevox_redact::debug_leak;

    fn subject() -> MessageSubject<'static> {
        MessageSubject {
            sender: Pii::new("dr.lee"),
            recipient: Pii::new("+15551234567"),
            call_id: Pii::new("msg-7@clinic.example"),
            network_address: Pii::new(Some("192.0.2.7")),
        }
    }

    #[test]
    fn each_event_maps_to_its_record() {
        let s = subject();
        let held = message_record(&MessageEvent::Held { object: "msg-1" }, &s, 10, "pbx");
        assert_eq!(held.event, EventType::Other("message".into()));
        assert_eq!(
            (held.action, held.outcome),
            (Action::Create, Outcome::Success)
        );
        assert_eq!(held.actor.user_id.expose(), "dr.lee");
        assert_eq!(held.entity.object.as_ref().unwrap().id.expose(), "msg-1");
        assert_eq!(held.recorded, Timestamp(10_000));

        let read = message_record(&MessageEvent::Delivered { object: "msg-1" }, &s, 11, "pbx");
        assert_eq!(
            (read.action, read.outcome),
            (Action::Read, Outcome::Success)
        );
        assert_eq!(read.actor.user_id.expose(), "+15551234567");

        let relayed = message_record(&MessageEvent::Relayed, &s, 12, "pbx");
        assert_eq!(
            relayed.entity.object.as_ref().unwrap().id.expose(),
            "msg-7@clinic.example"
        );

        let refused = message_record(&MessageEvent::Refused { status: 404 }, &s, 13, "pbx");
        assert_eq!(
            (refused.action, refused.outcome),
            (Action::Execute, Outcome::MinorFailure)
        );
        assert!(
            refused
                .details
                .iter()
                .any(|d| d.key.expose() == "status" && d.value.expose() == "404")
        );
    }

    #[test]
    fn debug_names_nobody() {
        let s = subject();
        for e in [
            MessageEvent::Relayed,
            MessageEvent::Held { object: "msg-1" },
            MessageEvent::Delivered { object: "msg-1" },
            MessageEvent::Refused { status: 480 },
        ] {
            let r = message_record(&e, &s, 10, "pbx");
            assert_eq!(
                debug_leak(&r, &["dr.lee", "5551234567", "msg-7@clinic", "192.0.2.7"]),
                None
            );
        }
        assert_eq!(
            debug_leak(&s, &["dr.lee", "5551234567", "msg-7@clinic", "192.0.2.7"]),
            None
        );
    }
}
