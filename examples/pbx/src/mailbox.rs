//! Voicemail by phone: what a user hears and may do after calling the
//! voicemail number (`[voicemail] number`) from their own phone.
//!
//! The call is digest-authenticated like any other, so the PBX knows whose
//! mailbox it is; the PIN (DTMF digits, RFC 4733) is the second factor.
//! [`Menu`] is the menu's logic without I/O: the server feeds it the digits
//! the phone sends and the results of what it asked for, and does the
//! [`Step`]s it returns (play a prompt, check the PIN, open or delete a
//! message, hang up), each access decided by carevox-authz and audited
//! there before it happens.
//!
//! | when | key | what happens |
//! |---|---|---|
//! | entering the PIN | digits, then `#` | the PIN is checked; `*` starts over |
//! | a wrong PIN | | an error tone; after [`MAX_PIN_ATTEMPTS`] the PBX hangs up |
//! | listening | `#` or `6` | the next message |
//! | listening | `7` | the message is deleted (crypto-shredded), then the next |
//! | listening | `*` | the message again from its start |
//! | after the last message | | a goodbye tone, then the PBX hangs up |
//!
//! Messages play oldest first, each after a short beep.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use carevox::access::{Subject, Target, access_record};
use carevox::audio::G711;
use carevox::audit::{
    Action, AuthMethod as AuditAuth, EventType, ObjectKind, ObjectRef, Outcome, Record, Timestamp,
};
use carevox::audit_sink::AuditSink;
use carevox::authz::lockout::{LockoutError, LockoutTable};
use carevox::authz::{Attributes, Policy, Principal, Request as AuthzRequest, Resource, UserId};
use carevox::dtmf::DtmfReceiver;
use carevox::redact::{Pii, Secret};
use carevox::vault::Vault;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::admin::control::{mailbox_number, mailbox_owner};
use crate::media::Playout;
use crate::pin::{VoicemailPin, verify_or_dummy};

/// Wrong PINs allowed in one call before the PBX hangs up (each also
/// counts towards the user's lockout).
pub const MAX_PIN_ATTEMPTS: u32 = 3;
/// The longest PIN (longer input is checked as typed and fails).
pub const MAX_PIN_DIGITS: usize = 12;

/// A prompt the menu asks for: the server turns it into audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// Enter your PIN.
    EnterPin,
    /// That PIN was wrong; enter it again.
    WrongPin,
    /// No messages.
    NoMessages,
    /// The beep before each message.
    NextMessage,
    /// The message was deleted.
    Deleted,
    /// Goodbye.
    Goodbye,
    /// Refused (too many wrong PINs, a locked user, no PIN set).
    Refused,
}

/// What the server does next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Stop what is playing.
    Silence,
    /// Play a prompt (after anything already playing).
    Play(Prompt),
    /// Check this PIN against the user's, then call
    /// [`Menu::pin_checked`].
    CheckPin(Secret<String>),
    /// Decide, audit and open message `index` (of the list given to
    /// [`Menu::new`]), then play it and call [`Menu::opened`]; call
    /// [`Menu::finished_playing`] once it has played out.
    Open(usize),
    /// Decide, audit and delete message `index`, then call
    /// [`Menu::deleted`].
    Delete(usize),
    /// Hang up once what is playing has played out.
    HangUp,
}

#[derive(Debug)]
enum State {
    Pin { typed: Secret<String> },
    Checking,
    Listening { index: usize },
    Deleting { index: usize },
    Done,
}

/// The voicemail menu of one call. See the [module documentation](self).
#[derive(Debug)]
pub struct Menu {
    messages: usize,
    attempts: u32,
    state: State,
}

impl Menu {
    /// A menu over a mailbox of `messages` messages (oldest first); the
    /// steps to start with (the PIN prompt).
    pub fn new(messages: usize) -> (Menu, Vec<Step>) {
        let menu = Menu {
            messages,
            attempts: 0,
            state: State::Pin {
                typed: Secret::new(String::new()),
            },
        };
        (menu, vec![Step::Play(Prompt::EnterPin)])
    }

    /// Sets the number of messages, once the mailbox is known (before the
    /// PIN is accepted the menu needs no count).
    pub fn set_messages(&mut self, messages: usize) {
        self.messages = messages;
    }

