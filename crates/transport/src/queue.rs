//! The bounded send queue of one connection.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::error::Error;
use crate::lock;
use crate::types::ConnectionId;

/// Bytes waiting to be written to one connection, bounded in bytes.
///
/// Bytes count as queued from [`SendQueue::push`] until the writer reports
/// them written with [`SendQueue::written`], so the bound holds for the
/// chunk being written too.
#[derive(Debug)]
pub(crate) struct SendQueue {
    id: ConnectionId,
    limit: usize,
    inner: Mutex<Inner>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Bytes>,
    queued: usize,
    closed: bool,
}

impl SendQueue {
    pub(crate) fn new(id: ConnectionId, limit: usize) -> Self {
        Self {
            id,
            limit,
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
        }
    }

    /// Queues `bytes`, or refuses them when the connection is closing or
    /// they would take the queue past its limit.
    pub(crate) fn push(&self, bytes: Bytes) -> Result<(), Error> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(Error::ConnectionClosed {
                connection: self.id,
            });
        }
        let len = bytes.len();
        if inner.queued.saturating_add(len) > self.limit {
            return Err(Error::QueueFull {
                connection: self.id,
                queued: inner.queued,
                len,
                limit: self.limit,
            });
        }
        inner.queued += len;
        inner.items.push_back(bytes);
        drop(inner);
        self.notify.notify_one();
        Ok(())
    }

    /// Queues a keep-alive (a ping or pong of two or four bytes). Returns
    /// false, queueing nothing, when the queue is closed or full: a peer
    /// that does not read needs no keep-alive.
    pub(crate) fn push_keepalive(&self, bytes: &'static [u8]) -> bool {
        self.push(Bytes::from_static(bytes)).is_ok()
    }

    /// The next chunk to write; `None` once the queue is closed and empty.
    pub(crate) async fn next(&self) -> Option<Bytes> {
        loop {
            {
                let mut inner = lock(&self.inner);
                if let Some(b) = inner.items.pop_front() {
                    return Some(b);
                }
                if inner.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Reports `n` bytes of a chunk from [`SendQueue::next`] written.
    pub(crate) fn written(&self, n: usize) {
        let mut inner = lock(&self.inner);
        inner.queued = inner.queued.saturating_sub(n);
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.inner).queued
    }

    /// Refuses further pushes; the writer drains what is queued, then ends.
    pub(crate) fn close(&self) {
        lock(&self.inner).closed = true;
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_drained_in_order() {
        let q = SendQueue::new(ConnectionId(7), 10);
        q.push(Bytes::from_static(b"12345")).unwrap();
        q.push(Bytes::from_static(b"678")).unwrap();
        let err = q.push(Bytes::from_static(b"abc")).unwrap_err();
        assert!(matches!(
            err,
            Error::QueueFull {
                queued: 8,
                len: 3,
                limit: 10,
                ..
            }
        ));
        assert!(q.push_keepalive(b"\r\n"));
        assert!(!q.push_keepalive(b"\r\n"));
        assert_eq!(q.queued(), 10);
        let first = q.next().await.unwrap();
        assert_eq!(first.as_ref(), b"12345");
        // Still counted until written.
        assert_eq!(q.queued(), 10);
        q.written(first.len());
        assert_eq!(q.queued(), 5);
        q.close();
        assert!(matches!(
            q.push(Bytes::from_static(b"x")),
            Err(Error::ConnectionClosed { .. })
        ));
        assert_eq!(q.next().await.unwrap().as_ref(), b"678");
        assert_eq!(q.next().await.unwrap().as_ref(), b"\r\n");
        assert!(q.next().await.is_none());
    }
}
