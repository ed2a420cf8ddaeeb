//! TLS for PostgreSQL connections: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`
//! connection parameters, carried out with rustls (the `ring` provider).
//!
//! The driver's own `Config` only knows `sslmode=disable|prefer|require` and none of the
//! certificate parameters, so [`split`] takes them out of the connection string (URL query
//! or `key=value` form) and hands the rest to the driver; [`TlsParams::connector`] then builds
//! the rustls configuration the connection uses. The modes, as libpq has them:
//!
//! | `sslmode` | TLS | server certificate |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it, plain otherwise | not checked; checked against `sslrootcert` (chain only) when that is given |
//! | `require` | always (fails against a server without TLS) | as `prefer` |
//! | `verify-ca` | always | signed by a CA of `sslrootcert` (the system's roots when absent); name not checked |
//! | `verify-full` | always | as `verify-ca`, and valid for the host name (or IP address) connected to |
//!
//! Unlike libpq, nothing is read from `~/.postgresql/`: the files are the ones the parameters
//! name. `sslrootcert=system` names the system's roots explicitly. `sslcert` and `sslkey` (PEM;
//! PKCS#8, PKCS#1 or SEC1 key, not encrypted) go together and are sent when the server asks
//! for a client certificate (`hostssl … cert` in pg_hba.conf). Under `prefer` with a
//! `sslrootcert`, a server whose certificate fails the check is refused (libpq would retry in
//! clear): a configured CA is never silently ignored.
//!
//! The files are read when the store opens; error messages name them, never their content.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::config::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, SignatureScheme};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The ALPN protocol PostgreSQL 17 and later expect from a TLS client.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The connection parameters this module handles (the driver rejects them).
const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it (the default).
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with the certificate chain checked.
    VerifyCa,
    /// TLS with the chain and the host name checked.
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow is not supported: use sslmode=disable, prefer, \
                            require, verify-ca or verify-full"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "invalid sslmode {other:?}: expected disable, prefer, require, verify-ca \
                     or verify-full"
                ))
            }
        })
    }

    /// The parameter's value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// The driver's mode: the `verify-*` modes are `require` with a verifying connector.
    pub(crate) fn ssl_mode(self) -> SslMode {
        match self {
            Self::Disable => SslMode::Disable,
            Self::Prefer => SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => SslMode::Require,
        }
    }
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The operating system's store (`sslrootcert=system`, or none given under `verify-*`).
    System,
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Chain,
    ChainAndName,
}

