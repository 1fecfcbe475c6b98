//! No key, passphrase, wrapped key or label text appears in the `{:?}` or
//! `{:#?}` output of any public type or error of the crate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(clippy::disallowed_methods)]

use std::fmt::Debug;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use carevox_redact::debug_leak;
use carevox_vault::{
    DataKey, Decryptor, Encryptor, Event, FsBackend, KeyProvider, KeyRecord, LocalKeyFile,
    MIN_PBKDF2_ITERATIONS, MemoryBackend, Metadata, ObjectHeader, PassphraseProvider, Vault,
};
use data_encoding::HEXLOWER;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

const PASSPHRASE: &str = "hunter2-correct-horse";
const LABEL_KEY: &str = "patient-ref-label";
const LABEL_VALUE: &str = "MRN-31337-JANE-ROE";
const DATA_KEY: [u8; 32] = [0xA7; 32];

/// The ways a key could show up in Debug output: as decimal bytes (the
/// derived Debug of an array or Vec), as hex, or as text.
fn key_needles(key: &[u8]) -> Vec<String> {
    let dec: Vec<String> = key.iter().take(6).map(u8::to_string).collect();
    vec![
        dec.join(", "),
        dec.join(","),
        HEXLOWER.encode(&key[..8]),
        data_encoding::HEXUPPER.encode(&key[..8]),
    ]
}

struct Needles(Vec<String>);

