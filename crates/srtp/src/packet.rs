//! The few header fields SRTP needs, read without trusting the input.

use crate::{Error, PacketKind};

/// The fields of an RTP header that SRTP uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpHeader {
    pub(crate) ssrc: u32,
    pub(crate) seq: u16,
    /// Length of the header with CSRCs and extension.
    pub(crate) len: usize,
    pub(crate) padding: bool,
}

/// Reads the RTP header at the start of `p`; the header must fit in `p`.
/// `trailer` is only used to report the needed length.
#[inline]
pub(crate) fn rtp_header(p: &[u8], trailer: usize) -> Result<RtpHeader, Error> {
    let [b0, _, s0, s1, _, _, _, _, c0, c1, c2, c3, ..] = *p else {
        return Err(Error::HeaderTooShort {
            kind: PacketKind::Rtp,
            len: p.len() + trailer,
            needed: 12 + trailer,
        });
    };
    let version = b0 >> 6;
    if version != 2 {
        return Err(Error::BadVersion {
            kind: PacketKind::Rtp,
            version,
        });
    }
    let count = b0 & 0x0f;
    let csrc_end = 12 + 4 * usize::from(count);
    if csrc_end > p.len() {
        return Err(Error::CsrcOverrun {
            count,
            end: csrc_end,
            len: p.len(),
        });
    }
    let mut len = csrc_end;
    if b0 & 0x10 != 0 {
        let words = p
            .get(csrc_end + 2..csrc_end + 4)
            .and_then(|w| <[u8; 2]>::try_from(w).ok())
            .ok_or(Error::ExtensionOverrun {
                offset: csrc_end,
                end: csrc_end + 4,
                len: p.len(),
            })?;
        len = csrc_end + 4 + 4 * usize::from(u16::from_be_bytes(words));
        if len > p.len() {
            return Err(Error::ExtensionOverrun {
                offset: csrc_end,
                end: len,
                len: p.len(),
            });
        }
    }
    Ok(RtpHeader {
        ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
        seq: u16::from_be_bytes([s0, s1]),
        len,
        padding: b0 & 0x20 != 0,
    })
}

/// Checks the RTP padding of a plaintext packet `p` whose header is `h`.
#[inline]
pub(crate) fn check_padding(p: &[u8], h: &RtpHeader) -> Result<(), Error> {
    if !h.padding {
        return Ok(());
    }
    let payload = p.len().saturating_sub(h.len);
    let padding = if payload == 0 {
        0
    } else {
        p.last().copied().unwrap_or(0)
    };
    if padding == 0 || usize::from(padding) > payload {
        return Err(Error::PaddingOverrun { padding, payload });
    }
    Ok(())
}

/// Reads the sender SSRC of the RTCP packet at the start of `p`.
#[inline]
pub(crate) fn rtcp_ssrc(p: &[u8], trailer: usize) -> Result<u32, Error> {
    let [b0, _, _, _, c0, c1, c2, c3, ..] = *p else {
        return Err(Error::HeaderTooShort {
            kind: PacketKind::Rtcp,
            len: p.len() + trailer,
            needed: 8 + trailer,
        });
    };
    let version = b0 >> 6;
    if version != 2 {
        return Err(Error::BadVersion {
            kind: PacketKind::Rtcp,
            version,
        });
    }
    Ok(u32::from_be_bytes([c0, c1, c2, c3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_overruns_are_typed() {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        assert_eq!(rtp_header(&p, 0).unwrap().len, 12);
        p[0] = 0x82;
        assert!(matches!(
            rtp_header(&p, 0),
            Err(Error::CsrcOverrun { count: 2, .. })
        ));
        p[0] = 0x90;
        assert!(matches!(
            rtp_header(&p, 0),
            Err(Error::ExtensionOverrun { offset: 12, .. })
        ));
        p.extend_from_slice(&[0xbe, 0xde, 0, 1]);
        assert!(matches!(
            rtp_header(&p, 0),
            Err(Error::ExtensionOverrun { end: 20, .. })
        ));
        p.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(rtp_header(&p, 0).unwrap().len, 20);
        p[0] = 0x40;
        assert!(matches!(
            rtp_header(&p, 0),
            Err(Error::BadVersion { version: 1, .. })
        ));
        assert!(matches!(
            rtp_header(&p[..5], 10),
            Err(Error::HeaderTooShort {
                len: 15,
                needed: 22,
                ..
            })
        ));
        let h = RtpHeader {
            ssrc: 0,
            seq: 0,
            len: 12,
            padding: true,
        };
        assert!(matches!(
            check_padding(&[0; 14], &h),
            Err(Error::PaddingOverrun { .. })
        ));
        let mut q = [0u8; 14];
        q[13] = 3;
        assert!(matches!(
            check_padding(&q, &h),
            Err(Error::PaddingOverrun {
                padding: 3,
                payload: 2
            })
        ));
        q[13] = 2;
        assert!(check_padding(&q, &h).is_ok());
        assert!(matches!(
            rtcp_ssrc(&[0x80, 200, 0, 1, 0, 0, 0], 0),
            Err(Error::HeaderTooShort { .. })
        ));
    }
}
