//! Limits against abusive messages, with safe defaults.

/// Upper bounds the parser enforces before it stores anything.
///
/// Exceeding any of them is a typed [`ParseError`](crate::ParseError); the
/// parser never allocates more than a header table bounded by
/// [`Limits::max_headers`]. The defaults suit a UDP or TLS signalling server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Whole message: start line, headers and body (default 65 535 bytes).
    pub max_message_size: usize,
    /// Number of header fields (default 128).
    pub max_headers: usize,
    /// One line: the start line or a header field with its folded lines (default 8 192 bytes).
    pub max_line_length: usize,
    /// Body (default 65 535 bytes; the message size bounds it too).
    pub max_body_size: usize,
    /// Request-URI (default 2 048 bytes).
    pub max_uri_length: usize,
    /// Via values, counting comma-separated ones (default 64).
    pub max_vias: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 65_535,
            max_headers: 128,
            max_line_length: 8_192,
            max_body_size: 65_535,
            max_uri_length: 2_048,
            max_vias: 64,
        }
    }
}

impl Limits {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Limits::max_message_size`] (capped at 4 GiB - 1).
    pub fn with_max_message_size(mut self, n: usize) -> Self {
        self.max_message_size = n.min(u32::MAX as usize);
        self
    }

    /// Sets [`Limits::max_headers`].
    pub fn with_max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }

    /// Sets [`Limits::max_line_length`].
    pub fn with_max_line_length(mut self, n: usize) -> Self {
        self.max_line_length = n;
        self
    }

    /// Sets [`Limits::max_body_size`].
    pub fn with_max_body_size(mut self, n: usize) -> Self {
        self.max_body_size = n;
        self
    }

    /// Sets [`Limits::max_uri_length`].
    pub fn with_max_uri_length(mut self, n: usize) -> Self {
        self.max_uri_length = n;
        self
    }

    /// Sets [`Limits::max_vias`].
    pub fn with_max_vias(mut self, n: usize) -> Self {
        self.max_vias = n;
        self
    }
}
