//! Fuzz entry points for carevox-vault.

use carevox_vault::{DataKey, Decryptor, KeyRecord, ObjectHeader};

/// The data key of the golden objects in `crates/vault/tests/data`, which
/// seed the corpus, so that mutations of them reach the metadata and segment
/// parsers.
const GOLDEN_KEY: [u8; 32] = [0x42; 32];

/// Parses arbitrary bytes as an object header and as a key record, then
/// opens them as a whole object under the golden key and reads every byte.
/// Panics only if an object that opened does not read back to its length.
pub fn vault_object(data: &[u8]) {
    let _ = ObjectHeader::parse(data);
    let _ = KeyRecord::parse(data);
    let key = DataKey::from_bytes(GOLDEN_KEY);
    if let Ok(mut object) = Decryptor::open(&key, data) {
        let len = object.len();
        let mut buf = [0u8; 300];
        let mut offset = 0u64;
        while let Ok(n) = object.read_at(offset, &mut buf) {
            if n == 0 {
                break;
            }
            offset += n as u64;
        }
        assert!(offset <= len, "read past the authenticated length");
        let _ = object.read_at(len.saturating_sub(1), &mut buf);
    }
}
