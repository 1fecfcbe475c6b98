//! Low-level scanning shared by the typed header and URI decoders.
//!
//! Header values keep their folded line breaks (the message is zero-copy), so
//! every decoder treats CR and LF as linear white space, like SP and HTAB.

use std::borrow::Cow;

use carevox_redact::Pii;

/// Linear white space inside a header value (folds included).
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte classes, one table lookup each.
pub(crate) const TOKEN: u8 = 1;
/// Characters allowed unescaped somewhere in a URI.
pub(crate) const URI: u8 = 2;
/// Characters of a host name (alphanumerics, `-`, `.`).
pub(crate) const HOST: u8 = 4;
/// RFC 7230 `tchar`: the RFC 3261 token characters and `#$&^|`, as the
/// auth-param grammar of RFC 7235 and RFC 7616 uses them.
pub(crate) const TCHAR: u8 = 8;

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut c = 0;
        if alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            c |= TOKEN;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'%'
                    | b';'
                    | b':'
                    | b'@'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b','
                    | b'/'
                    | b'?'
                    | b'#'
                    | b'['
                    | b']'
            )
        {
            c |= URI;
        }
        if alnum || b == b'-' || b == b'.' {
            c |= HOST;
        }
        if c & TOKEN != 0 || matches!(b, b'#' | b'$' | b'&' | b'^' | b'|') {
            c |= TCHAR;
        }
        // `i` < 256 = t.len() (loop condition).
        #[allow(clippy::indexing_slicing)]
        {
            t[i] = c;
        }
        i += 1;
    }
    t
}

static CLASSES: [u8; 256] = classes();

/// True when `b` is in all of the byte classes `class`.
#[inline]
#[allow(clippy::indexing_slicing)] // a u8 is always below 256 = CLASSES.len()
pub(crate) fn is_class(b: u8, class: u8) -> bool {
    CLASSES[usize::from(b)] & class == class
}

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    is_class(b, TOKEN)
}

/// RFC 7230 `tchar` characters.
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    is_class(b, TCHAR)
}

/// True when `s` is a non-empty RFC 3261 token.
pub(crate) fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// `s` without leading and trailing linear white space.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|c| !is_lws(*c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_lws(*c)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or("")
}

/// Splits `s` at the first `b`, like `str::split_once`.
#[inline]
pub(crate) fn split1(s: &str, b: u8) -> Option<(&str, &str)> {
    // The strings split here are short: a plain loop beats memchr's set-up.
    let i = s.as_bytes().iter().position(|c| *c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Length of a quoted string starting at the `"` at the start of `bytes`,
/// closing quote included; `None` if it is not closed.
pub(crate) fn quoted_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits `s` at the first `sep` that is outside quoted strings and angle
/// brackets; returns the part before and, if found, the part after it.
pub(crate) fn split_top(s: &str, sep: u8) -> (&str, Option<&str>) {
    match find_top(s.as_bytes(), sep) {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..)),
        None => (s, None),
    }
}

/// Index of the first `sep` outside quoted strings and angle brackets.
pub(crate) fn find_top(bytes: &[u8], sep: u8) -> Option<usize> {
    // Most values hold no separator at all (one Via, one Contact): one
    // vectorised search settles them.
    let first = memchr::memchr(sep, bytes)?;
    if !bytes
        .get(..first)
        .is_some_and(|head| head.iter().any(|b| *b == b'"' || *b == b'<'))
    {
        return Some(first);
    }
    if bytes.len() > 64 {
        return find_top_long(bytes, sep);
    }
    // Short values: one scalar pass beats memchr's set-up.
    let mut i = 0;
    let mut angle = false;
    while let Some(&b) = bytes.get(i) {
        if b == sep && !angle {
            return Some(i);
        }
        match b {
            b'"' if !angle => i += quoted_len(bytes.get(i..)?)?,
            b'<' => {
                angle = true;
                i += 1;
            }
            b'>' => {
                angle = false;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn find_top_long(bytes: &[u8], sep: u8) -> Option<usize> {
    // Jump from one byte that matters to the next with memchr.
    let mut i = 0;
    loop {
        let j = i + memchr::memchr3(sep, b'"', b'<', bytes.get(i..)?)?;
        match bytes.get(j) {
            Some(&b) if b == sep => return Some(j),
            Some(b'"') => i = j + quoted_len(bytes.get(j..)?)?,
            _ => i = j + 1 + memchr::memchr(b'>', bytes.get(j + 1..)?)? + 1,
        }
    }
}

/// The items of a comma-separated header value (RFC 3261 section 7.3.1),
/// trimmed, empty ones skipped; commas inside quoted strings and `<...>` do
/// not separate.
#[derive(Debug, Clone)]
pub struct ListItems<'a> {
    rest: Pii<Option<&'a str>>,
}

impl<'a> ListItems<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self {
            rest: Pii::new(Some(s)),
        }
    }
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let s = (*self.rest.expose())?;
            let (item, rest) = split_top(s, b',');
            self.rest = Pii::new(rest);
            let item = trim(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// Removes the quotes and backslash escapes of a quoted string; a value that
/// is not quoted is returned as it is.
pub fn unquote(s: &str) -> Cow<'_, str> {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return Cow::Borrowed(s);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Decodes `%XX` escapes; an ill-formed escape is kept as it is.
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(v) = bytes.get(i + 1..i + 3).and_then(hex_byte)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// Two hex digits of either case as one byte.
pub(crate) fn hex_byte(pair: &[u8]) -> Option<u8> {
    let mut out = [0u8; 1];
    if pair.len() != 2 {
        return None;
    }
    data_encoding::HEXLOWER_PERMISSIVE
        .decode_mut(pair, &mut out)
        .ok()?;
    let [v] = out;
    Some(v)
}

/// Parses an unsigned decimal number made only of ASCII digits.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Like [`parse_u32`], but a number too large for `u32` saturates.
pub(crate) fn parse_u32_saturating(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u32::MAX))
}

