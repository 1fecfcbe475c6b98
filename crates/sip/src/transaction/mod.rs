//! SIP transactions (RFC 3261 section 17, with the corrections of RFC 6026),
//! sans-IO.
//!
//! A [`TransactionLayer`] holds every live client and server transaction of
//! one endpoint. It never opens a socket and never reads a clock: the caller
//! feeds it what arrived and what time it is, and drains what it wants sent,
//! what the transaction user (TU) must know, and when to wake it next.
//!
//! # Run loop
//!
//! ```text
//! loop {
//!     layer.handle_input(now, input)?;        // a datagram, or Input::Timeout
//!     // API calls (send_request, send_response, send_cancel) take `now` too
//!     while let Some(output) = layer.poll_output() {
//!         match output {
//!             Output::Transmit(t) => socket.send_to(&t.bytes, t.destination),
//!             Output::Event(e)    => tu.handle(e),
//!             Output::Timeout(at) => { wake_at = at; break }
//!         }
//!     }
//!     // poll_output() returning None: no timer is pending, wait for input only
//! }
//! ```
//!
//! # What each transaction does
//!
//! | kind | states | timers |
//! |---|---|---|
//! | INVITE client (17.1.1, RFC 6026 7.2) | Calling, Proceeding, Completed, Accepted | A (retransmit, doubling), B (64·T1 timeout), D (32 s wait for response retransmissions), M (64·T1 in Accepted) |
//! | non-INVITE client (17.1.2) | Trying, Proceeding, Completed | E (retransmit, doubling to T2), F (64·T1 timeout), K (T4) |
//! | INVITE server (17.2.1, RFC 6026 7.1) | Proceeding, Completed, Confirmed, Accepted | 100 Trying after 200 ms, G (retransmit, doubling to T2), H (64·T1 wait for ACK), I (T4), L (64·T1 in Accepted) |
//! | non-INVITE server (17.2.2) | Trying, Proceeding, Completed | J (64·T1) |
//!
//! Retransmission timers (A, E, G) run only over unreliable transports; the
//! waiting timers D, I, J and K are zero over reliable ones (the transaction
//! ends at once).
//!
//! The ACK for a non-2xx final response is built and sent inside the INVITE
//! client transaction (17.1.1.3). The ACK for a 2xx is the TU's to send
//! ([`TransactionLayer::send_stateless`]); 2xx retransmissions reach the TU
//! while the client transaction is Accepted (RFC 6026), and a TU resends its
//! 2xx through the server transaction while that is Accepted.
//!
//! Responses are sent to the address the request came from, over the same
//! transport (symmetric response routing, as RFC 3581 describes): the layer
//! resolves no names.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use carevox_sip::Message;
//! use carevox_sip::transaction::{
//!     Config, Event, Input, Output, TransactionLayer, TransportKind,
//! };
//!
//! let mut uac = TransactionLayer::new(Config::default());
//! let server: std::net::SocketAddr = "127.0.0.1:5060".parse()?;
//! let options = Message::parse(Bytes::from_static(
//!     b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK74bf9\r\n\
//! Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
//! To: <sip:bob@127.0.0.1>\r\nCall-ID: 3848276298220188511\r\n\
//! CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
//! ))?;
//! let start = Instant::now();
//! let id = uac.send_request(start, options, server, TransportKind::Udp)?;
//! // The request goes out, then the layer asks to be woken at Timer E.
//! assert!(matches!(uac.poll_output(), Some(Output::Transmit(_))));
//! let Some(Output::Timeout(at)) = uac.poll_output() else { panic!() };
//! assert_eq!(at, start + Duration::from_millis(500));
//! // Nobody answers: the request is retransmitted at T1...
//! uac.handle_input(at, Input::Timeout)?;
//! assert!(matches!(uac.poll_output(), Some(Output::Transmit(_))));
//! // ...and after 64*T1 the TU learns that the transaction timed out.
//! let mut now = at;
//! let timed_out = loop {
//!     match uac.poll_output() {
//!         Some(Output::Timeout(at)) => { now = at; uac.handle_input(now, Input::Timeout)?; }
//!         Some(Output::Event(Event::Timeout { id: t })) => break t,
//!         Some(_) => {}
//!         None => panic!("no timer left"),
//!     }
//! };
//! assert_eq!(timed_out, id);
//! assert_eq!(now, start + Duration::from_secs(32));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod key;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_redact::Pii;

use crate::builder::MessageBuilder;
use crate::error::ParseError;
use crate::header::Method;
use crate::message::Message;
use crate::name::HeaderName;

pub use key::MAGIC_COOKIE;
use key::{Hashed, KeyTable};

/// The transport a message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// UDP: unreliable, the transaction layer retransmits.
    Udp,
    /// TCP: reliable.
    Tcp,
    /// TLS over TCP: reliable.
    Tls,
}

impl TransportKind {
    /// True for transports that deliver reliably (no retransmissions, and
    /// the waiting timers D, I, J, K are zero).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The name written in a Via header field (`UDP`, `TCP`, `TLS`).
    pub fn via_name(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

/// The timer values of RFC 3261 (table 4). Every other timer derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timers {
    /// T1, the round-trip estimate (500 ms).
    pub t1: Duration,
    /// T2, the longest retransmit interval for non-INVITE requests and INVITE
    /// responses (4 s).
    pub t2: Duration,
    /// T4, the longest time a message stays in the network (5 s).
    pub t4: Duration,
    /// Timer D, how long an INVITE client transaction waits for response
    /// retransmissions over an unreliable transport (at least 32 s).
    pub d: Duration,
    /// How long an INVITE server transaction waits for a provisional response
    /// from the TU before it sends 100 Trying itself (200 ms, 17.2.1).
    pub trying: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            d: Duration::from_secs(32),
            trying: Duration::from_millis(200),
        }
    }
}

impl Timers {
    /// 64·T1: timers B, F, H, J, L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Configuration of a [`TransactionLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The timer values.
    pub timers: Timers,
    /// The most transactions alive at once; past it, new requests are
    /// refused with [`TransactionError::TooManyTransactions`].
    pub max_transactions: usize,
    /// Answer merged requests with 482 (8.2.2.2). Right for a user agent;
    /// a proxy turns it off.
    pub reject_merged_requests: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timers: Timers::default(),
            max_transactions: 10_000,
            reject_merged_requests: true,
        }
    }
}

impl Config {
    /// Sets the timer values.
    pub fn with_timers(mut self, timers: Timers) -> Self {
        self.timers = timers;
        self
    }
    /// Sets the cap on live transactions.
    pub fn with_max_transactions(mut self, n: usize) -> Self {
        self.max_transactions = n;
        self
    }
    /// Turns merged-request detection (482) on or off.
    pub fn with_reject_merged_requests(mut self, on: bool) -> Self {
        self.reject_merged_requests = on;
        self
    }
}

