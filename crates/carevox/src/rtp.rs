//! The fixed header of a plaintext RTP packet (RFC 3550 section 5.1), read
//! and written the one way the modules that handle media do it (`recording`
//! reads samples, `dtmf` reads and writes telephone events).

/// The fields of an RTP packet that the media modules use, and its payload.
#[derive(Clone, Copy)]
pub(crate) struct Rtp<'a> {
    /// The marker bit (the first packet of a talkspurt or of an event).
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    /// What follows the CSRC list and the header extension, without the
    /// padding.
    pub(crate) payload: &'a [u8],
}

/// Reads the header of `p`: version 2, the CSRC list and a header
/// extension skipped, the padding (its count in the last byte) cut off.
/// The error says what is wrong with it.
pub(crate) fn parse(p: &[u8]) -> Result<Rtp<'_>, &'static str> {
    let header: [u8; 12] = p
        .get(..12)
        .and_then(|h| h.try_into().ok())
        .ok_or("shorter than an RTP header")?;
    if header[0] >> 6 != 2 {
        return Err("version is not 2");
    }
    let csrcs = usize::from(header[0] & 0x0f);
    let mut start = 12 + 4 * csrcs;
    if header[0] & 0x10 != 0 {
        let ext: [u8; 4] = p
            .get(start..start + 4)
            .and_then(|h| h.try_into().ok())
            .ok_or("header extension past the end")?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = p.len();
    if header[0] & 0x20 != 0 {
        let pad = usize::from(*p.last().ok_or("empty")?);
        end = end.checked_sub(pad).ok_or("padding past the start")?;
    }
    let payload = p.get(start..end).ok_or("header past the end")?;
    Ok(Rtp {
        marker: header[1] & 0x80 != 0,
        payload_type: header[1] & 0x7f,
        timestamp: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        ssrc: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
        payload,
    })
}

/// Appends a 12-byte RTP header (version 2, no padding, extension or
/// CSRC) to `out`. `payload_type` is taken modulo 128.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(first: u8, second: u8) -> Vec<u8> {
        let mut p = vec![first, second, 0, 1];
        p.extend_from_slice(&160u32.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p
    }

    #[test]
    fn reads_the_fields_and_the_payload() {
        let mut p = header(0x80, 0x80 | 101);
        p.extend_from_slice(&[1, 2, 3, 4]);
        let rtp = parse(&p).unwrap();
        assert!(rtp.marker);
        assert_eq!(rtp.payload_type, 101);
        assert_eq!(rtp.timestamp, 160);
        assert_eq!(rtp.ssrc, 0x1234_5678);
        assert_eq!(rtp.payload, &[1, 2, 3, 4]);
        assert!(!parse(&header(0x80, 0)).unwrap().marker);
    }

    #[test]
    fn skips_csrcs_and_the_extension_and_cuts_the_padding() {
        // Two CSRCs, a one-word extension, two bytes of padding.
        let mut p = header(0x80 | 0x20 | 0x10 | 2, 0);
        p.extend_from_slice(&[0xcc; 8]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0xee, 0xee, 0xee, 0xee]);
        p.extend_from_slice(&[9, 8, 7, 6, 0, 2]);
        assert_eq!(parse(&p).unwrap().payload, &[9, 8, 7, 6]);
    }

    #[test]
    fn refuses_what_is_not_rtp() {
        assert_eq!(parse(&[0x80; 11]).err(), Some("shorter than an RTP header"));
        assert_eq!(parse(&header(0x40, 0)).err(), Some("version is not 2"));
        assert_eq!(
            parse(&header(0x90, 0)).err(),
            Some("header extension past the end")
        );
        assert_eq!(parse(&header(0x81, 0)).err(), Some("header past the end"));
        let mut padded = header(0xa0, 0);
        padded.push(14);
        assert_eq!(parse(&padded).err(), Some("padding past the start"));
        padded.pop();
        padded.push(2);
        assert_eq!(parse(&padded).err(), Some("header past the end"));
    }

    #[test]
    fn writes_what_it_reads() {
        let mut p = Vec::new();
        write_header(&mut p, true, 101, 7, 8000, 42);
        p.extend_from_slice(&[1, 2, 3, 4]);
        let rtp = parse(&p).unwrap();
        assert_eq!(p.get(2..4), Some(&7u16.to_be_bytes()[..]));
        assert!(rtp.marker);
        assert_eq!((rtp.payload_type, rtp.timestamp, rtp.ssrc), (101, 8000, 42));
        assert_eq!(rtp.payload, &[1, 2, 3, 4]);
    }
}