impl Needles {
    fn check<T: Debug + ?Sized>(&self, what: &str, value: &T) {
        let needles: Vec<&str> = self.0.iter().map(String::as_str).collect();
        if let Some((needle, out)) = debug_leak(value, &needles) {
            panic!("{what} prints {needle:?}: {out}");
        }
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn no_public_type_or_error_prints_a_secret_or_a_label() {
    let rng = SystemRandom::new();
    let mut suffix = [0u8; 8];
    rng.fill(&mut suffix).unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "carevox-vault-redaction-{}",
        HEXLOWER.encode(&suffix)
    )));
    std::fs::create_dir_all(&dir.0).unwrap();

    let mut needles = vec![
        PASSPHRASE.to_owned(),
        LABEL_KEY.to_owned(),
        LABEL_VALUE.to_owned(),
    ];
    needles.extend(key_needles(&DATA_KEY));

    // The local key file's KEK, read from its documented format.
    let kek_path = dir.0.join("kek");
    let local = Arc::new(LocalKeyFile::create(&kek_path, &rng).unwrap());
    let file = std::fs::read(&kek_path).unwrap();
    needles.extend(key_needles(&file[23..55]));

    // The passphrase KEK, derived here from the stored parameters.
    let (pass, params) =
        PassphraseProvider::create(PASSPHRASE.as_bytes(), MIN_PBKDF2_ITERATIONS, 1, &rng).unwrap();
    let mut derived = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(MIN_PBKDF2_ITERATIONS).unwrap(),
        &params[19..51],
        PASSPHRASE.as_bytes(),
        &mut derived,
    );
    needles.extend(key_needles(&derived));

    let meta = Metadata::new("vm-1", "audio/wav", 1, 2).label(LABEL_KEY, LABEL_VALUE);

    // Vaults over both backends, reporting labels in events on purpose.
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&events);
    let hook = Arc::new(move |e: &Event<'_>| {
        sink.lock()
            .unwrap()
            .extend([format!("{e:?}"), format!("{e:#?}")]);
    });
    let mem = MemoryBackend::new();
    let mem_vault = Vault::new(Arc::new(mem.clone()), Arc::new(pass))
        .with_hook(hook.clone())
        .with_labels_in_events(true);
    let local_dyn: Arc<dyn KeyProvider> = local.clone();
    let fs_vault = Vault::new(
        Arc::new(FsBackend::open(dir.0.join("vault")).unwrap()),
        local_dyn,
    )
    .with_hook(hook)
    .with_labels_in_events(true);
    for v in [&mem_vault, &fs_vault] {
        v.put(&rng, meta.clone(), b"RIFF audio").unwrap();
    }
    let record_bytes = mem.key_record_bytes("vm-1").unwrap();
    let record = KeyRecord::parse(&record_bytes).unwrap();
    needles.extend(key_needles(record.wrapped.expose()));
    let fs_record = std::fs::read(dir.0.join("vault/keys/vm-1.key")).unwrap();
    needles.extend(key_needles(&fs_record[16..]));
    let n = Needles(needles);

    n.check("DataKey", &DataKey::from_bytes(DATA_KEY));
    n.check("KeyRecord", &record);
    n.check("Metadata", &meta);
    n.check("LocalKeyFile", &*local);
    n.check("MemoryBackend", &mem);
    n.check("Vault (memory)", &mem_vault);
    n.check("Vault (files)", &fs_vault);

    // Stream layer: encryptor, decryptor, header.
    let key = DataKey::from_bytes(DATA_KEY);
    let mut enc = Encryptor::new(&key, &rng, 256, &meta, Vec::new()).unwrap();
    enc.write_all(b"RIFF audio").unwrap();
    n.check("Encryptor", &enc);
    let (ct, _) = enc.finish().unwrap();
    n.check("ObjectHeader", &ObjectHeader::parse(&ct).unwrap());
    n.check("Decryptor", &Decryptor::open(&key, ct.clone()).unwrap());

    // Handles and results.
    for v in [&mem_vault, &fs_vault] {
        let reader = v.open("vm-1").unwrap();
        n.check("ObjectReader", &reader);
        n.check("ObjectReader metadata", reader.metadata());
        n.check("get", &v.get("vm-1").unwrap().0);
        let mut w = v
            .writer(
                &rng,
                Metadata::new("vm-2", "audio/wav", 1, 2).label(LABEL_KEY, LABEL_VALUE),
            )
            .unwrap();
        w.write_all(b"more").unwrap();
        n.check("ObjectWriter", &w);
        n.check("ObjectInfo", &w.finish().unwrap());
        n.check("list", &v.list().unwrap());
        n.check(
            "RotationReport",
            &v.rotate(&rng, &mut |p| n.check("Progress", &p)).unwrap(),
        );
        n.check("PurgeReport", &v.purge_expired(0).unwrap());
    }
    let (_, pass_params) = (0, params);
    n.check(
        "PassphraseProvider",
        &PassphraseProvider::open(PASSPHRASE.as_bytes(), &pass_params).unwrap(),
    );

    // Errors: from every kind of damage, and from the providers.
    let mut errors = Vec::new();
    let payload = mem.payload_bytes("vm-1").unwrap();
    for at in [9, 20, 40, 100, 130, payload.len() - 1] {
        let mut bad = payload.clone();
        bad[at] ^= 1;
        mem.set_payload_bytes("vm-1", bad);
        errors.push(mem_vault.get("vm-1").unwrap_err());
    }
    mem.set_payload_bytes("vm-1", payload);
    for at in [0, 9, 13, 15, 20] {
        let mut bad = record_bytes.clone();
        bad[at] ^= 1;
        mem.set_key_record_bytes("vm-1", bad);
        errors.push(mem_vault.get("vm-1").unwrap_err());
    }
    errors.push(mem_vault.get("absent").unwrap_err());
    errors.push(mem_vault.retire_kek(1).unwrap_err());
    for e in &errors {
        n.check("Error", e);
        n.check("Error (display)", &e.to_string());
    }
    let key_errors = [
        PassphraseProvider::open(b"wrong", &pass_params).unwrap_err(),
        PassphraseProvider::open(PASSPHRASE.as_bytes(), &pass_params[..10]).unwrap_err(),
        local.unwrap(9, b"x", b"vm-1").unwrap_err(),
        local.unwrap(1, &[0; 60], b"vm-1").unwrap_err(),
    ];
    for e in &key_errors {
        n.check("KeyError", e);
        n.check("KeyError (display)", &e.to_string());
    }

    // The labels were there to be seen, and are still readable on purpose.
    assert_eq!(
        mem_vault.get("vm-2").unwrap().0.get_label(LABEL_KEY),
        Some(LABEL_VALUE)
    );
    // Every event the hooks saw.
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert!(events.len() > 20);
    for e in &events {
        n.check("Event", e.as_str());
    }
}
