//! Little helpers for the canonical big-endian encodings.

use crate::error::{Error, Result};

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn err(&self, reason: &'static str) -> Error {
        Error::malformed(self.what, self.pos, reason)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let rest = self
            .buf
            .get(self.pos..)
            .ok_or_else(|| self.err("truncated"))?;
        let (head, _) = rest
            .split_at_checked(n)
            .ok_or_else(|| self.err("truncated"))?;
        self.pos += n;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A string with a u16 length prefix.
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let len = usize::from(self.u16()?);
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| Error::malformed(self.what, start, "invalid UTF-8"))
    }

    /// An optional string: flag byte 0 (absent) or 1 (present) then the string.
    pub(crate) fn opt_str(&mut self) -> Result<Option<&'a str>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(Error::malformed(self.what, self.pos - 1, "bad option flag")),
        }
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

pub(crate) fn put_str(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| Error::FieldTooLong {
        field,
        max: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub(crate) fn put_opt_str(out: &mut Vec<u8>, field: &'static str, s: Option<&str>) -> Result<()> {
    match s {
        None => {
            out.push(0);
            Ok(())
        }
        Some(s) => {
            out.push(1);
            put_str(out, field, s)
        }
    }
}