/// The TLS parameters of one connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    mode: Option<TlsMode>,
    root_cert: Option<Roots>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl TlsParams {
    /// The `sslmode` (`prefer` when none is given).
    pub(crate) fn mode(&self) -> TlsMode {
        self.mode.unwrap_or(TlsMode::Prefer)
    }

    fn check(&self) -> Check {
        match self.mode() {
            TlsMode::Disable => Check::None,
            TlsMode::Prefer | TlsMode::Require if self.root_cert.is_some() => Check::Chain,
            TlsMode::Prefer | TlsMode::Require => Check::None,
            TlsMode::VerifyCa => Check::Chain,
            TlsMode::VerifyFull => Check::ChainAndName,
        }
    }

    fn roots(&self) -> Roots {
        self.root_cert.clone().unwrap_or(Roots::System)
    }

    /// What to append to `postgres://user@host:port/db` in messages: the TLS parameters that
    /// were given (file names, never their content), or nothing.
    pub(crate) fn describe_suffix(&self) -> String {
        let mut out = String::new();
        let mut sep = '?';
        let mut add = |key: &str, value: &str| {
            let _ = write!(out, "{sep}{key}={value}");
            sep = '&';
        };
        if let Some(mode) = self.mode {
            add("sslmode", mode.as_str());
        }
        match &self.root_cert {
            Some(Roots::System) => add("sslrootcert", "system"),
            Some(Roots::File(path)) => add("sslrootcert", &path.display().to_string()),
            None => {}
        }
        if let Some(path) = &self.cert {
            add("sslcert", &path.display().to_string());
        }
        if let Some(path) = &self.key {
            add("sslkey", &path.display().to_string());
        }
        out
    }

    /// The rustls connector for these parameters: reads the CA file (or the system's roots)
    /// and the client certificate and key. The message of an error names the file and what
    /// is wrong with it.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        // The ring provider: builds need no C toolchain beyond cc (aws-lc-rs would need cmake
        // and nasm). rustls marks it deprecated as it lacks post-quantum key exchange, which
        // PostgreSQL servers do not offer today anyway.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?;
        let algorithms = provider.signature_verification_algorithms;
        let builder = match (self.mode(), self.check()) {
            // (Under `disable` the driver makes no TLS connection: the verifier is never used.)
            (TlsMode::Disable, _) | (_, Check::None) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NameUnchecked {
                    roots: None,
                    algorithms,
                })),
            (_, Check::Chain) => {
                let roots = Arc::new(load_roots(&self.roots())?);
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NameUnchecked {
                        roots: Some(roots),
                        algorithms,
                    }))
            }
            (_, Check::ChainAndName) => {
                let roots = load_roots(&self.roots())?;
                builder.with_root_certificates(roots)
            }
        };
        let mut config = match (&self.cert, &self.key, self.mode()) {
            (_, _, TlsMode::Disable) | (None, None, _) => builder.with_no_client_auth(),
            (Some(cert), Some(key), _) => {
                let chain = load_client_cert(cert)?;
                let der = load_key(key)?;
                builder
                    .with_client_auth_cert(chain, der)
                    .map_err(|e| key_error(cert, key, &e))?
            }
            (Some(_), None, _) => {
                return Err("sslcert is given without sslkey: give both (the client \
                            certificate and its private key) or neither"
                    .into())
            }
            (None, Some(_), _) => {
                return Err("sslkey is given without sslcert: give both (the client \
                            certificate and its private key) or neither"
                    .into())
            }
        };
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(MakeRustlsConnect::new(config))
    }

    /// A sentence saying why a connection failed, when it failed in TLS (`None` otherwise).
    pub(crate) fn explain(&self, e: &postgres::Error) -> Option<String> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(tls) = s.downcast_ref::<rustls::Error>() {
                return Some(self.explain_rustls(tls));
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return Some(self.explain_rustls(tls));
                }
            }
            if s.to_string().contains("server does not support TLS") {
                return Some(format!(
                    "the server does not accept TLS connections, and sslmode={} requires TLS \
                     (turn ssl on in the server's postgresql.conf, or connect with \
                     sslmode=prefer or disable)",
                    self.mode().as_str()
                ));
            }
            source = s.source();
        }
        None
    }

    fn roots_description(&self) -> String {
        match self.roots() {
            Roots::System => "the system's root certificates (set sslrootcert=FILE to name the \
                              database's CA)"
                .into(),
            Roots::File(path) => format!("sslrootcert {}", path.display()),
        }
    }

    fn explain_rustls(&self, e: &rustls::Error) -> String {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => format!(
                    "the server's certificate is not trusted: no CA of {} signed it",
                    self.roots_description()
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "the server's certificate does not match the host name connected to \
                     (sslmode=verify-full checks it: connect by a name or address the \
                     certificate holds, or use sslmode=verify-ca)"
                        .to_string()
                }
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate has expired or is not valid yet".to_string()
                }
                _ => "the server's certificate was refused".to_string(),
            },
            rustls::Error::AlertReceived(alert) => {
                let hint = match alert {
                    AlertDescription::CertificateRequired => {
                        " (the server requires a client certificate: set sslcert and sslkey)"
                    }
                    AlertDescription::UnknownCA
                    | AlertDescription::BadCertificate
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::AccessDenied
                    | AlertDescription::DecryptError => {
                        " (the server does not accept the client certificate: check sslcert \
                         and sslkey against the server's ssl_ca_file)"
                    }
                    _ => "",
                };
                format!("the server ended the TLS handshake{hint}")
            }
            _ => "the TLS handshake with the server failed".to_string(),
        }
    }
}