/// A `;`-separated parameter list (`;name=value;flag`), as found in URIs and
/// header fields. Holds the raw text after the first `;`; parameters may
/// carry PHI (a `received` address, a tag, a `phone-context`), so `Debug`
/// redacts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: Pii<&'a str>,
}

/// One parameter of a [`Params`] list. The value is a [`Pii`] (a
/// `received` address, a tag, a `phone-context`), so `Debug` shows the name,
/// never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name, as written.
    pub name: &'a str,
    /// The value as written (quoted strings keep their quotes), or `None`
    /// for a flag.
    pub value: Pii<Option<&'a str>>,
}

impl<'a> Param<'a> {
    /// The value with quotes and escapes removed.
    pub fn unquoted(&self) -> Option<Cow<'a, str>> {
        self.value.into_inner().map(unquote)
    }
}

impl<'a> Params<'a> {
    /// Wraps the raw text after the first `;` (without it).
    pub fn new(raw: &'a str) -> Self {
        Self { raw: Pii::new(raw) }
    }

    /// The raw text, as in the message, without the leading `;`.
    pub fn as_str(&self) -> &'a str {
        self.raw.into_inner()
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        trim(self.as_str()).is_empty()
    }

    /// The parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            rest: Pii::new(Some(self.as_str())),
        }
    }

    /// The first parameter called `name` (case-insensitive): `Some(None)` for
    /// a flag, `Some(Some(value))` with the raw value, `None` if absent.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.into_inner())
    }

    /// The value of `name`, if present with a value.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// True when a parameter called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Params`] list.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: Pii<Option<&'a str>>,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let s = (*self.rest.expose())?;
            let (item, rest) = split_top(s, b';');
            self.rest = Pii::new(rest);
            // `name=value`, unless a quote comes before any `=`.
            let eq = item.bytes().position(|c| c == b'=' || c == b'"');
            let (name, value) = match eq {
                Some(i) if item.as_bytes().get(i) == Some(&b'=') => (
                    item.get(..i).unwrap_or(""),
                    Some(trim(item.get(i + 1..).unwrap_or(""))),
                ),
                _ => (item, None),
            };
            let name = trim(name);
            if name.is_empty() && value.is_none() {
                continue;
            }
            return Some(Param {
                name,
                value: Pii::new(value),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_respect_quotes_and_angles() {
        let items: Vec<_> = ListItems::new(r#""a, b" <sip:x,y@h>;p="1,2" , , <sip:z@h>"#).collect();
        assert_eq!(items, [r#""a, b" <sip:x,y@h>;p="1,2""#, "<sip:z@h>"]);
    }

    #[test]
    fn params() {
        let p = Params::new(r#"branch=z9hG4bK1 ; rport ;x="a;b\"c""#);
        assert_eq!(p.get("BRANCH"), Some(Some("z9hG4bK1")));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.value("x"), Some(r#""a;b\"c""#));
        assert_eq!(unquote(p.value("x").unwrap()), r#"a;b"c"#);
        assert_eq!(p.get("y"), None);
    }

    #[test]
    fn percent() {
        assert_eq!(&*percent_decode("a%41%zz%4"), b"aA%zz%4");
    }
}