impl Timers {
    /// Sets T1.
    pub fn with_t1(mut self, t1: Duration) -> Self {
        self.t1 = t1;
        self
    }
    /// Sets T2.
    pub fn with_t2(mut self, t2: Duration) -> Self {
        self.t2 = t2;
        self
    }
    /// Sets T4.
    pub fn with_t4(mut self, t4: Duration) -> Self {
        self.t4 = t4;
        self
    }
    /// Sets Timer D.
    pub fn with_d(mut self, d: Duration) -> Self {
        self.d = d;
        self
    }
    /// Sets the delay before an automatic 100 Trying.
    pub fn with_trying(mut self, trying: Duration) -> Self {
        self.trying = trying;
        self
    }
}

/// Identifies one transaction of a [`TransactionLayer`]. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// Which of the four state machines a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// INVITE client transaction (figure 5, RFC 6026 figure 5).
    InviteClient,
    /// Non-INVITE client transaction (figure 6).
    NonInviteClient,
    /// INVITE server transaction (figure 7, RFC 6026 figure 7).
    InviteServer,
    /// Non-INVITE server transaction (figure 8).
    NonInviteServer,
}

impl Kind {
    /// True for client transactions.
    pub fn is_client(self) -> bool {
        matches!(self, Self::InviteClient | Self::NonInviteClient)
    }
}

/// The state of a transaction (the boxes of figures 5 to 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// INVITE client: the request is out, no response yet.
    Calling,
    /// Non-INVITE: request sent or received, no response yet.
    Trying,
    /// A provisional response was received or sent.
    Proceeding,
    /// A final (non-2xx for INVITE) response was received or sent.
    Completed,
    /// INVITE server: the ACK for the non-2xx response arrived.
    Confirmed,
    /// INVITE: a 2xx was received or sent (RFC 6026).
    Accepted,
}

/// A received message and where it came from.
#[derive(Debug, Clone)]
pub struct Received {
    /// The address it came from (responses go back there).
    pub source: SocketAddr,
    /// The transport it came over.
    pub transport: TransportKind,
    /// The message.
    pub message: Message,
}

/// What a [`TransactionLayer`] is fed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A message arrived.
    Receive(Received),
    /// The time asked for by the last [`Output::Timeout`] has come (or any
    /// later time): every timer due by `now` fires.
    Timeout,
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send them.
    pub destination: SocketAddr,
    /// Over which transport.
    pub transport: TransportKind,
    /// One whole SIP message.
    pub bytes: Bytes,
}

/// What the transaction user must know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A request that created a server transaction: answer it with
    /// [`TransactionLayer::send_response`]. Retransmissions are absorbed.
    Request {
        /// The new server transaction.
        id: TransactionId,
        /// The request.
        request: Message,
        /// Where it came from.
        source: SocketAddr,
        /// Over which transport.
        transport: TransportKind,
        /// For a CANCEL, the INVITE server transaction it cancels, if any
        /// (section 9.2); answer 481 when there is none.
        cancels: Option<TransactionId>,
    },
    /// An ACK that is not part of an INVITE server transaction's non-2xx
    /// exchange: the ACK for a 2xx (13.3.1.4), for the TU.
    Ack {
        /// The INVITE server transaction it matched, if still Accepted.
        transaction: Option<TransactionId>,
        /// The ACK.
        request: Message,
        /// Where it came from.
        source: SocketAddr,
        /// Over which transport.
        transport: TransportKind,
    },
    /// A response for a client transaction: each provisional, the final
    /// response, and for INVITE every 2xx retransmission and 2xx from another
    /// fork while Accepted (RFC 6026).
    Response {
        /// The client transaction.
        id: TransactionId,
        /// The response.
        response: Message,
    },
    /// A response that matched no client transaction. A user agent ignores
    /// it (18.1.2); a stateless proxy may forward it.
    UnmatchedResponse {
        /// The response.
        response: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A request that merged with one already being served (8.2.2.2): the
    /// layer answered it with 482 in a server transaction of its own.
    MergedRequest {
        /// That server transaction.
        id: TransactionId,
    },
    /// The transaction failed: no final response in time (Timer B or F), or
    /// no ACK for a non-2xx final response (Timer H).
    Timeout {
        /// The transaction.
        id: TransactionId,
    },
    /// The transport reported a failure for this transaction
    /// ([`TransactionLayer::transport_error`]).
    TransportError {
        /// The transaction.
        id: TransactionId,
    },
    /// The transaction ended and was removed; its id is now unknown.
    Terminated {
        /// The transaction.
        id: TransactionId,
    },
}

/// What the caller must do next: drained with [`TransactionLayer::poll_output`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Send these bytes.
    Transmit(Transmit),
    /// Tell the transaction user.
    Event(Event),
    /// Nothing more to do until this instant: then feed [`Input::Timeout`].
    Timeout(Instant),
}

/// Why a transaction operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The cap on live transactions is reached.
    #[error("too many live transactions (limit {limit})")]
    TooManyTransactions {
        /// The configured limit.
        limit: usize,
    },
    /// No live transaction has this id (it ended, or never existed).
    #[error("no live transaction {id}")]
    UnknownTransaction {
        /// The id.
        id: TransactionId,
    },
    /// The operation does not fit the transaction's kind or state.
    #[error("{what} is not allowed in {kind:?} transaction {id} in state {state:?}")]
    InvalidState {
        /// The transaction.
        id: TransactionId,
        /// Its kind.
        kind: Kind,
        /// Its state.
        state: State,
        /// What was attempted.
        what: &'static str,
    },
    /// A request was expected and a response given, or the reverse.
    #[error("expected a {expected}")]
    WrongMessageKind {
        /// `request` or `response`.
        expected: &'static str,
    },
    /// ACK is never sent in a client transaction of its own: the INVITE
    /// client transaction sends the ACK for a non-2xx response, and the TU
    /// sends the ACK for a 2xx with [`TransactionLayer::send_stateless`].
    #[error("ACK is not sent in a transaction of its own")]
    AckNotTransactional,
    /// The request's top Via has no branch starting with the magic cookie.
    #[error("the top Via of a request sent by this layer needs a branch starting with z9hG4bK")]
    MissingBranch,
    /// A client transaction with the same branch and method is alive.
    #[error("a client transaction with this branch and method is alive")]
    DuplicateBranch,
    /// The response's CSeq does not match the transaction's request.
    #[error("the response's CSeq does not match the request of transaction {id}")]
    ResponseMismatch {
        /// The transaction.
        id: TransactionId,
    },
    /// A received or given message lacks what transactions need.
    #[error("message unusable for transactions: {0}")]
    Message(#[from] ParseError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// A, E, G.
    Retransmit,
    /// B, F, H.
    Timeout,
    /// D, I, J, K, L, M.
    End,
    /// The automatic 100 Trying.
    Trying,
}