/// Takes the TLS parameters out of `conninfo` (a `postgres://` URL or libpq's `key=value`
/// form): the connection string for the driver without them, and the parameters. A bad value
/// gives a message saying which.
pub(crate) fn split(conninfo: &str) -> Result<(String, TlsParams), String> {
    let (rest, pairs) = if let Some(query_at) = url_query_start(conninfo) {
        split_url(conninfo, query_at)?
    } else if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        (conninfo.to_string(), Vec::new())
    } else {
        split_key_value(conninfo)
    };
    let mut params = TlsParams::default();
    for (key, value) in pairs {
        match key.as_str() {
            "sslmode" => params.mode = Some(TlsMode::parse(&value)?),
            "sslrootcert" => {
                params.root_cert = Some(match value.as_str() {
                    "" => {
                        return Err("sslrootcert is empty: name a PEM file of CA certificates, \
                                      or `system`"
                            .into())
                    }
                    "system" => Roots::System,
                    path => Roots::File(PathBuf::from(path)),
                })
            }
            "sslcert" | "sslkey" => {
                if value.is_empty() {
                    return Err(format!("{key} is empty: name a PEM file"));
                }
                let path = Some(PathBuf::from(value));
                if key == "sslcert" {
                    params.cert = path;
                } else {
                    params.key = path;
                }
            }
            _ => {} // only TLS keys are collected
        }
    }
    Ok((rest, params))
}

/// Where the query of a `postgres://` URL starts (its `?`), found as the driver does: after
/// the credentials (up to the first `@`).
fn url_query_start(conninfo: &str) -> Option<usize> {
    let prefix = ["postgres://", "postgresql://"]
        .iter()
        .find(|p| conninfo.starts_with(*p))?;
    let after_prefix = prefix.len();
    let after_creds = conninfo[after_prefix..]
        .find('@')
        .map_or(after_prefix, |i| after_prefix + i + 1);
    conninfo[after_creds..].find('?').map(|i| after_creds + i)
}

type Pairs = Vec<(String, String)>;

fn split_url(url: &str, query_at: usize) -> Result<(String, Pairs), String> {
    let mut kept: Vec<&str> = Vec::new();
    let mut pairs = Vec::new();
    for item in url[query_at + 1..].split('&') {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let key = percent_decode(key).unwrap_or_else(|| key.to_string());
        if TLS_KEYS.contains(&key.as_str()) {
            let value = percent_decode(value)
                .ok_or_else(|| format!("{key}: invalid percent-encoding in the URL"))?;
            pairs.push((key, value));
        } else {
            kept.push(item);
        }
    }
    let mut rest = url[..query_at].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, pairs))
}

/// Splits libpq's `key=value` form, keeping the text of the other parameters as it is. A
/// string that does not tokenize is left whole for the driver to report.
fn split_key_value(conninfo: &str) -> (String, Pairs) {
    let Some(tokens) = key_value_tokens(conninfo) else {
        return (conninfo.to_string(), Vec::new());
    };
    let mut rest = String::new();
    let mut pairs = Vec::new();
    for (key, value, span) in tokens {
        if TLS_KEYS.contains(&key.as_str()) {
            pairs.push((key, value));
        } else {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&conninfo[span]);
        }
    }
    (rest, pairs)
}

/// The `key = value` pairs of libpq's form with the byte range each takes (values unquoted
/// and unescaped), or `None` when the string is malformed.
fn key_value_tokens(s: &str) -> Option<Vec<(String, String, std::ops::Range<usize>)>> {
    let bytes: Vec<(usize, char)> = s.char_indices().collect();
    let end_of = |i: usize| bytes.get(i).map_or(s.len(), |&(at, _)| at);
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while bytes.get(i).is_some_and(|&(_, c)| c.is_whitespace()) {
            i += 1;
        }
        if i >= bytes.len() {
            return Some(out);
        }
        let start = i;
        while bytes
            .get(i)
            .is_some_and(|&(_, c)| !c.is_whitespace() && c != '=')
        {
            i += 1;
        }
        let key: String = bytes[start..i].iter().map(|&(_, c)| c).collect();
        while bytes.get(i).is_some_and(|&(_, c)| c.is_whitespace()) {
            i += 1;
        }
        if bytes.get(i).map(|&(_, c)| c) != Some('=') || key.is_empty() {
            return None;
        }
        i += 1;
        while bytes.get(i).is_some_and(|&(_, c)| c.is_whitespace()) {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i).map(|&(_, c)| c) == Some('\'') {
            i += 1;
            loop {
                match bytes.get(i).map(|&(_, c)| c) {
                    None => return None,
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(&(_, c)) = bytes.get(i + 1) {
                            value.push(c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&(_, c)) = bytes.get(i) {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    if let Some(&(_, c2)) = bytes.get(i + 1) {
                        value.push(c2);
                    }
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        let end = end_of(i.min(bytes.len()));
        out.push((key, value, end_of(start)..end));
    }
}

/// `%XX`-decodes `s` (UTF-8); `None` when a sequence or the result is invalid.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The trusted CA certificates.
fn load_roots(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no system root certificates were found{why}: set sslrootcert to the PEM \
                     file of the database server's CA"
                ));
            }
        }
        Roots::File(path) => {
            let certs = read_certs(path, "sslrootcert")?;
            for (n, cert) in certs.into_iter().enumerate() {
                store.add(cert).map_err(|e| {
                    format!(
                        "sslrootcert {}: certificate {} is not a usable CA certificate: {e}",
                        path.display(),
                        n + 1
                    )
                })?;
            }
        }
    }
    Ok(store)
}

