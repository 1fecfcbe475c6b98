//! The little of bencode that rtpengine's ng protocol needs: dictionaries
//! of byte strings, lists and integers, written and read.

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A byte string.
    Bytes(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A list.
    List(Vec<Value>),
    /// A dictionary, in the order read or written.
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// A string value.
    pub(crate) fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// Appends the encoding to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::List(items) => {
                out.push(b'l');
                for v in items {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The value of `key` in a dictionary.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A byte string as text.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// Decodes one value from the start of `input`; returns it and the rest.
pub(crate) fn decode(input: &[u8]) -> Option<(Value, &[u8])> {
    decode_depth(input, 0)
}

fn decode_depth(input: &[u8], depth: usize) -> Option<(Value, &[u8])> {
    if depth > 32 {
        return None;
    }
    let (&first, rest) = input.split_first()?;
    match first {
        b'i' => {
            let end = rest.iter().position(|&b| b == b'e')?;
            let n = std::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()?;
            Some((Value::Int(n), rest.get(end + 1..)?))
        }
        b'l' => {
            let mut items = Vec::new();
            let mut rest = rest;
            loop {
                if let Some(after) = rest.strip_prefix(b"e") {
                    return Some((Value::List(items), after));
                }
                let (v, r) = decode_depth(rest, depth + 1)?;
                items.push(v);
                rest = r;
            }
        }
        b'd' => {
            let mut entries = Vec::new();
            let mut rest = rest;
            loop {
                if let Some(after) = rest.strip_prefix(b"e") {
                    return Some((Value::Dict(entries), after));
                }
                let (Value::Bytes(k), r) = decode_depth(rest, depth + 1)? else {
                    return None;
                };
                let (v, r) = decode_depth(r, depth + 1)?;
                entries.push((k, v));
                rest = r;
            }
        }
        b'0'..=b'9' => {
            let colon = input.iter().position(|&b| b == b':')?;
            let len: usize = std::str::from_utf8(input.get(..colon)?)
                .ok()?
                .parse()
                .ok()?;
            let body = input.get(colon + 1..)?;
            Some((Value::Bytes(body.get(..len)?.to_vec()), body.get(len..)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dictionary_round_trips() {
        let v = Value::Dict(vec![
            (b"command".to_vec(), Value::str("offer")),
            (
                b"flags".to_vec(),
                Value::List(vec![Value::str("a b"), Value::Int(-3)]),
            ),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(out, b"d7:command5:offer5:flagsl3:a bi-3eee");
        let (back, rest) = decode(&out).unwrap();
        assert_eq!(back, v);
        assert!(rest.is_empty());
        assert_eq!(back.get("command").and_then(Value::as_str), Some("offer"));
    }

    #[test]
    fn truncated_or_foreign_input_is_refused() {
        for bad in [
            &b"d7:command5:off"[..],
            b"x",
            b"5:ab",
            b"i12",
            b"l",
            b"d1:ae",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