#[derive(Debug)]
struct Txn {
    kind: Kind,
    state: State,
    request: Message,
    peer: SocketAddr,
    transport: TransportKind,
    /// Server: the last response sent. Client: unused.
    last_response: Option<Message>,
    /// INVITE client: the ACK for the non-2xx final response.
    ack: Option<Bytes>,
    /// Next retransmission and the interval that led to it.
    retransmit: Option<(Instant, Duration)>,
    timeout: Option<Instant>,
    end: Option<Instant>,
    trying: Option<Instant>,
    /// The hashes of the keys this transaction holds in the key tables.
    server_key: Option<Hashed>,
    client_key: Option<Hashed>,
    merge_key: Option<Hashed>,
    /// Non-INVITE client: a CANCEL held until the INVITE gets a provisional.
    held_for: Option<TransactionId>,
    /// INVITE client: the CANCEL held for it.
    held_cancel: Option<TransactionId>,
}

impl Txn {
    fn deadline(&self, kind: TimerKind) -> Option<Instant> {
        match kind {
            TimerKind::Retransmit => self.retransmit.map(|(at, _)| at),
            TimerKind::Timeout => self.timeout,
            TimerKind::End => self.end,
            TimerKind::Trying => self.trying,
        }
    }
}

/// Hashes the identifiers this layer hands out itself, one after the other.
/// The hash is the id in its low bits, which pick the bucket: the live
/// transactions, mostly a window of recent ids, fill neighbouring buckets
/// without colliding, and the newest ones stay in the cache. Its top seven
/// bits, the tag the table compares first, are mixed in from a
/// multiplication so that neighbours have different tags. Nobody else picks
/// ids; to make ids collide in a table of 2^n buckets one would have to
/// keep alive transactions 2^n apart, and the table holds at least as many
/// buckets as live transactions.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64((self.0 << 8) | u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let tag = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & (0x7f << 57);
        self.0 = n ^ tag;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The live transactions: each in a slot of a slab (slots are reused, so a
/// transaction is not moved again once stored), found by its id.
#[derive(Debug, Default)]
struct Txns {
    slots: Vec<Option<Txn>>,
    free: Vec<usize>,
    index: HashMap<TransactionId, usize, BuildHasherDefault<IdHasher>>,
}

impl Txns {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn contains_key(&self, id: &TransactionId) -> bool {
        self.index.contains_key(id)
    }

    fn get(&self, id: &TransactionId) -> Option<&Txn> {
        let i = *self.index.get(id)?;
        self.slots.get(i)?.as_ref()
    }

    fn get_mut(&mut self, id: &TransactionId) -> Option<&mut Txn> {
        let i = *self.index.get(id)?;
        self.slots.get_mut(i)?.as_mut()
    }

    fn insert(&mut self, id: TransactionId, txn: Txn) {
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(txn);
                }
                i
            }
            None => {
                self.slots.push(Some(txn));
                self.slots.len() - 1
            }
        };
        if let Some(old) = self.index.insert(id, i) {
            self.release(old);
        }
    }

    fn remove(&mut self, id: &TransactionId) -> Option<Txn> {
        let i = self.index.remove(id)?;
        let txn = self.slots.get_mut(i).and_then(Option::take);
        self.free.push(i);
        txn
    }

    /// Drops the transaction where it lies (it is not moved out first),
    /// returning what `read` takes from it.
    fn discard<R>(&mut self, id: &TransactionId, read: impl FnOnce(&Txn) -> R) -> Option<R> {
        let i = self.index.remove(id)?;
        let slot = self.slots.get_mut(i)?;
        let r = slot.as_ref().map(read);
        *slot = None;
        self.free.push(i);
        r
    }

    fn release(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = None;
            self.free.push(i);
        }
    }
}

/// An armed timer: when, for which transaction, which one. Timers fire in
/// the order of these tuples.
type Armed = (Instant, TransactionId, TimerKind);

/// How many delays get a queue of their own.
const MAX_QUEUES: usize = 16;

/// The armed timers, earliest first.
///
/// Nearly every timer is armed at `now` plus one of a few delays (T1
/// doubling up to T2, T4, 64·T1, D, the 100 Trying delay), and `now` moves
/// forward: timers armed with the same delay come due in the order they
/// were armed. So each delay gets a FIFO queue, where arming and firing are
/// O(1) and walk memory in order, instead of a binary heap of every live
/// timer, where each pop follows a path of cache misses down the tree. A
/// queue only takes a timer that sorts after its last one (its delay is a
/// hint, never trusted for the order); any other timer (a caller whose
/// `now` went back, a delay past [`MAX_QUEUES`]) goes to a heap. The next
/// timer is the least of the queues' heads and the heap's top, so timers
/// fire in exactly the order one heap would give.
///
/// Timers of a transaction that was re-armed or ended are not removed; they
/// are skipped when they come up (the transaction's deadline no longer
/// matches), and swept out when they outnumber the live transactions.
#[derive(Debug, Default)]
struct TimerQueue {
    queues: Vec<(Duration, VecDeque<Armed>)>,
    heap: BinaryHeap<Reverse<Armed>>,
    len: usize,
}

/// Where the next timer is.
#[derive(Debug, Clone, Copy)]
enum Head {
    Queue(usize),
    Heap,
}

impl TimerQueue {
    fn len(&self) -> usize {
        self.len
    }

    /// Arms a timer; `delay` is how far ahead of the present it was armed.
    fn push(&mut self, delay: Duration, timer: Armed) {
        self.len += 1;
        let queue = match self.queues.iter().position(|(d, _)| *d == delay) {
            Some(i) => self.queues.get_mut(i),
            None if self.queues.len() < MAX_QUEUES => {
                self.queues.push((delay, VecDeque::new()));
                self.queues.last_mut()
            }
            None => {
                // Every queue is taken: reuse an empty one.
                let free = self.queues.iter_mut().find(|(_, q)| q.is_empty());
                if let Some(slot) = free {
                    slot.0 = delay;
                    Some(slot)
                } else {
                    None
                }
            }
        };
        match queue {
            Some((_, q)) if q.back().is_none_or(|last| *last <= timer) => q.push_back(timer),
            _ => self.heap.push(Reverse(timer)),
        }
    }