    /// Whether the menu has ended (the server hangs up).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// A digit the phone sent (`0`-`9`, `*`, `#`, `A`-`D`).
    pub fn digit(&mut self, digit: char) -> Vec<Step> {
        match &mut self.state {
            State::Pin { typed } => match digit {
                '#' => {
                    let pin = std::mem::replace(typed, Secret::new(String::new()));
                    self.state = State::Checking;
                    vec![Step::Silence, Step::CheckPin(pin)]
                }
                '*' => {
                    *typed = Secret::new(String::new());
                    vec![Step::Silence, Step::Play(Prompt::EnterPin)]
                }
                d if d.is_ascii_digit() => {
                    // Past the longest PIN the digits are kept no further:
                    // the check fails on what was typed.
                    let mut more = typed.expose().clone();
                    if more.len() <= MAX_PIN_DIGITS {
                        more.push(d);
                    }
                    *typed = Secret::new(more);
                    vec![Step::Silence]
                }
                _ => Vec::new(),
            },
            State::Listening { index } => {
                let index = *index;
                match digit {
                    '#' | '6' => {
                        let mut steps = vec![Step::Silence];
                        steps.extend(self.next(index + 1));
                        steps
                    }
                    '7' => {
                        self.state = State::Deleting { index };
                        vec![Step::Silence, Step::Delete(index)]
                    }
                    '*' => vec![Step::Silence, Step::Open(index)],
                    _ => Vec::new(),
                }
            }
            State::Checking | State::Deleting { .. } | State::Done => Vec::new(),
        }
    }

    /// The result of a [`Step::CheckPin`]: `Some(true)` right, `Some(false)`
    /// wrong, `None` refused without a check (locked out, no PIN set).
    pub fn pin_checked(&mut self, right: Option<bool>) -> Vec<Step> {
        if !matches!(self.state, State::Checking) {
            return Vec::new();
        }
        match right {
            Some(true) => {
                if self.messages == 0 {
                    self.state = State::Done;
                    vec![Step::Play(Prompt::NoMessages), Step::HangUp]
                } else {
                    self.next(0)
                }
            }
            Some(false) => {
                self.attempts += 1;
                if self.attempts >= MAX_PIN_ATTEMPTS {
                    self.state = State::Done;
                    vec![Step::Play(Prompt::Refused), Step::HangUp]
                } else {
                    self.state = State::Pin {
                        typed: Secret::new(String::new()),
                    };
                    vec![Step::Play(Prompt::WrongPin)]
                }
            }
            None => {
                self.state = State::Done;
                vec![Step::Play(Prompt::Refused), Step::HangUp]
            }
        }
    }

    /// The result of a [`Step::Open`]: `false` when the message could not
    /// be played (refused, gone): the menu moves on to the next.
    pub fn opened(&mut self, index: usize, played: bool) -> Vec<Step> {
        match self.state {
            State::Listening { index: i } if i == index && !played => self.next(index + 1),
            _ => Vec::new(),
        }
    }

    /// Message `index` has played out: the next one.
    pub fn finished_playing(&mut self, index: usize) -> Vec<Step> {
        match self.state {
            State::Listening { index: i } if i == index => self.next(index + 1),
            _ => Vec::new(),
        }
    }

    /// The result of a [`Step::Delete`] (whether it was deleted): the next
    /// message.
    pub fn deleted(&mut self, index: usize, deleted: bool) -> Vec<Step> {
        match self.state {
            State::Deleting { index: i } if i == index => {
                let mut steps = Vec::new();
                if deleted {
                    steps.push(Step::Play(Prompt::Deleted));
                }
                steps.extend(self.next(index + 1));
                steps
            }
            _ => Vec::new(),
        }
    }

