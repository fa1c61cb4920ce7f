//! Keeping the served certificate fresh, in either mode:
//!
//! * self-signed: re-issue the serving certificate from the in-memory CA `rotate_before` its
//!   expiry, and keep the CA in the webhook configurations' `caBundle` (re-checked every
//!   `resync_interval`, so a configuration re-applied by Helm or kubectl is repaired). The CA
//!   does not change while the process runs, so rotation never touches the `caBundle` and no
//!   apiserver can see a certificate it does not trust yet.
//! * provided: re-read `tls.crt`/`tls.key` every `reload_interval` and serve them when they
//!   changed and form a valid pair (a half-written update keeps the previous certificate).
//!
//! Both report to [`Readiness`]: a replica is ready for webhook traffic once it serves a
//! certificate the apiserver trusts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::{info, warn};

use crate::ops::Readiness;

use super::ca_bundle::{CaBundlePublisher, Published};
use super::certs::{
    PemPair, SelfSignedCa, SubjectNames, certified_key, inspect, load_pem_pair, unix_seconds,
};
use super::tls::{ServingCert, provider};

/// Pause before retrying a failed step (issuing, publishing).
const RETRY: Duration = Duration::from_secs(2);

/// Serves `pair` from the next handshake on.
pub(super) fn serve(cert: &ServingCert, pair: &PemPair) -> Result<(), super::certs::CertError> {
    let key = certified_key(
        pair.cert_pem.as_bytes(),
        pair.key_pem.as_bytes(),
        &provider(),
    )?;
    cert.set(key, Some(pair.not_after));
    Ok(())
}

/// The self-signed mode's state.
pub(super) struct SelfSigned {
    pub ca: Arc<SelfSignedCa>,
    pub names: SubjectNames,
    pub validity: Duration,
    pub rotate_before: Duration,
    pub instance: String,
    pub publisher: Option<CaBundlePublisher>,
    pub resync_interval: Duration,
}

impl SelfSigned {
    /// Rotates and publishes until `shutdown` completes. The first certificate must already be
    /// served (see [`serve`]). The two run side by side so that a slow or unreachable apiserver
    /// never delays a rotation.
    pub async fn run(
        self,
        cert: Arc<ServingCert>,
        readiness: Readiness,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let shutdown = shutdown.shared();
        futures::join!(
            self.rotate(&cert, shutdown.clone()),
            self.publish(&readiness, shutdown)
        );
    }

    /// Re-issues the serving certificate `rotate_before` its expiry, until `shutdown`.
    async fn rotate(&self, cert: &ServingCert, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut rotate_at = self.rotation_time(cert.not_after());
        loop {
            let now = SystemTime::now();
            if now >= rotate_at {
                rotate_at = match self
                    .ca
                    .issue(&self.names, self.validity, now)
                    .and_then(|pair| serve(cert, &pair).map(|()| pair))
                {
                    Ok(pair) => {
                        info!(
                            not_after = unix_seconds(pair.not_after),
                            "rotated the webhook serving certificate"
                        );
                        self.rotation_time(Some(pair.not_after))
                    }
                    Err(err) => {
                        warn!(error = %err, "cannot rotate the webhook serving certificate; retrying");
                        now + RETRY
                    }
                };
            }
            let wait = rotate_at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Keeps the CA in the webhook configurations, every `resync_interval`, until `shutdown`;
    /// reports ready once it is there. Without a publisher the caller distributes the CA.
    async fn publish(
        &self,
        readiness: &Readiness,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let Some(publisher) = &self.publisher else {
            readiness.set_webhook_ready(true);
            return;
        };
        tokio::pin!(shutdown);
        let mut trusted = false;
        let mut reported_missing = false;
        loop {
            let attempt = publisher.publish(
                self.ca.pem(),
                &self.instance,
                unix_seconds(SystemTime::now()),
            );
            let result = tokio::select! {
                result = attempt => result,
                () = &mut shutdown => return,
            };
            let wait = match result {
                Ok(published) => {
                    if published == Published::NoConfiguration && !reported_missing {
                        warn!(
                            "the validating webhook configuration does not exist yet; nothing calls this webhook until it does"
                        );
                    }
                    reported_missing = published == Published::NoConfiguration;
                    if !trusted {
                        trusted = true;
                        readiness.set_webhook_ready(true);
                    }
                    self.resync_interval
                }
                Err(err) => {
                    // Once trusted, a failed re-check does not make the replica unready: the
                    // bundle most likely still holds the CA.
                    warn!(error = %err, "cannot publish the webhook CA; retrying");
                    RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// When a certificate ending at `not_after` is due for replacement.
    fn rotation_time(&self, not_after: Option<SystemTime>) -> SystemTime {
        let now = SystemTime::now();
        not_after
            .and_then(|end| end.checked_sub(self.rotate_before))
            .unwrap_or(now)
    }
}

/// The provided mode's state.
pub(super) struct Provided {
    pub dir: PathBuf,
    pub reload_interval: Duration,
}

impl Provided {
    /// Loads the files now; returns whether a certificate is served.
    pub fn load(
        &self,
        cert: &ServingCert,
        last: &mut Option<(Vec<u8>, Vec<u8>)>,
        last_error: &mut Option<String>,
    ) -> bool {
        let result = load_pem_pair(&self.dir).and_then(|(crt, key)| {
            if last.as_ref() == Some(&(crt.clone(), key.clone())) {
                return Ok(None);
            }
            let certified = certified_key(&crt, &key, &provider())?;
            Ok(Some((crt, key, certified)))
        });
        match result {
            Ok(None) => {}
            Ok(Some((crt, key, certified))) => {
                let not_after = CertificateDer::pem_slice_iter(&crt)
                    .next()
                    .and_then(Result::ok)
                    .and_then(|der| inspect(&der))
                    .map(|info| {
                        SystemTime::UNIX_EPOCH
                            + Duration::from_secs(u64::try_from(info.not_after).unwrap_or(0))
                    });
                cert.set(certified, not_after);
                info!(dir = %self.dir.display(), not_after = not_after.map(unix_seconds), "loaded the webhook certificate");
                *last = Some((crt, key));
                *last_error = None;
            }
            Err(err) => {
                let message = err.to_string();
                // Say it once per distinct problem, not every poll.
                if last_error.as_deref() != Some(message.as_str()) {
                    if last.is_some() {
                        warn!(error = %message, "cannot reload the webhook certificate; still serving the previous one");
                    } else {
                        warn!(error = %message, "cannot load the webhook certificate; not ready until it can");
                    }
                    *last_error = Some(message);
                }
            }
        }
        cert.is_loaded()
    }

    /// Reloads until `shutdown` completes.
    pub async fn run(
        self,
        cert: Arc<ServingCert>,
        readiness: Readiness,
        mut last: Option<(Vec<u8>, Vec<u8>)>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut last_error = None;
        loop {
            readiness.set_webhook_ready(self.load(&cert, &mut last, &mut last_error));
            tokio::select! {
                () = tokio::time::sleep(self.reload_interval) => {}
                () = &mut shutdown => return,
            }
        }
    }
}
