#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::fmt;
use core::hash::{Hash, Hasher};

use zeroize::{Zeroize, ZeroizeOnDrop};

/// What `Debug` and `Display` print in place of a redacted value.
pub const REDACTED: &str = "<redacted>";

/// Protected health information or a personal identifier.
///
/// `Debug` and `Display` print `<redacted>`, whatever `T` is, in every
/// formatting mode (`{:?}`, `{:#?}`, `{}`). [`Pii::expose`] reads the value.
/// Equality, ordering and hashing are those of `T`.
#[derive(Clone, Copy, Default)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    /// Wraps a value that may be PHI.
    #[must_use]
    pub const fn new(value: T) -> Self {
        Pii(value)
    }

    /// The value. Never pass it to a log.
    #[must_use]
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// The value, mutably.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// Unwraps the value.
    #[must_use]
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Applies `f` to the value, keeping the result wrapped.
    #[must_use]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Pii<U> {
        Pii(f(self.0))
    }

    /// Borrows the value, keeping the borrow wrapped.
    #[must_use]
    pub const fn as_ref(&self) -> Pii<&T> {
        Pii(&self.0)
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Pii(value)
    }
}

impl From<&str> for Pii<String> {
    fn from(value: &str) -> Self {
        Pii(value.to_owned())
    }
}

/// With the `serde` feature, a `Pii<T>` serializes and deserializes as its
/// value, unchanged: serialization is a deliberate export (a JSON report for
/// the people entitled to read it), not a log. `Secret<T>` has no serde
/// support on purpose.
#[cfg(feature = "serde")]
impl<T: serde::Serialize> serde::Serialize for Pii<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Pii<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Pii)
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: PartialEq<U>, U> PartialEq<Pii<U>> for Pii<T> {
    fn eq(&self, other: &Pii<U>) -> bool {
        self.0 == other.0
    }
}

impl<T: Eq> Eq for Pii<T> {}

impl<T: PartialOrd> PartialOrd for Pii<T> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        self.0.partial_cmp(&other.0)
    }
}

impl<T: Ord> Ord for Pii<T> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<T: Hash> Hash for Pii<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Key material, a password or another secret.
///
/// `Debug` prints `<redacted>`; there is no `Display`. The value is zeroized
/// when dropped. Equality is deliberately not implemented: compare secrets
/// in constant time (for example with `subtle`) on [`Secret::expose`].
#[derive(Clone, Default)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Takes ownership of a secret; it is wiped when this value is dropped.
    #[must_use]
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret. Handle with care: do not log it or copy it around.
    #[must_use]
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The secret, mutably (for filling a buffer in place).
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> Zeroize for Secret<T> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Checks that formatting `value` with `{:?}` and `{:#?}` shows none of
/// `needles`. Returns the first needle found and the output it was found in.
///
/// Tests use it to prove that a type built from known secrets and PHI never
/// prints them.
pub fn debug_leak<T: fmt::Debug + ?Sized>(value: &T, needles: &[&str]) -> Option<(String, String)> {
    let outputs = [format!("{value:?}"), format!("{value:#?}")];
    for out in outputs {
        for needle in needles {
            if !needle.is_empty() && out.contains(needle) {
                return Some(((*needle).to_owned(), out));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug)]
    #[allow(dead_code)] // fields are read only through Debug
    struct Call {
        caller: Pii<String>,
        key: Secret<Vec<u8>>,
        id: u32,
    }

    #[test]
    fn pii_never_prints_in_any_mode() {
        let p = Pii::new("+15550100".to_owned());
        for out in [
            format!("{p:?}"),
            format!("{p:#?}"),
            format!("{p}"),
            format!("{p:>20}"),
        ] {
            assert!(!out.contains("555"), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(p.expose(), "+15550100");
    }

    #[test]
    fn derived_debug_of_a_holder_is_safe() {
        let c = Call {
            caller: Pii::new("sip:alice@clinic.example".to_owned()),
            key: Secret::new(b"0123456789abcdef".to_vec()),
            id: 42,
        };
        assert_eq!(debug_leak(&c, &["alice", "0123456789", "48, 49"]), None);
        assert!(format!("{c:?}").contains("42"));
    }

    #[test]
    fn debug_leak_finds_what_a_plain_type_prints() {
        let leaky = ("alice", 1);
        let found = debug_leak(&leaky, &["alice"]);
        assert!(matches!(found, Some((needle, _)) if needle == "alice"));
        assert_eq!(debug_leak(&leaky, &[""]), None);
    }

    #[test]
    fn pii_compares_and_hashes_as_its_value() {
        let a = Pii::new("x".to_owned());
        let b = Pii::new("x".to_owned());
        assert_eq!(a, b);
        assert!(Pii::new(1) < Pii::new(2));
        let mut m = HashMap::new();
        m.insert(a, 1);
        assert_eq!(m.get(&b), Some(&1));
        assert_eq!(Pii::new(3).map(|v| v * 2).into_inner(), 6);
    }

    #[test]
    fn pii_of_a_borrow_and_from_a_str() {
        let owned: Pii<String> = "sip:bob@clinic.example".into();
        assert_eq!(owned.expose(), "sip:bob@clinic.example");
        let borrowed: Pii<&str> = Pii::new(owned.expose().as_str());
        assert_eq!(debug_leak(&(owned.as_ref(), borrowed), &["bob"]), None);
        assert_eq!(*borrowed.expose(), "sip:bob@clinic.example");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn pii_serializes_as_its_value() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Row {
            patient: Pii<String>,
            room: Option<Pii<u32>>,
        }
        let row = Row {
            patient: "Patient/4711".into(),
            room: Some(Pii::new(12)),
        };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"patient":"Patient/4711","room":12}"#);
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), row);
        assert_eq!(debug_leak(&row, &["4711"]), None);
    }

    #[test]
    fn secret_is_wiped_by_zeroize() {
        let mut s = Secret::new(vec![7_u8; 4]);
        s.zeroize();
        assert!(s.expose().iter().all(|b| *b == 0));
        assert_eq!(format!("{s:?}"), REDACTED);
    }
}
