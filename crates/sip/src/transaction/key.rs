//! Transaction matching keys (RFC 3261 sections 17.1.3 and 17.2.3, and the
//! RFC 2543 fallback of 17.2.3), and the merged-request key of 8.2.2.2.

use crate::error::ParseError;
use crate::header::Method;
use crate::message::Message;

/// The magic cookie that opens every RFC 3261 branch (section 8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The method a request or response belongs to for matching: ACK matches the
/// INVITE transaction it acknowledges.
fn match_method(method: Method<'_>) -> String {
    match method {
        Method::Ack => "INVITE".to_owned(),
        other => other.as_str().to_owned(),
    }
}

/// What identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261: branch, sent-by and method (17.2.3).
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq, top Via. The
    /// To tag is compared apart (the ACK carries the tag of the response).
    Legacy {
        request_uri: String,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        method: String,
        via: String,
    },
}

/// The sent-by of a Via (host and port, the host in lower case, no port
/// written when absent) as matching compares it.
fn sent_by(msg: &Message) -> Result<(String, Option<&str>, String), ParseError> {
    let via = msg.top_via()?;
    let host = via.host().to_string().to_ascii_lowercase();
    let sent_by = match via.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let raw = msg
        .list(crate::name::HeaderName::Via)
        .next()
        .ok_or(ParseError::MissingHeader { header: "Via" })?
        .to_owned();
    Ok((sent_by, via.branch(), raw))
}

impl ServerKey {
    /// The key of a received request. `as_method` replaces the request's own
    /// method (a CANCEL looks up the INVITE it cancels, 9.2).
    pub(crate) fn of_request(
        msg: &Message,
        as_method: Option<Method<'_>>,
    ) -> Result<Self, ParseError> {
        let (sent_by, branch, raw_via) = sent_by(msg)?;
        let own = msg.method().ok_or(ParseError::StartLine {
            what: "not a request",
        })?;
        let method = match_method(as_method.unwrap_or(own));
        match branch {
            Some(b) if b.starts_with(MAGIC_COOKIE) => Ok(Self::Branch {
                branch: b.to_owned(),
                sent_by,
                method,
            }),
            _ => Ok(Self::Legacy {
                request_uri: msg.request_uri_str().map(str::to_owned).ok_or(
                    ParseError::StartLine {
                        what: "not a request",
                    },
                )?,
                from_tag: msg.from()?.tag().map(str::to_owned),
                call_id: msg.call_id()?.to_owned(),
                cseq: msg.cseq()?.seq,
                method,
                via: raw_via,
            }),
        }
    }

    /// True for the RFC 2543 fallback key.
    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, Self::Legacy { .. })
    }
}

/// What identifies a client transaction: the branch of the top Via and the
/// CSeq method (17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    branch: String,
    method: String,
}

impl ClientKey {
    /// The key of a request sent by a client transaction.
    pub(crate) fn of_request(msg: &Message) -> Result<Option<Self>, ParseError> {
        let via = msg.top_via()?;
        let Some(branch) = via.branch() else {
            return Ok(None);
        };
        Ok(Some(Self {
            branch: branch.to_owned(),
            method: msg.cseq()?.method.as_str().to_owned(),
        }))
    }

    /// The key of a received response.
    pub(crate) fn of_response(msg: &Message) -> Result<Option<Self>, ParseError> {
        Self::of_request(msg)
    }
}

/// The key that reveals a merged request (8.2.2.2): From tag, Call-ID and
/// CSeq of a request without a To tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MergeKey {
    from_tag: String,
    call_id: String,
    cseq: u32,
    method: String,
}

impl MergeKey {
    /// The key of a request outside any dialog (no To tag), if it has a From tag.
    pub(crate) fn of_request(msg: &Message) -> Result<Option<Self>, ParseError> {
        if msg.to()?.tag().is_some() {
            return Ok(None);
        }
        let Some(from_tag) = msg.from()?.tag() else {
            return Ok(None);
        };
        let cseq = msg.cseq()?;
        Ok(Some(Self {
            from_tag: from_tag.to_owned(),
            call_id: msg.call_id()?.to_owned(),
            cseq: cseq.seq,
            method: cseq.method.as_str().to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const INVITE: &str = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";

    #[test]
    fn ack_and_cancel_keys() {
        let inv = ServerKey::of_request(&msg(INVITE), None).unwrap();
        let ack = msg(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK"));
        assert_eq!(ServerKey::of_request(&ack, None).unwrap(), inv);
        let cancel = msg(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL"));
        assert_ne!(ServerKey::of_request(&cancel, None).unwrap(), inv);
        assert_eq!(
            ServerKey::of_request(&cancel, Some(Method::Invite)).unwrap(),
            inv
        );
        // Host case does not matter; the port does.
        let other = msg(&INVITE.replace("A.example:5060", "a.example:5060"));
        assert_eq!(ServerKey::of_request(&other, None).unwrap(), inv);
        let other = msg(&INVITE.replace("A.example:5060", "a.example"));
        assert_ne!(ServerKey::of_request(&other, None).unwrap(), inv);
    }

    #[test]
    fn legacy_key_without_cookie() {
        let old = msg(&INVITE.replace("branch=z9hG4bKx", "branch=1"));
        let key = ServerKey::of_request(&old, None).unwrap();
        assert!(key.is_legacy());
        let none = msg(&INVITE.replace(";branch=z9hG4bKx", ""));
        assert!(ServerKey::of_request(&none, None).unwrap().is_legacy());
    }
}
