//! TLS to PostgreSQL with libpq's `sslmode` in the URL
//! (`postgres://user@host/db?sslmode=verify-full&sslrootcert=ca.pem`), in
//! pure Rust (rustls with ring, so the build needs no OpenSSL headers):
//!
//! - `disable`: plain TCP;
//! - `prefer` (libpq's default, and ours): TLS when the server offers it,
//!   certificate not checked, else plain;
//! - `require`: TLS or no connection, certificate not checked;
//! - `verify-ca`: TLS with a certificate signed by `sslrootcert` (default
//!   `~/.postgresql/root.crt`), any host name;
//! - `verify-full`: as `verify-ca`, and issued for the host connected to.

use std::path::PathBuf;
use std::sync::Arc;

use ::postgres::config::SslMode;
use ::postgres::{Client, Config, NoTls};
use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Connects to `url`, honouring its `sslmode` and `sslrootcert` (which
/// the driver's own URL parser does not know, so they are taken out first).
/// Errors in those two settings are the URL's (bad input, exit 2).
pub(super) fn connect(url: &str) -> Result<std::result::Result<Client, ::postgres::Error>> {
    let (rest, mode, rootcert) = split(url).map_err(|e| super::bad_input(url, e))?;
    let mut config: Config = rest.parse().map_err(|e| super::bad_input(url, anyhow::Error::new(e)))?;
    let mode = mode.unwrap_or(Mode::Prefer);
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    if mode == Mode::Disable {
        return Ok(config.connect(NoTls));
    }
    let tls = client_config(mode, rootcert).map_err(|e| super::bad_input(url, e))?;
    Ok(config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
}

/// The URL without `sslmode` and `sslrootcert`, and their values.
fn split(url: &str) -> Result<(String, Option<Mode>, Option<PathBuf>)> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), None, None)) };
    let (mut mode, mut rootcert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("sslmode", value) => {
                mode = Some(match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        bail!("sslmode={other}: expected disable, allow, prefer, require, verify-ca or verify-full")
                    }
                })
            }
            ("sslrootcert", path) => rootcert = Some(PathBuf::from(path)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, mode, rootcert))
}

fn client_config(mode: Mode, rootcert: Option<PathBuf>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
    let chain = match mode {
        Mode::Disable | Mode::Prefer | Mode::Require => None,
        Mode::VerifyCa | Mode::VerifyFull => {
            let path = rootcert
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt")))
                .context("sslmode=verify-ca/verify-full needs sslrootcert=PATH (the CA's PEM file)")?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&path)
                .with_context(|| format!("sslrootcert {}: cannot read", path.display()))?
            {
                roots.add(cert.with_context(|| format!("sslrootcert {}: not a PEM certificate", path.display()))?)?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider)).build()?;
            Some(Chain { webpki, check_name: mode == Mode::VerifyFull })
        }
    };
    let verifier = Arc::new(Verifier { provider, chain });
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

/// Checks the server: the handshake's signatures always; the certificate
/// only with a `chain` (`verify-ca`, `verify-full`), since `prefer` and
/// `require` accept any (libpq's meaning of both).
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Chain>,
}

/// The chain must reach `sslrootcert`; the host name is checked only for
/// `verify-full`.
#[derive(Debug)]
struct Chain {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }))
                if !chain.check_name =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_settings_leave_the_url() {
        let (rest, mode, root) =
            split("postgres://u@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem").expect("valid");
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://u@h:5/db?application_name=x", Some(Mode::VerifyFull), Some(PathBuf::from("/ca.pem")))
        );
        assert_eq!(split("postgres://u@h/db").expect("valid").1, None);
        assert!(split("postgres://u@h/db?sslmode=maybe").is_err());
    }
}