    /// The earliest timer and where it is.
    fn peek(&self) -> Option<(Armed, Head)> {
        let mut best = self.heap.peek().map(|Reverse(t)| (*t, Head::Heap));
        for (i, (_, q)) in self.queues.iter().enumerate() {
            if let Some(t) = q.front()
                && best.is_none_or(|(b, _)| *t < b)
            {
                best = Some((*t, Head::Queue(i)));
            }
        }
        best
    }

    /// Removes the timer `peek` found at `head`.
    fn pop(&mut self, head: Head) {
        let popped = match head {
            Head::Heap => self.heap.pop().is_some(),
            Head::Queue(i) => self
                .queues
                .get_mut(i)
                .and_then(|(_, q)| q.pop_front())
                .is_some(),
        };
        if popped {
            self.len -= 1;
        }
    }

    /// Keeps only the timers for which `keep` is true.
    fn retain(&mut self, mut keep: impl FnMut(&Armed) -> bool) {
        self.heap.retain(|Reverse(t)| keep(t));
        let mut len = self.heap.len();
        for (_, q) in &mut self.queues {
            q.retain(|t| keep(t));
            len += q.len();
        }
        self.len = len;
    }
}

/// The transactions of one endpoint, as one sans-IO state machine. See the
/// [module documentation](self) for the run loop.
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    next_id: u64,
    txns: Txns,
    servers: KeyTable,
    clients: KeyTable,
    merges: KeyTable,
    timers: TimerQueue,
    out: VecDeque<Output>,
    /// Buffers the keys of a message are written into, kept for reuse
    /// (branches, Call-IDs, tags, hosts: `Debug` redacts them).
    key_buf: Pii<Vec<u8>>,
    merge_buf: Pii<Vec<u8>>,
}

impl TransactionLayer {
    /// A layer with no transactions.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            next_id: 0,
            txns: Txns::default(),
            servers: KeyTable::new(),
            clients: KeyTable::new(),
            merges: KeyTable::new(),
            timers: TimerQueue::default(),
            out: VecDeque::new(),
            key_buf: Pii::new(Vec::new()),
            merge_buf: Pii::new(Vec::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// The state of a live transaction.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.txns.get(&id).map(|t| t.state)
    }

    /// The kind of a live transaction.
    pub fn kind(&self, id: TransactionId) -> Option<Kind> {
        self.txns.get(&id).map(|t| t.kind)
    }

    /// The request of a live transaction.
    pub fn request(&self, id: TransactionId) -> Option<&Message> {
        self.txns.get(&id).map(|t| &t.request)
    }

    /// The peer of a live transaction: the destination of a client
    /// transaction, the source of a server transaction's request.
    pub fn peer(&self, id: TransactionId) -> Option<(SocketAddr, TransportKind)> {
        self.txns.get(&id).map(|t| (t.peer, t.transport))
    }

