//! The rustls server configuration with a hot-swappable certificate.
//!
//! rustls asks [`ServingCert`] for the certificate at every handshake, so replacing it
//! ([`ServingCert::set`]) changes what new connections get at once, while established connections
//! (and requests in flight on them) carry on untouched: rotation never drops a request.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate currently served; none before the first one is loaded (handshakes then fail,
/// and readiness says why).
#[derive(Debug, Default)]
pub struct ServingCert {
    current: RwLock<Option<Served>>,
}

#[derive(Debug, Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    not_after: Option<SystemTime>,
}

impl ServingCert {
    pub fn new() -> Arc<ServingCert> {
        Arc::new(ServingCert::default())
    }

    /// Serves `key` from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>, not_after: Option<SystemTime>) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Some(Served { key, not_after });
    }

    /// Whether a certificate is loaded.
    pub fn is_loaded(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// End of validity of the served certificate, when known.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|s| s.not_after)
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.key.clone())
    }
}

/// The crypto provider used for serving: ring, the one kube's client already uses, named
/// explicitly so nothing depends on a process-wide default being installed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.2 and 1.3 with rustls' safe defaults, HTTP/1.1 only (the apiserver's client falls back
/// to it), certificates from `cert`.
pub fn server_config(cert: Arc<ServingCert>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
