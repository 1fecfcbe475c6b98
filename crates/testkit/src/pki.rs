//! A test PKI made with rcgen at run time: a certificate authority and leaf
//! certificates, in DER for rustls and PEM for external programs.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority made for one test.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate.
    pub cert: CertificateDer<'static>,
    /// The CA certificate in PEM, for external programs.
    pub pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A certificate chain and its key.
#[derive(Debug)]
pub struct Identity {
    /// The leaf certificate (the chain a server presents).
    pub chain: Vec<CertificateDer<'static>>,
    /// Its key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf certificate in PEM, for external programs.
    pub cert_pem: String,
    /// The key in PKCS#8 PEM, for external programs.
    pub key_pem: String,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let signed = params.self_signed(&key).unwrap();
        let (cert, pem) = (signed.der().clone(), signed.pem());
        Ca {
            params,
            key,
            cert,
            pem,
        }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses), valid now.
    pub fn issue(&self, names: &[&str]) -> Identity {
        self.issue_with(names, |_| {})
    }

    /// A leaf certificate for `names` that expired years ago.
    pub fn issue_expired(&self, names: &[&str]) -> Identity {
        self.issue_with(names, |p| {
            p.not_before = date_time_ymd(2001, 1, 1);
            p.not_after = date_time_ymd(2002, 1, 1);
        })
    }

    /// A leaf certificate for `names`, its parameters edited by `edit`.
    pub fn issue_with(
        &self,
        names: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        let mut dn = DistinguishedName::new();
        // The first name is the common name too, for clients that still
        // check it.
        dn.push(
            DnType::CommonName,
            names.first().map_or("carevox test leaf", String::as_str),
        );
        params.distinguished_name = dn;
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
