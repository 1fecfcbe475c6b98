//! The replay window (RFC 3711 3.3.2) and SRTP index estimation (RFC 3711
//! 3.3.1), as plain state that a check reads and a commit changes.

/// Largest replay window, in packets.
pub const MAX_REPLAY_WINDOW: u16 = 1024;
/// Default replay window, in packets.
pub const DEFAULT_REPLAY_WINDOW: u16 = 256;

const WORDS: usize = MAX_REPLAY_WINDOW as usize / 64;

/// Why a packet index is refused by the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Replay,
    TooOld,
}

/// A sliding window over packet indices: the highest index seen and a bitmap
/// of which of the `size` indices below it were seen.
///
/// The bitmap is a ring indexed by `index % 1024`: advancing the window
/// clears the bits it passes over, so a commit costs O(1) for in-order
/// packets.
#[derive(Clone)]
pub(crate) struct ReplayWindow {
    top: u64,
    started: bool,
    size: u16,
    bits: [u64; WORDS],
}

// Not a redaction: the window holds no secret; this leaves out the
// 1024-bit bitmap, which is noise in a print-out.
impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .field("started", &self.started)
            .field("size", &self.size)
            .finish()
    }
}

#[inline]
fn slot(index: u64) -> (usize, u64) {
    let pos = index % u64::from(MAX_REPLAY_WINDOW);
    // `pos < 1024`, so the word number is below 16 and fits a usize.
    (usize::try_from(pos / 64).unwrap_or(0), 1u64 << (pos % 64))
}

impl ReplayWindow {
    /// An empty window of `size` packets (1..=1024; clamped).
    pub(crate) fn new(size: u16) -> ReplayWindow {
        ReplayWindow {
            top: 0,
            started: false,
            size: size.clamp(1, MAX_REPLAY_WINDOW),
            bits: [0; WORDS],
        }
    }

    /// Whether any index was committed.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// The highest committed index.
    pub(crate) fn top(&self) -> u64 {
        self.top
    }

    /// Whether `index` may be accepted; changes nothing.
    #[inline]
    pub(crate) fn check(&self, index: u64) -> Result<(), Refusal> {
        if !self.started || index > self.top {
            return Ok(());
        }
        let delta = self.top - index;
        if delta >= u64::from(self.size) {
            return Err(Refusal::TooOld);
        }
        let (word, bit) = slot(index);
        match self.bits.get(word) {
            Some(w) if w & bit != 0 => Err(Refusal::Replay),
            _ => Ok(()),
        }
    }

    /// Records `index` as received. Call only after `check` accepted it and
    /// the packet authenticated.
    #[inline]
    pub(crate) fn commit(&mut self, index: u64) {
        if !self.started {
            self.started = true;
            self.top = index;
            self.bits = [0; WORDS];
        } else if index > self.top {
            let advance = index - self.top;
            if advance >= u64::from(MAX_REPLAY_WINDOW) {
                self.bits = [0; WORDS];
            } else {
                for i in self.top + 1..index {
                    let (word, bit) = slot(i);
                    if let Some(w) = self.bits.get_mut(word) {
                        *w &= !bit;
                    }
                }
            }
            self.top = index;
        }
        let (word, bit) = slot(index);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= bit;
        }
    }

    /// Forgets every index.
    pub(crate) fn reset(&mut self) {
        *self = ReplayWindow::new(self.size);
    }
}

/// RFC 3711 3.3.1: the packet index of sequence number `seq` given the
/// highest index seen so far. `None` when the guess would need a negative ROC
/// (a packet from before the stream began).
#[inline]
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = highest >> 16;
    let s_l = highest & 0xffff;
    let seq = u64::from(seq);
    let v = if s_l < 0x8000 {
        if seq > s_l + 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if seq + 0x8000 < s_l {
        roc + 1
    } else {
        roc
    };
    Some((v << 16) | seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_replays_and_old_packets() {
        let mut w = ReplayWindow::new(128);
        assert_eq!(w.check(1000), Ok(()));
        w.commit(1000);
        assert_eq!(w.check(1000), Err(Refusal::Replay));
        assert_eq!(w.check(999), Ok(()));
        assert_eq!(w.check(873), Ok(()));
        assert_eq!(w.check(872), Err(Refusal::TooOld));
        w.commit(1010);
        assert_eq!(w.check(1000), Err(Refusal::Replay));
        assert_eq!(w.check(1005), Ok(()));
        w.commit(1005);
        assert_eq!(w.check(1005), Err(Refusal::Replay));
        // A jump past the whole ring clears it.
        w.commit(5000);
        assert_eq!(w.check(4999), Ok(()));
        assert_eq!(w.check(5000), Err(Refusal::Replay));
        assert_eq!(w.check(1010), Err(Refusal::TooOld));
    }

    #[test]
    fn index_estimation_follows_rfc3711() {
        assert_eq!(estimate_index(0, 5), Some(5));
        assert_eq!(estimate_index(0xfff0, 0x0005), Some(0x1_0005));
        assert_eq!(estimate_index(0x1_0005, 0xfff0), Some(0xfff0));
        assert_eq!(estimate_index(0x1_0005, 0x0003), Some(0x1_0003));
        assert_eq!(estimate_index(0x5, 0xfff0), None);
        assert_eq!(estimate_index(0x3_8000, 0x0000), Some(0x3_0000));
        assert_eq!(estimate_index(0x3_8001, 0x0000), Some(0x4_0000));
    }
}
