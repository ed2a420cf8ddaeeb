//! A throw-away PostgreSQL server for the TLS tests, and the certificates it uses.
//!
//! [`Certs::new`] makes, with rcgen, a CA, a server certificate for `localhost` and
//! `127.0.0.1`, a client certificate for the role `rkms_cert`, and a second CA (with a client
//! certificate of its own) that nothing trusts. [`PgServer::start`] runs `initdb` and `pg_ctl`
//! from the newest `/usr/lib/postgresql/*/bin` (as the `postgres` user when the tests run as
//! root, since PostgreSQL refuses root) in a temporary directory, on a free port of 127.0.0.1,
//! with `ssl = on` or off. Its pg_hba.conf:
//!
//! ```text
//! local   all  postgres                trust
//! hostssl all  rkms_cert  127.0.0.1/32 cert
//! host    all  all        127.0.0.1/32 scram-sha-256
//! ```
//!
//! Roles: `rkms_test` (password, owns database `rkms_test`) and `rkms_cert` (client
//! certificate only, owns database `rkms_cert`). The server is stopped and its directory
//! removed on drop. Used by crates/rkms-store/tests/postgres_tls.rs and
//! crates/rkms/tests/two_hosts_tls.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The newest PostgreSQL server binaries (`initdb`, `pg_ctl`, `psql`): Debian's
/// `/usr/lib/postgresql/N/bin`, else the `PATH`. `None` when they are not installed.
pub fn find_bindir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    dirs.sort();
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some((_, d)) = dirs.into_iter().rev().find(|(_, d)| usable(d)) {
        return Some(d);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| usable(d) && d.join("psql").is_file())
}

/// A fresh temporary directory (removed by its owner).
fn temp_dir(label: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let path = std::env::temp_dir().join(format!(
        "rkms-pg-tls-{label}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The test certificates, as PEM files in a temporary directory.
pub struct Certs {
    pub dir: PathBuf,
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server presents.
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Client certificate (CN `rkms_cert`) signed by `ca`, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Client certificate (CN `rkms_cert`) signed by `other_ca`, and its key.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (Issuer::new(params, key), cert.pem())
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Certs {
    pub fn new() -> Self {
        let dir = temp_dir("certs");
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let (ca_issuer, ca_pem) = ca("rkms test CA");
        let (other_issuer, other_pem) = ca("rkms untrusted CA");
        let (server_cert, server_key) = leaf(
            &ca_issuer,
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &ca_issuer,
            "rkms_cert",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (stranger_cert, stranger_key) = leaf(
            &other_issuer,
            "rkms_cert",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            stranger_cert: write("stranger.pem", &stranger_cert),
            stranger_key: write("stranger.key", &stranger_key),
            dir,
        }
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running throw-away PostgreSQL server.
pub struct PgServer {
    pub port: u16,
    /// The password of role `rkms_test`.
    pub password: String,
    dir: PathBuf,
    bindir: PathBuf,
    as_postgres: bool,
}

impl PgServer {
    /// Creates and starts a cluster; with `tls`, `ssl = on` with the server certificate of
    /// `tls` and its CA as the CA of client certificates.
    pub fn start(bindir: &Path, tls: Option<&Certs>) -> Result<Self, String> {
        let as_postgres = is_root();
        let dir = temp_dir(if tls.is_some() { "tls" } else { "plain" });
        let mut server = Self {
            port: 0,
            password: format!("pw-{:x}", rand_u64()),
            dir,
            bindir: bindir.to_path_buf(),
            as_postgres,
        };
        std::fs::create_dir_all(server.sock()).map_err(|e| e.to_string())?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&server.dir))?;
        }
        let data = server.data();
        run(server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync"))?;
        let hba = "local   all  postgres                trust\n\
                   hostssl all  rkms_cert  127.0.0.1/32 cert\n\
                   host    all  all        127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| e.to_string())?;
        let mut options = String::from(
            "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=100",
        );
        if let Some(certs) = tls {
            for (from, to) in [
                (&certs.server_cert, "server.crt"),
                (&certs.server_key, "server.key"),
                (&certs.ca, "ca.crt"),
            ] {
                std::fs::copy(from, data.join(to)).map_err(|e| e.to_string())?;
            }
            if as_postgres {
                run(Command::new("chown").args(["-R", "postgres:"]).arg(&data))?;
            }
            run(Command::new("chmod")
                .arg("600")
                .arg(data.join("server.key")))?;
            options.push_str(
                " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key \
                 -c ssl_ca_file=ca.crt",
            );
        } else {
            options.push_str(" -c ssl=off");
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            let opts = format!("{options} -p {port} -k {}", server.sock().display());
            let started = run(server
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"]));
            match started {
                Ok(_) => {
                    server.port = port;
                    break;
                }
                Err(e) => last = e,
            }
        }
        if server.port == 0 {
            let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "the PostgreSQL server did not start: {last}\n{log}"
            ));
        }
        server.psql(&format!(
            "CREATE ROLE rkms_test LOGIN PASSWORD '{}'; CREATE ROLE rkms_cert LOGIN;",
            server.password
        ))?;
        server.psql("CREATE DATABASE rkms_test OWNER rkms_test")?;
        server.psql("CREATE DATABASE rkms_cert OWNER rkms_cert")?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Runs `sql` as the superuser in database `postgres` over the Unix socket; its output,
    /// unaligned.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in("postgres", sql)
    }

    /// Runs `sql` as the superuser in database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> Result<String, String> {
        run(self
            .command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.sock())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-c", sql]))
    }

    /// Creates schema `name` in database `rkms_test`, owned by `rkms_test`.
    pub fn schema(&self, name: &str) {
        self.psql_in(
            "rkms_test",
            &format!("CREATE SCHEMA IF NOT EXISTS {name} AUTHORIZATION rkms_test"),
        )
        .unwrap();
    }

    /// `postgres://rkms_test:PASSWORD@HOST:PORT/rkms_test` followed by `query` (`?…` or empty).
    pub fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://rkms_test:{}@{host}:{}/rkms_test{query}",
            self.password, self.port
        )
    }

    /// `postgres://rkms_cert@HOST:PORT/rkms_cert` followed by `query`: no password, the
    /// client certificate authenticates.
    pub fn cert_url(&self, host: &str, query: &str) -> String {
        format!("postgres://rkms_cert@{host}:{}/rkms_cert{query}", self.port)
    }

    /// Whether each connection with `application_name` uses TLS (as the server sees it).
    pub fn tls_in_use(&self, application_name: &str) -> Vec<bool> {
        let out = self
            .psql(&format!(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = '{application_name}'"
            ))
            .unwrap();
        out.lines().map(|l| l.trim() == "t").collect()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `c`; its stdout, or an error with its stderr.
fn run(c: &mut Command) -> Result<String, String> {
    let out = c
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", c.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{:?} failed ({}): {}",
            c.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}
