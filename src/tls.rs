//! TLS for the listener (`server.tls_cert`, `server.tls_key`): rustls with the ring provider,
//! and a certificate that can be swapped while the server runs.
//!
//! The server config's certificate resolver hands every new handshake the [`CertifiedKey`]
//! currently in its slot; [`Tls::reload`] reads both files again and swaps the slot. Connections
//! already open keep the keys they agreed on, so a reload drops none of them. A pair that does
//! not load (unreadable, not PEM, or a key that is not the certificate's) leaves the slot as it
//! was. Invariant: the slot always holds a pair that loaded and matched.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate pair could not be used; each names the config key and file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("server.tls_key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// What a pair of files looked like when last loaded: a change to either (a new file renamed
/// in, a symlink pointed elsewhere, an edit) means they are read again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(SystemTime, u64, u64)>>);

impl Stamp {
    fn of(paths: &[&Path]) -> Stamp {
        Stamp(
            paths
                .iter()
                .map(|p| {
                    let meta = std::fs::metadata(p).ok()?;
                    Some((meta.modified().ok()?, meta.len(), inode(&meta)))
                })
                .collect(),
        )
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}

/// The slot every handshake reads its certificate from.
#[derive(Debug)]
struct Slot(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Slot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The listener's certificate, its files, and what they looked like when last loaded.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    slot: Arc<Slot>,
    stamp: Mutex<Stamp>,
}

/// What [`Tls::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The files had not changed (and the reload was not forced).
    Unchanged,
    /// A new pair is in use; `summary` says which certificate.
    Swapped { summary: String },
}

impl Tls {
    /// Loads the pair; an error names the key and the file.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = Stamp::of(&[cert, key]);
        let certified = load_pair(cert, key, &provider)?;
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            slot: Arc::new(Slot(RwLock::new(Arc::new(certified)))),
            stamp: Mutex::new(stamp),
        })
    }

    /// A rustls server config that reads the certificate from the slot at every handshake
    /// (actix-web adds the ALPN protocol, `http/1.1`).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.slot.clone());
        Ok(config)
    }

    /// Reads both files again when they changed since the last load (or always, when `force`:
    /// SIGHUP), and swaps the new pair in if it loads. On an error the old pair stays.
    pub fn reload(&self, force: bool) -> Result<Reloaded, TlsError> {
        let now = Stamp::of(&[&self.cert, &self.key]);
        let mut stamp = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
        if !force && *stamp == now {
            return Ok(Reloaded::Unchanged);
        }
        // Remembered even when the pair fails: a half-written renewal is retried when the files
        // change again, not every second with the same warning.
        *stamp = now;
        let certified = load_pair(&self.cert, &self.key, &self.provider)?;
        let summary = describe(&certified);
        *self.slot.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(Reloaded::Swapped { summary })
    }

    /// The certificate new handshakes get, in words (subject and expiry).
    pub fn current(&self) -> String {
        describe(&self.slot.0.read().unwrap_or_else(PoisonError::into_inner))
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert.to_owned(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        path: key.to_owned(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(format!("cannot read it as PEM: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_err("holds no CERTIFICATE block".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        key_err(format!(
            "not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        key_err(format!(
            "does not go with server.tls_cert {}: {e}",
            cert.display()
        ))
    })
}

/// `CN=localhost, until Jan  1 00:00:00 2027 GMT` from the leaf certificate.
fn describe(certified: &CertifiedKey) -> String {
    let Some(leaf) = certified.cert.first() else {
        return "no certificate".into();
    };
    match openssl::x509::X509::from_der(leaf) {
        Ok(x509) => {
            let subject: Vec<String> = x509
                .subject_name()
                .entries()
                .filter_map(|e| {
                    let key = e.object().nid().short_name().ok()?;
                    let value = e.data().to_string().ok()?;
                    Some(format!("{key}={value}"))
                })
                .collect();
            format!("{}, until {}", subject.join(", "), x509.not_after())
        }
        Err(_) => "a certificate openssl cannot read".into(),
    }
}

/// How often the files are checked for a change.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// SIGHUP as a stream, registered now (not when a task first runs), so a signal sent as soon
/// as the server says it listens is caught rather than ending the process.
pub struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangups {
    /// Must be called inside the runtime.
    pub fn register() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Hangups(
                signal(SignalKind::hangup())
                    .map_err(|e| tracing::warn!(error = %e, "no SIGHUP handler"))
                    .ok(),
            )
        }
        #[cfg(not(unix))]
        Hangups()
    }

    /// The next SIGHUP; never, without a handler.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.0 {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
}

/// Reloads the certificate when its files change (checked every [`CHECK_EVERY`]) and on SIGHUP,
/// until the server begins to shut down.
pub async fn watch(
    tls: Arc<Tls>,
    mut hangups: Hangups,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let trigger = tokio::select! {
            _ = every.tick() => "file change",
            () = hangups.next() => "SIGHUP",
            changed = shutdown.changed() => match changed {
                Ok(()) if !*shutdown.borrow() => continue,
                _ => return,
            },
        };
        match tls.reload(trigger == "SIGHUP") {
            Ok(Reloaded::Unchanged) => {}
            Ok(Reloaded::Swapped { summary }) => {
                tracing::info!(trigger, certificate = %summary, "tls certificate reloaded");
            }
            Err(e) => tracing::warn!(
                trigger,
                error = %e,
                "tls certificate not reloaded; the previous one stays in use"
            ),
        }
    }
}