fn load_client_cert(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    read_certs(path, "sslcert")
}

/// Every PEM certificate in `path` (at least one).
fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        certs.push(cert.map_err(|_| {
            format!(
                "{key} {}: not a valid PEM certificate file (a damaged BEGIN/END \
                 CERTIFICATE block)",
                path.display()
            )
        })?);
    }
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in `path`. Messages never quote the file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read sslkey {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "sslkey {}: the private key is encrypted, which is not supported: store it \
             unencrypted (openssl pkey -in KEY -out KEY.plain) and protect the file instead",
            path.display()
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let what = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key in the file",
            _ => "not a valid PEM private key file",
        };
        format!(
            "sslkey {}: {what} (expected an unencrypted PKCS#8, PKCS#1 or SEC1 key in PEM)",
            path.display()
        )
    })
}

fn key_error(cert: &Path, key: &Path, e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "sslkey {} is not the private key of the certificate in sslcert {}",
            key.display(),
            cert.display()
        ),
        other => format!(
            "sslkey {} cannot be used with sslcert {}: {other}",
            key.display(),
            cert.display()
        ),
    }
}

/// A server certificate check that does not compare the name (`verify-full` uses rustls' own
/// verifier). The handshake's signatures are always checked.
#[derive(Debug)]
struct NameUnchecked {
    /// `verify-ca`: the chain must lead to one of these roots. `None`: `prefer` and `require`
    /// without a CA (libpq's behaviour): the connection is encrypted, but the server is not
    /// authenticated.
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NameUnchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, TlsParams) {
        split(s).unwrap()
    }

    #[test]
    fn url_parameters_are_taken_out() {
        let (rest, t) = p("postgres://u:p@db:5432/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3&sslcert=/c.pem&sslkey=/k.pem");
        assert_eq!(rest, "postgres://u:p@db:5432/d?connect_timeout=3");
        assert_eq!(t.mode(), TlsMode::VerifyFull);
        assert_eq!(t.root_cert, Some(Roots::File("/etc/ca.pem".into())));
        assert_eq!(t.cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(t.key, Some(PathBuf::from("/k.pem")));
        assert_eq!(t.check(), Check::ChainAndName);
        assert_eq!(
            t.describe_suffix(),
            "?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem"
        );

        let (rest, t) = p("postgresql://db/d?sslmode=require");
        assert_eq!(rest, "postgresql://db/d");
        assert_eq!(t.mode(), TlsMode::Require);
        assert_eq!(t.check(), Check::None);

        // A `?` or `@` in the password does not confuse the split.
        let (rest, t) = p("postgres://u:p?w@db/d?sslmode=disable");
        assert_eq!(rest, "postgres://u:p?w@db/d");
        assert_eq!(t.mode(), TlsMode::Disable);

        let (rest, t) = p("postgres://u:p@db/d");
        assert_eq!(rest, "postgres://u:p@db/d");
        assert_eq!(t, TlsParams::default());
        assert_eq!(t.mode(), TlsMode::Prefer);
        assert_eq!(t.describe_suffix(), "");
    }

    #[test]
    fn modes_and_checks() {
        for (mode, check) in [
            ("disable", Check::None),
            ("prefer", Check::None),
            ("require", Check::None),
            ("verify-ca", Check::Chain),
            ("verify-full", Check::ChainAndName),
        ] {
            let (_, t) = p(&format!("postgres://db/d?sslmode={mode}"));
            assert_eq!(t.mode().as_str(), mode);
            assert_eq!(t.check(), check, "{mode}");
        }
        // A CA given with prefer/require is used (libpq: like verify-ca).
        let (_, t) = p("postgres://db/d?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!(t.check(), Check::Chain);
        let (_, t) = p("postgres://db/d?sslrootcert=/ca.pem");
        assert_eq!(t.check(), Check::Chain);
        let (_, t) = p("postgres://db/d?sslmode=verify-ca&sslrootcert=system");
        assert_eq!(t.roots(), Roots::System);
        assert_eq!(TlsMode::VerifyCa.ssl_mode(), SslMode::Require);
        assert_eq!(TlsMode::Prefer.ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn bad_values_are_refused() {
        for (url, want) in [
            (
                "postgres://db/d?sslmode=verify",
                "invalid sslmode \"verify\"",
            ),
            (
                "postgres://db/d?sslmode=allow",
                "sslmode=allow is not supported",
            ),
            ("postgres://db/d?sslrootcert=", "sslrootcert is empty"),
            ("postgres://db/d?sslkey=", "sslkey is empty"),
            ("postgres://db/d?sslcert=%ZZ", "invalid percent-encoding"),
        ] {
            let e = split(url).unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn described_without_password_with_tls_parameters() {
        use crate::pg::describe_url;
        assert_eq!(
            describe_url(
                "postgres://u:s3cret@db:5433/d?sslmode=verify-full&sslrootcert=/etc/rkms/ca.pem\
                 &connect_timeout=3&sslcert=/etc/rkms/c.pem&sslkey=/etc/rkms/c.key"
            ),
            "postgres://u@db:5433/d?sslmode=verify-full&sslrootcert=/etc/rkms/ca.pem\
             &sslcert=/etc/rkms/c.pem&sslkey=/etc/rkms/c.key"
        );
        assert_eq!(
            describe_url("postgres://u:s3cret@db/d?sslmode=bogus"),
            "postgres://u:***@db/d?sslmode=bogus"
        );
        assert_eq!(
            crate::describe_spec("postgresql://u:s3cret@db/d?sslmode=require"),
            "postgres://u@db:5432/d?sslmode=require"
        );
    }

    #[test]
    fn key_value_form() {
        let (rest, t) = p(
            "host=db user=u password='a b\\'c' sslmode = verify-ca sslrootcert='/etc/my ca.pem' dbname=d",
        );
        assert_eq!(rest, "host=db user=u password='a b\\'c' dbname=d");
        assert_eq!(t.mode(), TlsMode::VerifyCa);
        assert_eq!(t.root_cert, Some(Roots::File("/etc/my ca.pem".into())));
        // Malformed: left whole for the driver to report.
        let (rest, t) = p("host=db password='unterminated");
        assert_eq!(rest, "host=db password='unterminated");
        assert_eq!(t, TlsParams::default());
    }

    #[test]
    fn file_errors_name_the_file_and_never_its_content() {
        let dir = std::env::temp_dir().join(format!("rkms-pg-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "SECRET-KEY-MATERIAL\n").unwrap();
        let encrypted = dir.join("enc.pem");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nU0VDUkVU\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let url = |extra: &str| format!("postgres://db/d?sslmode=verify-full&{extra}");
        let cases = [
            (
                url("sslrootcert=/nonexistent/ca.pem"),
                "cannot read sslrootcert /nonexistent/ca.pem",
            ),
            (
                url(&format!("sslrootcert={}", junk.display())),
                "no PEM certificate",
            ),
            (
                format!("postgres://db/d?sslmode=require&sslcert={}", junk.display()),
                "sslcert is given without sslkey",
            ),
            (
                format!(
                    "postgres://db/d?sslmode=require&sslcert=/nonexistent/c.pem&sslkey={}",
                    junk.display()
                ),
                "cannot read sslcert /nonexistent/c.pem",
            ),
        ];
        for (u, want) in cases {
            let (_, t) = split(&u).unwrap();
            let e = t.connector().err().unwrap();
            assert!(e.contains(want), "{u}: {e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
        let e = load_key(&junk).unwrap_err();
        assert!(e.contains("no private key") && !e.contains("SECRET"), "{e}");
        let e = load_key(&encrypted).unwrap_err();
        assert!(e.contains("encrypted") && !e.contains("U0VDUkVU"), "{e}");
        // disable reads no file.
        let (_, t) = split("postgres://db/d?sslmode=disable&sslrootcert=/nonexistent").unwrap();
        assert!(t.connector().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
