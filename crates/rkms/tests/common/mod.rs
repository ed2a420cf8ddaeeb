//! Test helpers: start `rkms serve` as a child process on a free loopback port, talk raw TCP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `rkms serve` child, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

pub fn rkms_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rkms")
}

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

impl Server {
    /// Starts `rkms serve --listen 127.0.0.1:0 <args>` and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Self::start_on("127.0.0.1:0", args)
    }

    pub fn start_on(listen: &str, args: &[&str]) -> Server {
        Self::start_full(listen, args, &[])
    }

    /// Starts with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_full("127.0.0.1:0", args, env)
    }

    fn start_full(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        // Tests keep client records in memory unless they name a database.
        let db: &[&str] = if args.contains(&"--db") {
            &[]
        } else {
            &["--db", "none"]
        };
        // No dashboard unless the test asks for one (many servers run at once).
        let web: &[&str] = if args.contains(&"--web") {
            &[]
        } else {
            &["--web", "off"]
        };
        let mut command = Command::new(rkms_bin());
        command
            .args(["serve", "--listen", listen])
            .args(db)
            .args(web)
            .args(args)
            // py-kms' container variables would change the server's settings.
            .env_remove("IP")
            .env_remove("PORT")
            .env_remove("EPID")
            .env_remove("LCID")
            .env_remove("CLIENT_COUNT")
            .env_remove("HWID")
            .env_remove("LOGLEVEL")
            .env_remove("RKMS_CONFIG")
            .envs(env.iter().copied());
        Self::spawn(&mut command)
    }

    /// Starts `command` (an rkms subcommand that logs `listening address=…`) and waits until
    /// it listens.
    pub fn spawn(command: &mut Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rkms");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening address=").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                } else if line.contains("\"message\":\"listening\"") {
                    // JSON log lines.
                    if let Some(a) = line
                        .split("\"address\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                    {
                        let _ = tx.send(a.to_string());
                    }
                }
                log2.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server did not start listening");
        Server {
            child,
            addr: addr.parse().unwrap(),
            log,
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self.log().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no log line containing {needle:?}; log: {:#?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw TCP connection with a read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads one PDU, or None if the server closed the connection.
pub fn read_pdu(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = vec![0u8; 16];
    match s.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("read failed: {e}"),
    }
    let len = u16::from_le_bytes([h[8], h[9]]) as usize;
    h.resize(len, 0);
    s.read_exact(&mut h[16..]).unwrap();
    Some(h)
}

/// Asserts the server closes the connection without sending anything (within `within`).
pub fn assert_closed(s: &mut TcpStream, within: Duration) {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(_) => panic!("server sent data instead of closing"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("connection not closed within {within:?}: {e}"),
    }
}

pub fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).unwrap();
}

/// Client PDUs of a captured session file, in order.
pub fn client_pdus(path: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("C>S "))
        .map(|h| hex::decode(h.trim()).unwrap())
        .collect()
}
