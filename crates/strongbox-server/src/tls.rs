//! TLS on the listener (rustls, ring provider): TLS 1.3 and 1.2 only with rustls's
//! modern cipher suites, the certificate chain and key from PEM files, optionally a CA
//! whose client certificates are required (mTLS). [`Tls::reload`] reads the files again
//! (the binary calls it on SIGHUP): connections made afterwards use the new
//! certificate, those already open keep theirs, and a file that does not load leaves
//! the old configuration in place.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the TLS material is read from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With it, clients must present a certificate signed by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

/// The listener's TLS state: the files and the configuration loaded from them.
pub struct Tls {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

/// The file paths only: the loaded configuration holds the private key.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Loads the files; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Tls, String> {
        let config = build(&files)?;
        Ok(Tls {
            files,
            config: RwLock::new(config),
        })
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again; on an error the configuration in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = build(&self.files)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }
}

fn build(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let shown = |p: &PathBuf| p.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("tls_cert {}: {e}", shown(&files.cert)))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_cert {}: {e}", shown(&files.cert)))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_cert {}: no certificate in it",
            shown(&files.cert)
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("tls_key {}: {e}", shown(&files.key)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("tls_client_ca {}: {e}", shown(path)))?
            {
                let cert = cert.map_err(|e| format!("tls_client_ca {}: {e}", shown(path)))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_client_ca {}: {e}", shown(path)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("tls_client_ca {}: {e}", shown(path)))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert/tls_key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
