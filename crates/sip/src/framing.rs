//! Framing: cutting messages out of a TCP or TLS byte stream by
//! Content-Length (RFC 3261 section 18.3), with the RFC 5626 CRLF
//! keep-alives recognised.

use bytes::{Buf, BytesMut};
use carevox_redact::Pii;

use crate::error::ParseError;
use crate::limits::Limits;
use bytes::Bytes;

use crate::message::{Message, Transport, parse_stream_head};

/// Reads one UDP datagram: a double CRLF is a [`Frame::Ping`], a single CRLF
/// a [`Frame::Pong`] (the RFC 5626 keep-alives some user agents also send
/// over UDP), anything else is parsed as a message.
pub fn parse_datagram(data: Bytes, limits: &Limits) -> Result<Frame, ParseError> {
    match data.as_ref() {
        b"\r\n\r\n" => Ok(Frame::Ping),
        b"\r\n" => Ok(Frame::Pong),
        _ => Message::parse_with(data, limits, Transport::Datagram).map(Frame::Message),
    }
}

/// What a [`StreamFramer`] cut from the stream.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A whole message.
    Message(Message),
    /// A keep-alive ping, a double CRLF (RFC 5626 section 3.5.1): answer with
    /// a single CRLF.
    Ping,
    /// A keep-alive pong, a single CRLF, seen by a framer made with
    /// [`StreamFramer::client`].
    Pong,
}

/// Accumulates bytes from a stream transport and yields whole messages.
///
/// Memory is bounded: [`StreamFramer::push`] refuses data that would make
/// the buffer exceed twice [`Limits::max_message_size`], and a message that
/// grows past the limit is an error. After any error other than
/// [`ParseError::Incomplete`] the stream is out of sync and the connection
/// should be closed.
#[derive(Debug)]
pub struct StreamFramer {
    /// Bytes received and not yet cut into messages: PHI, redacted in `Debug`.
    buf: Pii<BytesMut>,
    limits: Limits,
    client: bool,
    scanned: usize,
    pending: Option<usize>,
}

impl StreamFramer {
    /// A framer for the server side of a connection: a double CRLF is a
    /// [`Frame::Ping`], a lone CRLF before a message is ignored.
    pub fn server(limits: Limits) -> Self {
        Self {
            buf: Pii::new(BytesMut::new()),
            limits,
            client: false,
            scanned: 0,
            pending: None,
        }
    }

    /// A framer for the client side: a single CRLF is a [`Frame::Pong`].
    pub fn client(limits: Limits) -> Self {
        Self {
            client: true,
            ..Self::server(limits)
        }
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.expose().len()
    }

    /// Appends bytes read from the stream. Drain frames with
    /// [`StreamFramer::next_frame`] between pushes.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ParseError> {
        let cap = self.limits.max_message_size.saturating_mul(2);
        let size = self.buf.expose_mut().len().saturating_add(data.len());
        if size > cap {
            return Err(ParseError::MessageTooLarge { size, limit: cap });
        }
        self.buf.expose_mut().extend_from_slice(data);
        Ok(())
    }

    /// The next frame, or `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        loop {
            match self.buf.expose_mut().as_ref() {
                [b'\r', b'\n', b'\r', b'\n', ..] if !self.client => {
                    self.buf.expose_mut().advance(4);
                    return Ok(Some(Frame::Ping));
                }
                [b'\r', b'\n', ..] if self.client => {
                    self.buf.expose_mut().advance(2);
                    return Ok(Some(Frame::Pong));
                }
                [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    self.buf.expose_mut().advance(2);
                    self.scanned = 0;
                    continue;
                }
                [] => return Ok(None),
                _ => {}
            }
            break;
        }
        let max = self.limits.max_message_size;
        if let Some(total) = self.pending {
            if self.buf.expose_mut().len() < total {
                return Ok(None);
            }
        } else {
            // Find the end of the header section before parsing, so that a
            // slowly arriving head is scanned once, not once per push.
            let from = self.scanned.saturating_sub(3);
            let window = self.buf.expose_mut().get(from..).unwrap_or(&[]);
            let found = memchr::memmem::find(window, b"\n\r\n").is_some()
                || memchr::memmem::find(window, b"\n\n").is_some();
            if !found {
                self.scanned = self.buf.expose_mut().len();
                if self.buf.expose_mut().len() > max {
                    return Err(ParseError::MessageTooLarge {
                        size: self.buf.expose_mut().len(),
                        limit: max,
                    });
                }
                return Ok(None);
            }
        }
        let parts = match parse_stream_head(self.buf.expose(), &self.limits) {
            Ok(parts) => parts,
            Err(ParseError::Incomplete) => return Ok(None),
            Err(e) => return Err(e),
        };
        let total = parts.skip + parts.total;
        if self.buf.expose_mut().len() < total {
            // The head is whole; wait until the body has arrived.
            self.pending = Some(total);
            return Ok(None);
        }
        self.buf.expose_mut().advance(parts.skip);
        let raw = self.buf.expose_mut().split_to(parts.total).freeze();
        self.scanned = 0;
        self.pending = None;
        Ok(Some(Frame::Message(parts.into_message(raw))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn frames_messages_and_keepalives() {
        let mut f = StreamFramer::server(Limits::default());
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        let mut frames = Vec::new();
        for chunk in stream.chunks(7) {
            f.push(chunk).unwrap();
            while let Some(frame) = f.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 3);
        assert!(matches!(frames[0], Frame::Ping));
        for frame in &frames[1..] {
            let Frame::Message(m) = frame else { panic!() };
            assert_eq!(m.body(), b"hello");
            assert_eq!(m.as_bytes().as_ref(), MSG);
        }
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn datagrams() {
        let l = Limits::default();
        assert!(matches!(
            parse_datagram(Bytes::from_static(b"\r\n\r\n"), &l),
            Ok(Frame::Ping)
        ));
        assert!(matches!(
            parse_datagram(Bytes::from_static(b"\r\n"), &l),
            Ok(Frame::Pong)
        ));
        assert!(matches!(
            parse_datagram(Bytes::from_static(MSG), &l),
            Ok(Frame::Message(_))
        ));
        assert!(parse_datagram(Bytes::from_static(b"\r\n\r\n\r\n"), &l).is_err());
    }

    #[test]
    fn client_sees_pongs() {
        let mut f = StreamFramer::client(Limits::default());
        f.push(b"\r\n").unwrap();
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::Pong)));
        assert!(f.next_frame().unwrap().is_none());
    }

    #[test]
    fn bounded() {
        let limits = Limits::default().with_max_message_size(64);
        let mut f = StreamFramer::server(limits);
        f.push(&[b'A'; 100]).unwrap();
        assert!(matches!(
            f.next_frame(),
            Err(ParseError::MessageTooLarge { .. })
        ));
        assert!(f.push(&[b'A'; 100]).is_err());
    }
}