    fn next(&mut self, index: usize) -> Vec<Step> {
        if index < self.messages {
            self.state = State::Listening { index };
            vec![Step::Play(Prompt::NextMessage), Step::Open(index)]
        } else {
            self.state = State::Done;
            vec![Step::Play(Prompt::Goodbye), Step::HangUp]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Steps compared by kind (a PIN check by its presence only).
    impl PartialEq for Step {
        fn eq(&self, other: &Step) -> bool {
            match (self, other) {
                (Step::Silence, Step::Silence)
                | (Step::HangUp, Step::HangUp)
                | (Step::CheckPin(_), Step::CheckPin(_)) => true,
                (Step::Play(a), Step::Play(b)) => a == b,
                (Step::Open(a), Step::Open(b)) | (Step::Delete(a), Step::Delete(b)) => a == b,
                _ => false,
            }
        }
    }

    fn typed(menu: &mut Menu, keys: &str) -> Vec<Step> {
        keys.chars().flat_map(|c| menu.digit(c)).collect()
    }

    fn pin_of(steps: &[Step]) -> String {
        steps
            .iter()
            .find_map(|s| match s {
                Step::CheckPin(p) => Some(p.expose().clone()),
                _ => None,
            })
            .expect("a PIN check")
    }

    #[test]
    fn the_right_pin_plays_every_message_oldest_first_then_hangs_up() {
        let (mut menu, start) = Menu::new(2);
        assert_eq!(start, [Step::Play(Prompt::EnterPin)]);
        let steps = typed(&mut menu, "24*2468#");
        assert_eq!(pin_of(&steps), "2468", "* starts over");
        assert_eq!(
            menu.pin_checked(Some(true)),
            [Step::Play(Prompt::NextMessage), Step::Open(0)]
        );
        assert!(menu.opened(0, true).is_empty());
        assert_eq!(
            menu.finished_playing(0),
            [Step::Play(Prompt::NextMessage), Step::Open(1)]
        );
        // A stale end of message 0 changes nothing.
        assert!(menu.finished_playing(0).is_empty());
        assert_eq!(
            menu.finished_playing(1),
            [Step::Play(Prompt::Goodbye), Step::HangUp]
        );
        assert!(menu.is_done());
        assert!(menu.digit('1').is_empty());
    }

    #[test]
    fn keys_skip_replay_and_delete() {
        let (mut menu, _) = Menu::new(3);
        typed(&mut menu, "1234#");
        menu.pin_checked(Some(true));
        assert_eq!(menu.digit('*'), [Step::Silence, Step::Open(0)]);
        assert_eq!(
            menu.digit('#'),
            [
                Step::Silence,
                Step::Play(Prompt::NextMessage),
                Step::Open(1)
            ]
        );
        assert_eq!(menu.digit('7'), [Step::Silence, Step::Delete(1)]);
        // Keys while deleting wait for the result.
        assert!(menu.digit('#').is_empty());
        assert_eq!(
            menu.deleted(1, true),
            [
                Step::Play(Prompt::Deleted),
                Step::Play(Prompt::NextMessage),
                Step::Open(2)
            ]
        );
        // A message that cannot be opened is passed over.
        assert_eq!(
            menu.opened(2, false),
            [Step::Play(Prompt::Goodbye), Step::HangUp]
        );
    }

    #[test]
    fn wrong_pins_are_allowed_up_to_the_limit() {
        let (mut menu, _) = Menu::new(1);
        for attempt in 1..MAX_PIN_ATTEMPTS {
            typed(&mut menu, "0000#");
            assert_eq!(
                menu.pin_checked(Some(false)),
                [Step::Play(Prompt::WrongPin)],
                "{attempt}"
            );
        }
        // Digits while the PIN is checked are not typed into the next one.
        let steps = typed(&mut menu, "0000#99");
        assert_eq!(pin_of(&steps), "0000");
        assert_eq!(
            menu.pin_checked(Some(false)),
            [Step::Play(Prompt::Refused), Step::HangUp]
        );
        assert!(menu.is_done());
    }

    #[test]
    fn a_refusal_without_a_check_and_an_empty_mailbox_end_the_call() {
        let (mut menu, _) = Menu::new(4);
        typed(&mut menu, "1#");
        assert_eq!(
            menu.pin_checked(None),
            [Step::Play(Prompt::Refused), Step::HangUp]
        );
        let (mut empty, _) = Menu::new(0);
        typed(&mut empty, "1#");
        assert_eq!(
            empty.pin_checked(Some(true)),
            [Step::Play(Prompt::NoMessages), Step::HangUp]
        );
    }

    #[test]
    fn an_overlong_pin_is_cut_and_fails_and_nothing_prints_it() {
        let (mut menu, _) = Menu::new(1);
        let steps = typed(&mut menu, &"9".repeat(40));
        assert!(steps.iter().all(|s| *s == Step::Silence));
        let steps = menu.digit('#');
        assert_eq!(pin_of(&steps).len(), MAX_PIN_DIGITS + 1);
        assert!(!format!("{steps:?}").contains("999"));
        assert!(!format!("{menu:?}").contains("999"));
    }
}

/// The audio of `prompt`: tones (the PBX has no recorded voice prompts).
pub fn prompt_audio(prompt: Prompt) -> Vec<u8> {
    use crate::media::{beep, pause};
    match prompt {
        // Two short high beeps: type the PIN.
        Prompt::EnterPin => [
            beep(800.0, 150, 6000.0),
            pause(100),
            beep(800.0, 150, 6000.0),
        ]
        .concat(),
        Prompt::WrongPin => [beep(400.0, 500, 6000.0), pause(200)].concat(),
        Prompt::NoMessages => [
            beep(600.0, 300, 6000.0),
            pause(200),
            beep(600.0, 300, 6000.0),
        ]
        .concat(),
        Prompt::NextMessage => [pause(300), beep(1000.0, 200, 6000.0), pause(200)].concat(),
        Prompt::Deleted => [
            beep(1200.0, 100, 6000.0),
            pause(80),
            beep(1200.0, 100, 6000.0),
        ]
        .concat(),
        Prompt::Goodbye => [
            pause(200),
            beep(660.0, 250, 6000.0),
            beep(440.0, 350, 6000.0),
        ]
        .concat(),
        Prompt::Refused => beep(400.0, 1000, 6000.0),
    }
}

/// What a mailbox call tells the server.
#[derive(Debug)]
pub(crate) enum MailboxEvent {
    /// Message `.0` was deleted (the mailbox's counts change).
    Deleted(String),
    /// The menu of call `.0` ended: hang up.
    Done(u64),
}

/// The role the policy gives a user reaching their own mailbox from their
/// own phone (see [`crate::admin::control::ACCOUNT_POLICY`]).
pub const PHONE_ROLE: &str = "phone_user";

/// Everything a mailbox call needs, handed over by the server.
pub(crate) struct MailboxCall {
    pub number: u64,
    pub user: Pii<String>,
    pub address: Pii<Option<String>>,
    /// The mailbox's messages (vault ids), in no order.
    pub messages: Vec<String>,
    pub pin: Option<VoicemailPin>,
    pub vault: Arc<Vault>,
    pub audit: Arc<dyn AuditSink>,
    pub policy: Arc<Policy>,
    pub lockout: Arc<Mutex<LockoutTable<String>>>,
    pub source: String,
    /// The payload type of telephone-events the phone agreed to.
    pub dtmf: Option<u8>,
    pub playout: Playout,
    pub heard: mpsc::Receiver<Vec<u8>>,
    pub events: mpsc::Sender<MailboxEvent>,
}

/// How often the driver looks whether the playout ran dry.
const POLL: Duration = Duration::from_millis(100);

impl MailboxCall {
    /// Runs the menu until it ends (then asks the server to hang up) or
    /// the caller hangs up (the media's channel closes).
    pub(crate) async fn run(mut self) {
        let mut dtmf = DtmfReceiver::new(self.dtmf.unwrap_or(101));
        let (mut menu, first) = Menu::new(0);
        let mut playing: Option<usize> = None;
        let mut hang_up = false;
        // Digits are only heard once the phone agreed to send them.
        if self.dtmf.is_none() {
            debug!(
                call = self.number,
                "no telephone-event: the menu cannot be used"
            );
            self.playout.push(&prompt_audio(Prompt::Refused));
            hang_up = true;
        } else {
            self.perform(first, &mut menu, &mut playing, &mut hang_up)
                .await;
        }
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                packet = self.heard.recv() => {
                    let Some(packet) = packet else {
                        // The caller hung up.
                        return;
                    };
                    let digits: Vec<char> = match dtmf.push(&packet) {
                        Ok(events) => events.iter().filter_map(|e| e.digit()).map(char::from).collect(),
                        Err(_) => Vec::new(),
                    };
                    for d in digits {
                        let steps = menu.digit(d);
                        self.perform(steps, &mut menu, &mut playing, &mut hang_up).await;
                    }
                }
                _ = poll.tick() => {
                    if self.playout.pending() > 0 {
                        continue;
                    }
                    if hang_up {
                        let _ = self.events.send(MailboxEvent::Done(self.number)).await;
                        return;
                    }
                    if let Some(i) = playing.take() {
                        let steps = menu.finished_playing(i);
                        self.perform(steps, &mut menu, &mut playing, &mut hang_up).await;
                    }
                }
            }
        }
    }

