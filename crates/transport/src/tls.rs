//! TLS configuration: TLS 1.2 and 1.3 only, through rustls with the `ring`
//! provider, certificate verification on unless turned off through
//! [`TlsClientBuilder::dangerous`].

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::Error;

/// The protocol versions every configuration allows: TLS 1.2 and 1.3.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).map_err(|_| Error::TlsConfig {
            what: "a trust anchor is not a valid certificate",
        })?;
    }
    if store.is_empty() {
        return Err(Error::TlsConfig {
            what: "no trust anchors",
        });
    }
    Ok(store)
}

/// Whether and how a TLS server asks clients for a certificate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A client certificate is asked for and verified against these roots
    /// when sent; clients without one are accepted.
    Optional(Vec<CertificateDer<'static>>),
    /// Mutual TLS: a client certificate chaining to these roots is
    /// required; clients without one are refused.
    Required(Vec<CertificateDer<'static>>),
}

/// The server side of TLS: our certificate chain and key, and whether
/// clients must present certificates.
#[derive(Clone)]
pub struct TlsServerConfig {
    pub(crate) inner: Arc<rustls::ServerConfig>,
}

// rustls prints certificates (which may name people) in its Debug output:
// show only that a configuration is there.
impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig").finish_non_exhaustive()
    }
}

impl TlsServerConfig {
    /// A server presenting `chain` (leaf first) with `key`, asking no
    /// client certificate.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        Self::with_client_auth(chain, key, ClientAuth::None)
    }

    /// A server presenting `chain` with `key`, asking client certificates
    /// as `client_auth` says.
    pub fn with_client_auth(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_auth: ClientAuth,
    ) -> Result<Self, Error> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .map_err(|_| Error::TlsConfig {
                what: "protocol versions",
            })?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) | ClientAuth::Required(roots) if roots.is_empty() => {
                return Err(Error::TlsConfig {
                    what: "client certificate roots are empty",
                });
            }
            ClientAuth::Optional(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(root_store(&roots)?),
                    provider,
                )
                .allow_unauthenticated()
                .build()
                .map_err(|_| Error::TlsConfig {
                    what: "client certificate verifier",
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            ClientAuth::Required(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(root_store(&roots)?),
                    provider,
                )
                .build()
                .map_err(|_| Error::TlsConfig {
                    what: "client certificate verifier",
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|_| Error::TlsConfig {
                what: "server certificate chain or private key",
            })?;
        Ok(Self {
            inner: Arc::new(config),
        })
    }
}

/// The client side of TLS: which servers to trust and, for mutual TLS, our
/// certificate. Built with [`TlsClientConfig::builder`] or
/// [`TlsClientConfig::platform_builder`].
#[derive(Clone)]
pub struct TlsClientConfig {
    pub(crate) inner: Arc<rustls::ClientConfig>,
    /// False when verification was turned off through the dangerous door.
    pub(crate) verifies: bool,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("verifies", &self.verifies)
            .finish_non_exhaustive()
    }
}

enum Trust {
    Roots(Vec<CertificateDer<'static>>),
    Platform,
    Custom(Arc<dyn ServerCertVerifier>),
    Nothing,
}

/// Builds a [`TlsClientConfig`]. Server certificates are verified (chain,
/// validity period, server name) unless [`TlsClientBuilder::dangerous`] is
/// used.
pub struct TlsClientBuilder {
    trust: Trust,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl fmt::Debug for TlsClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trust = match self.trust {
            Trust::Roots(_) => "configured roots",
            Trust::Platform => "platform roots",
            Trust::Custom(_) => "custom verifier",
            Trust::Nothing => "verification off",
        };
        f.debug_struct("TlsClientBuilder")
            .field("trust", &trust)
            .field("client_certificate", &self.client_cert.is_some())
            .finish()
    }
}

impl TlsClientConfig {
    /// Trusts servers whose certificates chain to `roots`.
    pub fn builder(roots: Vec<CertificateDer<'static>>) -> TlsClientBuilder {
        TlsClientBuilder {
            trust: Trust::Roots(roots),
            client_cert: None,
        }
    }

    /// Trusts the platform's roots (the system certificate store on Linux,
    /// the OS verifier on macOS, Windows, Android and iOS).
    pub fn platform_builder() -> TlsClientBuilder {
        TlsClientBuilder {
            trust: Trust::Platform,
            client_cert: None,
        }
    }
}

impl TlsClientBuilder {
    /// Presents `chain` (leaf first) with `key` to servers that ask for a
    /// client certificate.
    pub fn client_certificate(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.client_cert = Some((chain, key));
        self
    }

    /// Options that weaken security: for tests and lab set-ups only, never
    /// for a link that carries PHI.
    pub fn dangerous(&mut self) -> DangerousClientConfig<'_> {
        DangerousClientConfig { builder: self }
    }

    /// Builds the configuration.
    pub fn build(self) -> Result<TlsClientConfig, Error> {
        let provider = provider();
        let verifies = !matches!(self.trust, Trust::Nothing);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .map_err(|_| Error::TlsConfig {
                what: "protocol versions",
            })?;
        let builder = match self.trust {
            Trust::Roots(roots) => builder.with_root_certificates(root_store(&roots)?),
            Trust::Platform => {
                let verifier = rustls_platform_verifier::Verifier::new(provider).map_err(|_| {
                    Error::TlsConfig {
                        what: "platform certificate verifier",
                    }
                })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
            }
            Trust::Custom(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(verifier),
            Trust::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification {
                    provider: provider.clone(),
                })),
        };
        let config = match self.client_cert {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|_| Error::TlsConfig {
                        what: "client certificate chain or private key",
                    })?
            }
        };
        Ok(TlsClientConfig {
            inner: Arc::new(config),
            verifies,
        })
    }
}

/// The door to options that turn security checks off (see
/// [`TlsClientBuilder::dangerous`]).
#[derive(Debug)]
pub struct DangerousClientConfig<'a> {
    builder: &'a mut TlsClientBuilder,
}

impl DangerousClientConfig<'_> {
    /// Accepts any server certificate, for any name. The handshake
    /// signatures are still checked, but anyone can pose as the server:
    /// never use it where PHI travels.
    pub fn disable_certificate_verification(&mut self) {
        self.builder.trust = Trust::Nothing;
    }

    /// Verifies server certificates with `verifier` instead of the
    /// configured roots.
    pub fn set_certificate_verifier(&mut self, verifier: Arc<dyn ServerCertVerifier>) {
        self.builder.trust = Trust::Custom(verifier);
    }
}

/// Accepts every certificate; checks the handshake signatures.
#[derive(Debug)]
struct NoVerification {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