    /// The next thing to do: a message to send, an event for the TU, or the
    /// time to be woken at. `None` when nothing is queued and no timer runs.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.next_deadline().map(Output::Timeout)
    }

    /// The earliest pending timer.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(((at, id, kind), head)) = self.timers.peek() {
            if self.is_live(at, id, kind) {
                return Some(at);
            }
            self.timers.pop(head);
        }
        None
    }

    fn is_live(&self, at: Instant, id: TransactionId, kind: TimerKind) -> bool {
        self.txns
            .get(&id)
            .is_some_and(|t| t.deadline(kind) == Some(at))
    }

    /// Feeds a received message or a timer expiry. Timers due by `now` fire
    /// first, whatever the input.
    ///
    /// A received message that transactions cannot use (no Via, no CSeq, ...)
    /// is dropped with an error and changes nothing; so is a new request
    /// past the cap on live transactions.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), TransactionError> {
        self.fire_timers(now);
        match input {
            Input::Timeout => Ok(()),
            Input::Receive(r) => {
                if r.message.is_request() {
                    self.receive_request(now, r)
                } else {
                    self.receive_response(now, r)
                }
            }
        }
    }

    fn alloc_id(&mut self) -> TransactionId {
        self.next_id += 1;
        TransactionId(self.next_id)
    }

    fn check_cap(&self) -> Result<(), TransactionError> {
        if self.txns.len() >= self.config.max_transactions {
            return Err(TransactionError::TooManyTransactions {
                limit: self.config.max_transactions,
            });
        }
        Ok(())
    }

    /// Arms timer `kind` of `id` for `at`, `delay` after the present.
    fn arm(&mut self, id: TransactionId, kind: TimerKind, at: Instant, delay: Duration) {
        self.timers.push(delay, (at, id, kind));
        // Cancelled timers stay queued until their time; keep them in
        // proportion to the live transactions.
        if self.timers.len() > 8 * (self.txns.len() + 16) {
            let txns = &self.txns;
            self.timers.retain(|(at, id, kind)| {
                txns.get(id).is_some_and(|t| t.deadline(*kind) == Some(*at))
            });
        }
    }

    fn transmit(&mut self, destination: SocketAddr, transport: TransportKind, bytes: Bytes) {
        self.out.push_back(Output::Transmit(Transmit {
            destination,
            transport,
            bytes,
        }));
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a
    /// response forwarded statelessly.
    pub fn send_stateless(
        &mut self,
        destination: SocketAddr,
        transport: TransportKind,
        message: &Message,
    ) {
        self.transmit(destination, transport, message.as_bytes().clone());
    }

    /// Starts a client transaction for `request` (any method but ACK) and
    /// sends it to `destination`. The request's top Via must carry a branch
    /// with the magic cookie, unique to this request ([`new_branch`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        destination: SocketAddr,
        transport: TransportKind,
    ) -> Result<TransactionId, TransactionError> {
        self.start_client(now, request, destination, transport, None)
    }

    fn start_client(
        &mut self,
        now: Instant,
        request: Message,
        destination: SocketAddr,
        transport: TransportKind,
        held_for: Option<TransactionId>,
    ) -> Result<TransactionId, TransactionError> {
        let mut key = std::mem::take(self.key_buf.expose_mut());
        let result =
            self.start_client_keyed(now, request, destination, transport, held_for, &mut key);
        *self.key_buf.expose_mut() = key;
        result
    }

    fn start_client_keyed(
        &mut self,
        now: Instant,
        request: Message,
        destination: SocketAddr,
        transport: TransportKind,
        held_for: Option<TransactionId>,
        key: &mut Vec<u8>,
    ) -> Result<TransactionId, TransactionError> {
        let method = request.method().ok_or(TransactionError::WrongMessageKind {
            expected: "request",
        })?;
        if method == Method::Ack {
            return Err(TransactionError::AckNotTransactional);
        }
        if !key::client_key(key, &request)? {
            return Err(TransactionError::MissingBranch);
        }
        if !request
            .top_via()?
            .branch()
            .is_some_and(|b| b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len())
        {
            return Err(TransactionError::MissingBranch);
        }
        if request.cseq()?.method != method {
            return Err(ParseError::header("CSeq", "method differs from the request's").into());
        }
        let hash = self.clients.hash(key);
        if self.clients.get(hash, key).is_some() {
            return Err(TransactionError::DuplicateBranch);
        }
        self.check_cap()?;
        let id = self.alloc_id();
        let invite = method == Method::Invite;
        let t = self.config.timers;
        let bytes = request.as_bytes().clone();
        let mut txn = Txn {
            kind: if invite {
                Kind::InviteClient
            } else {
                Kind::NonInviteClient
            },
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            request,
            peer: destination,
            transport,
            last_response: None,
            ack: None,
            retransmit: None,
            timeout: None,
            end: None,
            trying: None,
            server_key: None,
            client_key: Some(hash),
            merge_key: None,
            held_for,
            held_cancel: None,
        };
        self.clients.insert(hash, key, id);
        if held_for.is_none() {
            self.start_client_timers(now, id, &mut txn, t);
            self.transmit(destination, transport, bytes);
        }
        self.txns.insert(id, txn);
        self.arm_all(now, id);
        Ok(id)
    }

    fn start_client_timers(&mut self, now: Instant, _id: TransactionId, txn: &mut Txn, t: Timers) {
        if !txn.transport.is_reliable() {
            txn.retransmit = Some((now + t.t1, t.t1));
        }
        txn.timeout = Some(now + t.t1x64());
    }

    /// Arms every timer `id` has a deadline for (`now` being the present).
    fn arm_all(&mut self, now: Instant, id: TransactionId) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let armed = [
            TimerKind::Retransmit,
            TimerKind::Timeout,
            TimerKind::End,
            TimerKind::Trying,
        ]
        .map(|k| (k, txn.deadline(k)));
        for (kind, at) in armed {
            if let Some(at) = at {
                self.arm(id, kind, at, at.saturating_duration_since(now));
            }
        }
    }

    /// Builds the CANCEL for the INVITE of client transaction `invite`
    /// (section 9.1) and starts its client transaction. If no provisional
    /// response has arrived yet, the CANCEL waits for one (9.1 forbids
    /// sending it before); if the INVITE then ends first, the CANCEL
    /// transaction ends without being sent. Once the CANCEL is out, the
    /// INVITE gets 64·T1 for its final response, then times out (9.1).
    pub fn send_cancel(
        &mut self,
        now: Instant,
        invite: TransactionId,
    ) -> Result<TransactionId, TransactionError> {
        let txn = self
            .txns
            .get(&invite)
            .ok_or(TransactionError::UnknownTransaction { id: invite })?;
        let invalid = |what| TransactionError::InvalidState {
            id: invite,
            kind: txn.kind,
            state: txn.state,
            what,
        };
        if txn.kind != Kind::InviteClient {
            return Err(invalid("CANCEL"));
        }
        if !matches!(txn.state, State::Calling | State::Proceeding) || txn.held_cancel.is_some() {
            return Err(invalid("CANCEL after a final response or a first CANCEL"));
        }
        let cancel = cancel_for(&txn.request)?;
        let (dest, transport, held) = (txn.peer, txn.transport, txn.state == State::Calling);
        let id = self.start_client(now, cancel, dest, transport, held.then_some(invite))?;
        if held {
            if let Some(t) = self.txns.get_mut(&invite) {
                t.held_cancel = Some(id);
            }
        } else {
            self.cancel_sent(now, invite);
        }
        Ok(id)
    }

    /// Reports that the transport failed to deliver a message of transaction
    /// `id` (a refused connection, an ICMP error): the transaction ends and
    /// the TU gets [`Event::TransportError`] (17.1.4, 17.2.4).
    pub fn transport_error(
        &mut self,
        now: Instant,
        id: TransactionId,
    ) -> Result<(), TransactionError> {
        self.fire_timers(now);
        if !self.txns.contains_key(&id) {
            return Err(TransactionError::UnknownTransaction { id });
        }
        self.event(Event::TransportError { id });
        self.terminate(id);
        Ok(())
    }

    /// Sends a response in server transaction `id`.
    ///
    /// INVITE: provisional responses keep it Proceeding; a 2xx moves it to
    /// Accepted, where further 2xx (the TU's retransmissions, 13.3.1.4) are
    /// sent as given; a 300-699 moves it to Completed, retransmitted by the
    /// layer until the ACK. Non-INVITE: a final response moves it to
    /// Completed, where retransmitted requests get it again.
    pub fn send_response(
        &mut self,
        now: Instant,
        id: TransactionId,
        response: Message,
    ) -> Result<(), TransactionError> {
        self.fire_timers(now);
        let t = self.config.timers;
        let txn = self
            .txns
            .get_mut(&id)
            .ok_or(TransactionError::UnknownTransaction { id })?;
        let Some(status) = response.status() else {
            return Err(TransactionError::WrongMessageKind {
                expected: "response",
            });
        };
        let invalid = |what| TransactionError::InvalidState {
            id,
            kind: txn.kind,
            state: txn.state,
            what,
        };
        if txn.kind.is_client() {
            return Err(invalid("sending a response"));
        }
        let (rc, qc) = (response.cseq()?, txn.request.cseq()?);
        if rc.seq != qc.seq || rc.method != qc.method {
            return Err(TransactionError::ResponseMismatch { id });
        }
        let class = status / 100;
        let reliable = txn.transport.is_reliable();
        let mut end_now = false;
        match (txn.kind, txn.state, class) {
            (Kind::InviteServer, State::Proceeding, 1) => {
                txn.trying = None;
            }
            (Kind::InviteServer, State::Proceeding | State::Accepted, 2) => {
                if txn.state == State::Proceeding {
                    txn.state = State::Accepted;
                    txn.trying = None;
                    txn.end = Some(now + t.t1x64());
                }
            }
            (Kind::InviteServer, State::Proceeding, 3..=6) => {
                txn.state = State::Completed;
                txn.trying = None;
                if !reliable {
                    txn.retransmit = Some((now + t.t1, t.t1));
                }
                txn.timeout = Some(now + t.t1x64());
            }
            (Kind::NonInviteServer, State::Trying | State::Proceeding, 1) => {
                txn.state = State::Proceeding;
            }
            (Kind::NonInviteServer, State::Trying | State::Proceeding, 2..=6) => {
                txn.state = State::Completed;
                if reliable {
                    end_now = true;
                } else {
                    txn.end = Some(now + t.t1x64());
                }
            }
            _ => return Err(invalid("this response")),
        }
        let (peer, transport) = (txn.peer, txn.transport);
        let bytes = response.as_bytes().clone();
        txn.last_response = Some(response);
        self.transmit(peer, transport, bytes);
        if end_now {
            self.terminate(id);
        } else {
            self.arm_all(now, id);
        }
        Ok(())
    }

    fn receive_request(&mut self, now: Instant, r: Received) -> Result<(), TransactionError> {
        let mut key = std::mem::take(self.key_buf.expose_mut());
        let mut merge = std::mem::take(self.merge_buf.expose_mut());
        let result = self.receive_request_keyed(now, r, &mut key, &mut merge);
        *self.key_buf.expose_mut() = key;
        *self.merge_buf.expose_mut() = merge;
        result
    }

    fn receive_request_keyed(
        &mut self,
        now: Instant,
        r: Received,
        key: &mut Vec<u8>,
        merge: &mut Vec<u8>,
    ) -> Result<(), TransactionError> {
        let method = r
            .message
            .method()
            .ok_or(TransactionError::WrongMessageKind {
                expected: "request",
            })?;
        let (is_ack, is_cancel) = (method == Method::Ack, method == Method::Cancel);
        // Everything matching needs, checked before any state changes.
        let cseq = r.message.cseq()?;
        let call_id = r.message.call_id()?;
        let from_tag = r.message.from()?.tag();
        let to_tag = r.message.to()?.tag();
        let legacy = key::server_key(key, &r.message, from_tag, None)?;
        let hash = self.servers.hash(key);
        if let Some(id) = self.servers.get(hash, key) {
            let legacy_ok = !legacy || self.legacy_to_tag_matches(id, is_ack, to_tag);
            if legacy_ok {
                return self.server_retransmission(now, id, is_ack, r);
            }
        }
        if is_ack {
            self.event(Event::Ack {
                transaction: None,
                request: r.message,
                source: r.source,
                transport: r.transport,
            });
            return Ok(());
        }
        let merge_key =
            key::merge_key(merge, to_tag, from_tag, call_id, cseq).then(|| self.merges.hash(merge));
        if self.config.reject_merged_requests
            && let Some(mh) = merge_key
            && self.merges.get(mh, merge).is_some()
        {
            self.check_cap()?;
            let response =
                MessageBuilder::response_to(&r.message, 482, "Loop Detected")?.build()?;
            let id = self.new_server(now, r, Some((hash, key)), None);
            self.event(Event::MergedRequest { id });
            return self.send_response(now, id, response);
        }
        self.check_cap()?;
        let cancels = if is_cancel {
            let mut invite_key = Vec::new();
            key::server_key(&mut invite_key, &r.message, from_tag, Some(Method::Invite))?;
            let invite_hash = self.servers.hash(&invite_key);
            self.servers.get(invite_hash, &invite_key).filter(|id| {
                self.txns
                    .get(id)
                    .is_some_and(|t| t.kind == Kind::InviteServer)
            })
        } else {
            None
        };
        let (request, source, transport) = (r.message.clone(), r.source, r.transport);
        let id = self.new_server(
            now,
            r,
            Some((hash, key)),
            merge_key.map(|mh| (mh, &merge[..])),
        );
        self.event(Event::Request {
            id,
            request,
            source,
            transport,
            cancels,
        });
        Ok(())
    }

    fn legacy_to_tag_matches(&self, id: TransactionId, is_ack: bool, to_tag: Option<&str>) -> bool {
        let Some(txn) = self.txns.get(&id) else {
            return false;
        };
        let expected = if is_ack {
            txn.last_response
                .as_ref()
                .and_then(|r| r.to().ok().and_then(|t| t.tag()))
        } else {
            txn.request.to().ok().and_then(|t| t.tag())
        };
        expected == to_tag
    }

    fn new_server(
        &mut self,
        now: Instant,
        r: Received,
        key: Option<(Hashed, &[u8])>,
        merge_key: Option<(Hashed, &[u8])>,
    ) -> TransactionId {
        let id = self.alloc_id();
        let invite = r.message.method() == Some(Method::Invite);
        let txn = Txn {
            kind: if invite {
                Kind::InviteServer
            } else {
                Kind::NonInviteServer
            },
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            request: r.message,
            peer: r.source,
            transport: r.transport,
            last_response: None,
            ack: None,
            retransmit: None,
            timeout: None,
            end: None,
            trying: invite.then(|| now + self.config.timers.trying),
            server_key: key.map(|(h, _)| h),
            client_key: None,
            merge_key: merge_key.map(|(h, _)| h),
            held_for: None,
            held_cancel: None,
        };
        if let Some((h, k)) = key {
            self.servers.insert(h, k, id);
        }
        if let Some((h, k)) = merge_key {
            self.merges.insert(h, k, id);
        }
        self.txns.insert(id, txn);
        self.arm_all(now, id);
        id
    }

    fn server_retransmission(
        &mut self,
        now: Instant,
        id: TransactionId,
        is_ack: bool,
        r: Received,
    ) -> Result<(), TransactionError> {
        let t = self.config.timers;
        let Some(txn) = self.txns.get_mut(&id) else {
            return Ok(());
        };
        if is_ack {
            if txn.kind != Kind::InviteServer {
                return Ok(());
            }
            match txn.state {
                State::Completed => {
                    txn.state = State::Confirmed;
                    txn.retransmit = None;
                    txn.timeout = None;
                    if txn.transport.is_reliable() {
                        self.terminate(id);
                    } else {
                        txn.end = Some(now + t.t4);
                        self.arm_all(now, id);
                    }
                }
                State::Accepted => self.event(Event::Ack {
                    transaction: Some(id),
                    request: r.message,
                    source: r.source,
                    transport: r.transport,
                }),
                _ => {}
            }
            return Ok(());
        }
        let resend = match (txn.kind, txn.state) {
            (Kind::InviteServer, State::Proceeding | State::Completed)
            | (Kind::NonInviteServer, State::Proceeding | State::Completed) => {
                txn.last_response.as_ref().map(|m| m.as_bytes().clone())
            }
            _ => None,
        };
        if let Some(bytes) = resend {
            let (peer, transport) = (txn.peer, txn.transport);
            self.transmit(peer, transport, bytes);
        }
        Ok(())
    }

    fn receive_response(&mut self, now: Instant, r: Received) -> Result<(), TransactionError> {
        let status = r.message.status().unwrap_or(0);
        let mut key = std::mem::take(self.key_buf.expose_mut());
        let found = key::client_key(&mut key, &r.message).map(|has| {
            has.then(|| self.clients.get(self.clients.hash(&key), &key))
                .flatten()
        });
        *self.key_buf.expose_mut() = key;
        let Some(id) = found? else {
            self.event(Event::UnmatchedResponse {
                response: r.message,
                source: r.source,
            });
            return Ok(());
        };
        let t = self.config.timers;
        let Some(txn) = self.txns.get_mut(&id) else {
            return Ok(());
        };
        if txn.held_for.is_some() {
            // A CANCEL not sent yet cannot have a response.
            return Ok(());
        }
        let class = status / 100;
        let reliable = txn.transport.is_reliable();
        let mut deliver = false;
        let mut release_cancel = None;
        let mut drop_cancel = None;
        let mut end_now = false;
        match (txn.kind, txn.state, class) {
            (Kind::InviteClient, State::Calling | State::Proceeding, 1) => {
                txn.state = State::Proceeding;
                txn.retransmit = None;
                txn.timeout = None;
                release_cancel = txn.held_cancel.take();
                deliver = true;
            }
            (Kind::InviteClient, State::Calling | State::Proceeding, 2) => {
                txn.state = State::Accepted;
                txn.retransmit = None;
                txn.timeout = None;
                txn.end = Some(now + t.t1x64());
                drop_cancel = txn.held_cancel.take();
                deliver = true;
            }
            (Kind::InviteClient, State::Calling | State::Proceeding, 3..=6) => {
                let ack = ack_for(&txn.request, &r.message)?;
                txn.state = State::Completed;
                txn.retransmit = None;
                txn.timeout = None;
                let bytes = ack.as_bytes().clone();
                txn.ack = Some(bytes.clone());
                if reliable {
                    end_now = true;
                } else {
                    txn.end = Some(now + t.d);
                }
                drop_cancel = txn.held_cancel.take();
                let (peer, transport) = (txn.peer, txn.transport);
                self.transmit(peer, transport, bytes);
                deliver = true;
            }
            (Kind::InviteClient, State::Completed, 3..=6) => {
                if let Some(bytes) = txn.ack.clone() {
                    let (peer, transport) = (txn.peer, txn.transport);
                    self.transmit(peer, transport, bytes);
                }
            }
            (Kind::InviteClient, State::Accepted, 2) => deliver = true,
            (Kind::NonInviteClient, State::Trying | State::Proceeding, 1) => {
                txn.state = State::Proceeding;
                deliver = true;
            }
            (Kind::NonInviteClient, State::Trying | State::Proceeding, 2..=6) => {
                txn.state = State::Completed;
                txn.retransmit = None;
                txn.timeout = None;
                if reliable {
                    end_now = true;
                } else {
                    txn.end = Some(now + t.t4);
                }
                deliver = true;
            }
            _ => {}
        }
        if deliver {
            self.event(Event::Response {
                id,
                response: r.message,
            });
        }
        if end_now {
            self.terminate(id);
        } else {
            self.arm_all(now, id);
        }
        if let Some(c) = release_cancel {
            self.release_cancel(now, c);
            self.cancel_sent(now, id);
        }
        if let Some(c) = drop_cancel {
            self.terminate(c);
        }
        Ok(())
    }

    /// 9.1: without a final response 64·T1 after the CANCEL went out, the
    /// INVITE client transaction is given up (Event::Timeout).
    fn cancel_sent(&mut self, now: Instant, invite: TransactionId) {
        let limit = now + self.config.timers.t1x64();
        if let Some(t) = self.txns.get_mut(&invite)
            && t.state == State::Proceeding
        {
            t.timeout = Some(limit);
            self.arm(
                invite,
                TimerKind::Timeout,
                limit,
                self.config.timers.t1x64(),
            );
        }
    }

    fn release_cancel(&mut self, now: Instant, id: TransactionId) {
        let t = self.config.timers;
        let Some(mut txn) = self.txns.remove(&id) else {
            return;
        };
        txn.held_for = None;
        self.start_client_timers(now, id, &mut txn, t);
        let (peer, transport, bytes) = (txn.peer, txn.transport, txn.request.as_bytes().clone());
        self.txns.insert(id, txn);
        self.transmit(peer, transport, bytes);
        self.arm_all(now, id);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(((at, id, kind), head)) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop(head);
            if self.is_live(at, id, kind) {
                self.fire(at, id, kind);
            }
        }
    }

    fn fire(&mut self, at: Instant, id: TransactionId, kind: TimerKind) {
        let t = self.config.timers;
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        match kind {
            TimerKind::Retransmit => {
                let Some((_, interval)) = txn.retransmit else {
                    return;
                };
                let (bytes, next) = match (txn.kind, txn.state) {
                    // Timer A: the INVITE, the interval doubling without cap.
                    (Kind::InviteClient, State::Calling) => (
                        Some(txn.request.as_bytes().clone()),
                        interval.saturating_mul(2),
                    ),
                    // Timer E: doubling up to T2, then T2 once Proceeding.
                    (Kind::NonInviteClient, State::Trying) => (
                        Some(txn.request.as_bytes().clone()),
                        interval.saturating_mul(2).min(t.t2),
                    ),
                    (Kind::NonInviteClient, State::Proceeding) => {
                        (Some(txn.request.as_bytes().clone()), t.t2)
                    }
                    // Timer G: the final response, doubling up to T2.
                    (Kind::InviteServer, State::Completed) => (
                        txn.last_response.as_ref().map(|m| m.as_bytes().clone()),
                        interval.saturating_mul(2).min(t.t2),
                    ),
                    _ => (None, interval),
                };
                let Some(bytes) = bytes else {
                    txn.retransmit = None;
                    return;
                };
                txn.retransmit = Some((at + next, next));
                let (peer, transport) = (txn.peer, txn.transport);
                self.transmit(peer, transport, bytes);
                self.arm(id, TimerKind::Retransmit, at + next, next);
            }
            TimerKind::Timeout => {
                self.event(Event::Timeout { id });
                self.terminate(id);
            }
            TimerKind::End => self.terminate(id),
            TimerKind::Trying => {
                txn.trying = None;
                if txn.kind == Kind::InviteServer
                    && txn.state == State::Proceeding
                    && txn.last_response.is_none()
                {
                    let trying = MessageBuilder::response_to(&txn.request, 100, "Trying")
                        .and_then(|b| b.build());
                    if let Ok(trying) = trying {
                        let (peer, transport) = (txn.peer, txn.transport);
                        let bytes = trying.as_bytes().clone();
                        txn.last_response = Some(trying);
                        self.transmit(peer, transport, bytes);
                    }
                }
            }
        }
    }

    fn terminate(&mut self, id: TransactionId) {
        let Some((server_key, client_key, merge_key, held_cancel)) = self.txns.discard(&id, |t| {
            (t.server_key, t.client_key, t.merge_key, t.held_cancel)
        }) else {
            return;
        };
        if let Some(h) = server_key {
            self.servers.remove(h, id);
        }
        if let Some(h) = client_key {
            self.clients.remove(h, id);
        }
        if let Some(h) = merge_key {
            self.merges.remove(h, id);
        }
        self.event(Event::Terminated { id });
        if let Some(c) = held_cancel {
            self.terminate(c);
        }
    }
}