    /// Does `steps` and every step they lead to.
    async fn perform(
        &mut self,
        steps: Vec<Step>,
        menu: &mut Menu,
        playing: &mut Option<usize>,
        hang_up: &mut bool,
    ) {
        let mut todo: std::collections::VecDeque<Step> = steps.into();
        while let Some(step) = todo.pop_front() {
            let more = match step {
                Step::Silence => {
                    self.playout.clear();
                    *playing = None;
                    Vec::new()
                }
                Step::Play(p) => {
                    self.playout.push(&prompt_audio(p));
                    Vec::new()
                }
                Step::HangUp => {
                    *hang_up = true;
                    Vec::new()
                }
                Step::CheckPin(pin) => {
                    let right = self.check_pin(pin).await;
                    if right == Some(true) {
                        self.sort_messages(menu).await;
                    }
                    menu.pin_checked(right)
                }
                Step::Open(i) => {
                    let played = self.open(i).await;
                    if played {
                        *playing = Some(i);
                    }
                    menu.opened(i, played)
                }
                Step::Delete(i) => {
                    let deleted = self.delete(i).await;
                    menu.deleted(i, deleted)
                }
            };
            todo.extend(more);
        }
    }

    fn now() -> u64 {
        crate::server::unix_now()
    }

    /// Stages `record` and makes it durable before what it records
    /// happens.
    async fn audit_now(&self, record: Record) -> bool {
        let audit = self.audit.clone();
        let done = tokio::task::spawn_blocking(move || {
            audit.submit(&record)?;
            audit.sync()
        })
        .await;
        match done {
            Ok(Ok(())) => true,
            _ => {
                warn!(
                    call = self.number,
                    "mailbox audit record not written: access refused"
                );
                false
            }
        }
    }

