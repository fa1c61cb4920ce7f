//! Certificate material, without any I/O beyond reading two files:
//!
//! * [`SelfSignedCa`]: a CA generated in memory that issues short-lived serving certificates for
//!   the webhook Service's DNS names (and any extra names or IPs);
//! * [`load_pem_pair`]: a provided `tls.crt`/`tls.key` (a mounted Secret, e.g. cert-manager's);
//! * [`certified_key`]: either, as the key rustls serves;
//! * [`inspect`]: subject and validity of the certificates in a PEM bundle.
//!
//! Keys are ECDSA P-256 (rcgen's default, fast to generate). Private keys never leave the process.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

/// Organization of every CA this operator generates; with [`CA_COMMON_NAME_PREFIX`] it marks a
/// bundle entry as ours (see [`crate::webhook::ca_bundle`]).
pub const CA_ORGANIZATION: &str = "tfjob-operator";
/// Common name of a generated CA: this prefix, then the instance (pod) name.
pub const CA_COMMON_NAME_PREFIX: &str = "tfjob-operator-webhook-ca@";
/// A generated CA lives as long as its process (it is never stored), so its validity only has to
/// outlast any process; serving certificates are the short-lived, rotated part.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start this long before "now" so a peer whose clock is slightly behind accepts them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// File names of a provided certificate, as in a `kubernetes.io/tls` Secret.
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// Certificate generation or loading failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{name:?} is not a valid DNS name for a certificate: {source}")]
    Name {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} holds no PEM {expected}")]
    NoPem {
        what: String,
        expected: &'static str,
    },
    #[error("{what} is not valid PEM: {source}")]
    Pem {
        what: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate and key do not form a usable pair: {0}")]
    Key(#[source] rustls::Error),
    #[error(
        "the validity {validity:?} of a serving certificate must be shorter than {CA_VALIDITY:?}"
    )]
    Validity { validity: Duration },
}

/// The names a serving certificate is valid for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl SubjectNames {
    /// `<service>`, `<service>.<namespace>`, `<service>.<namespace>.svc` and the cluster-local
    /// FQDN (what the apiserver may dial for a Service reference), plus extra DNS names or IPs.
    pub fn for_service(service: &str, namespace: &str, extra: &[String]) -> SubjectNames {
        let mut names = SubjectNames {
            dns: vec![
                service.to_string(),
                format!("{service}.{namespace}"),
                format!("{service}.{namespace}.svc"),
                format!("{service}.{namespace}.svc.cluster.local"),
            ],
            ips: Vec::new(),
        };
        for name in extra.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            match name.parse::<IpAddr>() {
                Ok(ip) if !names.ips.contains(&ip) => names.ips.push(ip),
                Ok(_) => {}
                Err(_) if !names.dns.iter().any(|d| d == name) => names.dns.push(name.to_string()),
                Err(_) => {}
            }
        }
        names
    }
}

/// A serving certificate with its key, PEM-encoded.
#[derive(Clone)]
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("PemPair")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A CA generated in memory.
pub struct SelfSignedCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    not_after: SystemTime,
}

impl std::fmt::Debug for SelfSignedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSignedCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl SelfSignedCa {
    /// A new CA for `instance` (the pod name: it lets the next incarnation of the same pod
    /// recognise and replace this CA in the webhook configuration's bundle).
    pub fn generate(instance: &str, now: SystemTime) -> Result<SelfSignedCa, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, CA_ORGANIZATION);
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{CA_COMMON_NAME_PREFIX}{instance}"),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::from(now - BACKDATE);
        let not_after = now + CA_VALIDITY;
        params.not_after = OffsetDateTime::from(not_after);
        let cert = params.self_signed(&key)?;
        Ok(SelfSignedCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
            not_after: truncate_to_seconds(not_after),
        })
    }

    /// The CA certificate, PEM-encoded: what goes into a webhook configuration's `caBundle`.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Issues a serving certificate for `names`, valid from now (minus a small clock-skew
    /// allowance) for `validity`.
    pub fn issue(
        &self,
        names: &SubjectNames,
        validity: Duration,
        now: SystemTime,
    ) -> Result<PemPair, CertError> {
        if validity >= CA_VALIDITY {
            return Err(CertError::Validity { validity });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(first) = names.dns.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.clone());
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, CA_ORGANIZATION);
        for name in &names.dns {
            let ia5 = name.clone().try_into().map_err(|source| CertError::Name {
                name: name.clone(),
                source,
            })?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params
            .subject_alt_names
            .extend(names.ips.iter().copied().map(SanType::IpAddress));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::from(now - BACKDATE);
        let not_after = (now + validity).min(self.not_after);
        params.not_after = OffsetDateTime::from(not_after);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: truncate_to_seconds(not_after),
        })
    }
}

/// X.509 times have whole seconds; report what the certificate really says.
fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}

/// Reads `tls.crt` and `tls.key` from `dir`.
pub fn load_pem_pair(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| CertError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    Ok((read(CERT_FILE)?, read(KEY_FILE)?))
}