/// The ACK for a non-2xx final response (17.1.1.3): Request-URI, Call-ID,
/// From, CSeq number and the single top Via of the INVITE, the To of the
/// response, and the INVITE's Route header fields.
pub fn ack_for(invite: &Message, response: &Message) -> Result<Message, ParseError> {
    let uri = invite.request_uri_str().ok_or(ParseError::StartLine {
        what: "not a request",
    })?;
    let via = invite
        .list(HeaderName::Via)
        .next()
        .ok_or(ParseError::MissingHeader { header: "Via" })?;
    let to = response
        .header(HeaderName::To)
        .ok_or(ParseError::MissingHeader { header: "To" })?;
    let mut b = MessageBuilder::request("ACK", uri)?
        .header("Via", via)?
        .header("Max-Forwards", "70")?
        .header(
            "From",
            invite
                .header(HeaderName::From)
                .ok_or(ParseError::MissingHeader { header: "From" })?,
        )?
        .header("To", &crate::builder::unfold(to))?
        .header("Call-ID", invite.call_id()?)?
        .header("CSeq", &format!("{} ACK", invite.cseq()?.seq))?;
    for route in invite.header_values(HeaderName::Route) {
        b = b.header("Route", &crate::builder::unfold(route))?;
    }
    b.build()
}