    /// A login record of the PIN step.
    fn pin_record(&self, outcome: Outcome, result: &str) -> Record {
        let at = Timestamp(Self::now().saturating_mul(1000));
        let mut r = Record::new(
            EventType::Login,
            Action::Execute,
            outcome,
            at,
            self.user.expose().as_str(),
            self.source.as_str(),
        );
        r.actor.role = Some(PHONE_ROLE.to_owned());
        r.actor.auth = AuditAuth::SipDigest;
        r.actor.network_address = self.address.expose().as_deref().map(Pii::from);
        r.with_detail("factor", "voicemail-pin")
            .with_detail("result", result)
    }

    /// Checks the PIN typed (`None`: refused without a check).
    async fn check_pin(&mut self, typed: Secret<String>) -> Option<bool> {
        let user = self.user.expose().clone();
        let now = Self::now();
        let locked = self
            .lockout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(&user, now);
        if let Err(LockoutError::Locked { .. }) = locked {
            let record = self.pin_record(Outcome::MinorFailure, "locked out");
            self.audit_now(record).await;
            return None;
        }
        let pin = self.pin.clone();
        let right =
            tokio::task::spawn_blocking(move || verify_or_dummy(pin.as_ref(), typed.expose()))
                .await
                .unwrap_or(false);
        if self.pin.is_none() {
            // No PIN set: refused, in the time a check takes.
            let record = self.pin_record(Outcome::MinorFailure, "no voicemail pin set");
            self.audit_now(record).await;
            return None;
        }
        let record = if right {
            self.lockout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record_success(&user);
            self.pin_record(Outcome::Success, "pin accepted")
        } else {
            let until = self
                .lockout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record_failure(&user, now);
            let r = self.pin_record(Outcome::MinorFailure, "pin refused");
            match until {
                Some(t) => r.with_detail("locked-until", t.to_string()),
                None => r,
            }
        };
        // A right PIN whose record cannot be written opens nothing.
        let written = self.audit_now(record).await;
        Some(right && written)
    }