/// The rustls key for a PEM certificate chain (leaf first) and its PEM private key; fails when
/// either is missing or malformed or when they do not belong together.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CertError::Pem {
            what: CERT_FILE.into(),
            source,
        })?;
    if chain.is_empty() {
        return Err(CertError::NoPem {
            what: CERT_FILE.into(),
            expected: "CERTIFICATE",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => CertError::NoPem {
            what: KEY_FILE.into(),
            expected: "PRIVATE KEY",
        },
        source => CertError::Pem {
            what: KEY_FILE.into(),
            source,
        },
    })?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(CertError::Key)
}

/// What matters about one certificate of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub organization: Option<String>,
    pub common_name: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
}

impl CertInfo {
    /// The instance whose generated CA this is, if it is one of ours.
    pub fn generated_ca_instance(&self) -> Option<&str> {
        if self.organization.as_deref() != Some(CA_ORGANIZATION) {
            return None;
        }
        self.common_name
            .as_deref()?
            .strip_prefix(CA_COMMON_NAME_PREFIX)
    }

    /// Whether `now` (seconds since the epoch) is past the end of validity.
    pub fn expired_at(&self, now: i64) -> bool {
        now > self.not_after
    }
}

/// Subject and validity of a DER certificate; `None` when it cannot be parsed.
pub fn inspect(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    Some(CertInfo {
        organization: subject
            .iter_organization()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_string),
        common_name: subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_string),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Seconds since the epoch (0 before it, which no real clock reports).
pub fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use rustls::client::danger::ServerCertVerifier;

    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    #[test]
    fn service_names_cover_every_form_the_apiserver_may_dial() {
        let names = SubjectNames::for_service(
            "tfjob-operator",
            "kubeflow",
            &[
                "127.0.0.1".into(),
                "webhook.example.com".into(),
                " ".into(),
                "127.0.0.1".into(),
            ],
        );
        assert_eq!(
            names.dns,
            [
                "tfjob-operator",
                "tfjob-operator.kubeflow",
                "tfjob-operator.kubeflow.svc",
                "tfjob-operator.kubeflow.svc.cluster.local",
                "webhook.example.com"
            ]
        );
        assert_eq!(names.ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_generated_ca_issues_serving_certificates_rustls_accepts() {
        let now = SystemTime::now();
        let ca = SelfSignedCa::generate("pod-a", now).unwrap();
        let names = SubjectNames::for_service("svc", "ns", &["10.0.0.1".into()]);
        let pair = ca.issue(&names, Duration::from_secs(3600), now).unwrap();
        certified_key(
            pair.cert_pem.as_bytes(),
            pair.key_pem.as_bytes(),
            &provider(),
        )
        .unwrap();

        let ca_der = CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap();
        let info = inspect(&ca_der).unwrap();
        assert_eq!(info.generated_ca_instance(), Some("pod-a"));
        assert_eq!(info.not_after, unix_seconds(now + CA_VALIDITY));

        let leaf_der = CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap();
        let leaf = inspect(&leaf_der).unwrap();
        assert_eq!(leaf.common_name.as_deref(), Some("svc"));
        assert_eq!(leaf.generated_ca_instance(), None, "a leaf is not a CA");
        assert_eq!(leaf.not_after, unix_seconds(now) + 3600);
        assert_eq!(leaf.not_before, unix_seconds(now) - 300);
        assert_eq!(unix_seconds(pair.not_after), leaf.not_after);

        // The leaf verifies against the CA for its names (what the apiserver checks).
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider()),
        )
        .build()
        .unwrap();
        for name in ["svc.ns.svc", "10.0.0.1"] {
            let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(
                    &leaf_der,
                    &[],
                    &server_name,
                    &[],
                    rustls::pki_types::UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_mismatched_or_missing_key_is_refused() {
        let now = SystemTime::now();
        let ca = SelfSignedCa::generate("pod-a", now).unwrap();
        let names = SubjectNames::for_service("svc", "ns", &[]);
        let a = ca.issue(&names, Duration::from_secs(60), now).unwrap();
        let b = ca.issue(&names, Duration::from_secs(60), now).unwrap();
        let err =
            certified_key(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), &provider()).unwrap_err();
        assert!(matches!(err, CertError::Key(_)), "{err}");
        let err = certified_key(b"", b.key_pem.as_bytes(), &provider()).unwrap_err();
        assert_eq!(err.to_string(), "tls.crt holds no PEM CERTIFICATE");
        let err = certified_key(a.cert_pem.as_bytes(), b"", &provider()).unwrap_err();
        assert_eq!(err.to_string(), "tls.key holds no PEM PRIVATE KEY");
    }

    #[test]
    fn serving_certificates_never_outlive_their_ca() {
        let now = SystemTime::now();
        let ca = SelfSignedCa::generate("pod-a", now).unwrap();
        let err = ca
            .issue(&SubjectNames::default(), CA_VALIDITY, now)
            .unwrap_err();
        assert!(matches!(err, CertError::Validity { .. }), "{err}");
        // Issued late in the CA's life, the leaf ends with the CA.
        let late = now + CA_VALIDITY - Duration::from_secs(10);
        let pair = ca
            .issue(&SubjectNames::default(), Duration::from_secs(3600), late)
            .unwrap();
        assert_eq!(
            unix_seconds(pair.not_after),
            unix_seconds(now + CA_VALIDITY)
        );
    }
}