/// The CANCEL for a request (9.1): Request-URI, Call-ID, From, To, CSeq
/// number and the single top Via of the request, and its Route header
/// fields.
pub fn cancel_for(request: &Message) -> Result<Message, ParseError> {
    let uri = request.request_uri_str().ok_or(ParseError::StartLine {
        what: "not a request",
    })?;
    let via = request
        .list(HeaderName::Via)
        .next()
        .ok_or(ParseError::MissingHeader { header: "Via" })?;
    let field = |name, header| {
        request
            .header(name)
            .map(|v| crate::builder::unfold(v).into_owned())
            .ok_or(ParseError::MissingHeader { header })
    };
    let mut b = MessageBuilder::request("CANCEL", uri)?
        .header("Via", via)?
        .header("Max-Forwards", "70")?
        .header("From", &field(HeaderName::From, "From")?)?
        .header("To", &field(HeaderName::To, "To")?)?
        .header("Call-ID", request.call_id()?)?
        .header("CSeq", &format!("{} CANCEL", request.cseq()?.seq))?;
    for route in request.header_values(HeaderName::Route) {
        b = b.header("Route", &crate::builder::unfold(route))?;
    }
    b.build()
}

/// Random hex of `bytes` random bytes, for branches, tags and Call-IDs.
pub fn random_token(
    rng: &dyn ring::rand::SecureRandom,
    bytes: usize,
) -> Result<String, RandomError> {
    let mut buf = [0u8; 32];
    let buf = buf.get_mut(..bytes.min(32)).ok_or(RandomError)?;
    rng.fill(buf).map_err(|_| RandomError)?;
    Ok(data_encoding::HEXLOWER.encode(buf))
}