    /// Orders the messages oldest first (their headers say when) and
    /// tells the menu how many there are.
    async fn sort_messages(&mut self, menu: &mut Menu) {
        let vault = self.vault.clone();
        let ids = std::mem::take(&mut self.messages);
        let sorted = tokio::task::spawn_blocking(move || {
            let mut dated: Vec<(u64, String)> = ids
                .into_iter()
                .filter_map(|id| vault.metadata(&id).ok().map(|m| (m.created_at, id)))
                .collect();
            dated.sort();
            dated.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        self.messages = sorted;
        menu.set_messages(self.messages.len());
    }

    /// Decides `action` on message `index` for the caller and audits the
    /// decision; whether it is allowed (and audited).
    async fn decide(&self, index: usize, action: &str, audit_action: Action) -> bool {
        let Some(id) = self.messages.get(index) else {
            return false;
        };
        let (Some(kind), Some(act), Ok(roles)) = (
            self.policy.resource_type("voicemail"),
            self.policy.action(action),
            self.policy.role_set(&[PHONE_ROLE]),
        ) else {
            warn!("the policy lacks the phone user's role, resource or action");
            return false;
        };
        let owner = mailbox_owner(self.user.expose());
        let user = UserId(mailbox_number(self.user.expose()));
        let Ok(principal) = Principal::new(&self.policy, user, roles, true, Some(owner), &[])
        else {
            return false;
        };
        let request = AuthzRequest {
            principal,
            action: act,
            resource: Resource {
                kind,
                owner: Some(owner),
                care_teams: &[],
                ephi: true,
                attributes: Attributes::NONE,
            },
            attributes: Attributes::NONE,
            now: Self::now(),
            break_glass: None,
        };
        let decision = self.policy.decide(&request);
        let record = access_record(
            &request,
            &decision,
            &Subject {
                user_id: self.user.expose(),
                role: Some(PHONE_ROLE),
                network_address: self.address.expose().as_deref(),
                auth: AuditAuth::SipDigest,
            },
            &Target {
                event: EventType::VoicemailAccess,
                action: audit_action,
                patient: None,
                object: Some(ObjectRef {
                    kind: ObjectKind::Voicemail,
                    id: Pii::new(id.clone()),
                }),
                correlation_id: None,
            },
            &self.source,
        );
        let written = self.audit_now(record).await;
        decision.is_allowed() && written
    }

    /// Opens message `index` and queues it; whether it plays.
    async fn open(&mut self, index: usize) -> bool {
        if !self.decide(index, "listen", Action::Read).await {
            return false;
        }
        let Some(id) = self.messages.get(index).cloned() else {
            return false;
        };
        let vault = self.vault.clone();
        let got = tokio::task::spawn_blocking(move || vault.get(&id)).await;
        match got {
            Ok(Ok((meta, samples))) if meta.content_type == G711::Pcmu.media_type() => {
                self.playout.push(&samples);
                true
            }
            _ => {
                debug!(call = self.number, "a message could not be played");
                false
            }
        }
    }

    /// Deletes message `index` (its key first); whether it is gone.
    async fn delete(&mut self, index: usize) -> bool {
        if !self.decide(index, "delete", Action::Delete).await {
            return false;
        }
        let Some(id) = self.messages.get(index).cloned() else {
            return false;
        };
        let vault = self.vault.clone();
        let gone_id = id.clone();
        let gone = tokio::task::spawn_blocking(move || {
            vault.shred(&gone_id)?;
            match vault.delete(&gone_id) {
                Ok(()) | Err(carevox::vault::Error::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await;
        match gone {
            Ok(Ok(())) => {
                let _ = self.events.send(MailboxEvent::Deleted(id)).await;
                true
            }
            _ => {
                warn!(call = self.number, "a message could not be deleted");
                false
            }
        }
    }
}