/// A new branch for a request's Via: the magic cookie and 96 random bits.
pub fn new_branch(rng: &dyn ring::rand::SecureRandom) -> Result<String, RandomError> {
    Ok(format!("{MAGIC_COOKIE}{}", random_token(rng, 12)?))
}

/// The random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random number generator failed")]
pub struct RandomError;

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests need some instant to count from
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind(k: u8) -> TimerKind {
        match k % 4 {
            0 => TimerKind::Retransmit,
            1 => TimerKind::Timeout,
            2 => TimerKind::End,
            _ => TimerKind::Trying,
        }
    }

    proptest! {
        /// Timers come out of the queue in the order of one heap, whatever
        /// the delays (more than MAX_QUEUES of them, hints that lie) and
        /// however `now` moves (back too), with pops between pushes.
        #[test]
        fn timer_queue_order_is_the_heap_order(
            ops in proptest::collection::vec(
                (0u64..40, 0u64..3_000, 0u64..20, 0u8..4, 0u8..5),
                0..300,
            ),
        ) {
            let base = Instant::now();
            let mut q = TimerQueue::default();
            let mut heap = BinaryHeap::new();
            let mut now = 0u64;
            for (delay, step, id, k, op) in ops {
                if op == 0 {
                    // Pop the earliest from both.
                    let got = q.peek().map(|(t, head)| {
                        q.pop(head);
                        t
                    });
                    let want = heap.pop().map(|Reverse(t)| t);
                    prop_assert_eq!(got, want);
                    continue;
                }
                // `now` mostly moves forward, sometimes back.
                now = if op == 1 { now.saturating_sub(step) } else { now + step % 50 };
                let delay = Duration::from_millis(delay * 100);
                let at = base + Duration::from_millis(now) + delay;
                // The hint is the true delay, except on one op in four.
                let hint = if op == 4 { Duration::from_millis(step) } else { delay };
                let t = (at, TransactionId(id), kind(k));
                q.push(hint, t);
                heap.push(Reverse(t));
                prop_assert_eq!(q.len(), heap.len());
            }
            while let Some(Reverse(want)) = heap.pop() {
                let (got, head) = q.peek().expect("as many timers as the heap");
                q.pop(head);
                prop_assert_eq!(got, want);
            }
            prop_assert!(q.peek().is_none());
            prop_assert_eq!(q.len(), 0);
        }
    }

    #[test]
    fn timer_queue_retain_keeps_order_and_count() {
        let base = Instant::now();
        let mut q = TimerQueue::default();
        for i in 0..100u64 {
            let delay = Duration::from_millis((i % 7) * 500);
            let at = base + Duration::from_millis(i) + delay;
            q.push(delay, (at, TransactionId(i), TimerKind::End));
        }
        q.retain(|(_, id, _)| id.0 % 3 == 0);
        assert_eq!(q.len(), 34);
        let mut last = None;
        while let Some((t, head)) = q.peek() {
            q.pop(head);
            assert_eq!(t.1.0 % 3, 0);
            assert!(last.is_none_or(|l| l <= t));
            last = Some(t);
        }
        assert_eq!(q.len(), 0);
    }
}
