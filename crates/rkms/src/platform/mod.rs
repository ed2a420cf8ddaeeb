//! What differs by operating system, in one place, behind one interface the rest of rkms
//! calls: systemd integration (socket activation, readiness and watchdog notifications), the
//! Windows service manager's state reports, privilege drop, pid file, SIGHUP, inetd sockets,
//! the open-files limit and default paths ([`paths`]). It depends on nothing above it (not
//! on the command line's definitions, nor on `rkms service`, which installs and runs the
//! Windows service through it). Stop signals are in `server::shutdown`.

mod paths;
#[cfg(windows)]
pub mod windows;

pub use paths::{default_config_path, WindowsPaths, DEFAULT_CONFIG_PATH, DEFAULT_SERVICE_ACCOUNT};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;
#[cfg(unix)]
use tracing::{info, warn};

/// Raises the soft limit of open files to the hard limit (a host with many connections needs
/// one descriptor each) and returns the limit now in force.
#[cfg(unix)]
pub fn raise_fd_limit() -> Result<u64, String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    if soft >= hard {
        return Ok(soft);
    }
    // Some systems (macOS) refuse an unlimited hard limit as the soft one: then ask for less.
    let mut last = None;
    for want in [hard, hard.min(65_536), hard.min(10_240)] {
        if want <= soft {
            break;
        }
        match setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
            Ok(()) => return Ok(want),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(format!("{e} (the limit stays {soft})")),
        None => Ok(soft),
    }
}

/// Windows has no per-process limit of open sockets to raise.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> Result<u64, String> {
    Ok(u64::MAX)
}

/// The listening sockets systemd passed (LISTEN_FDS), if any.
#[cfg(unix)]
pub fn activated_listeners() -> Result<Option<Vec<TcpListener>>, String> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut out = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i) {
            Ok(Some(l)) => {
                l.set_nonblocking(true)
                    .map_err(|e| format!("socket activation: {e}"))?;
                out.push(TcpListener::from_std(l).map_err(|e| format!("socket activation: {e}"))?);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "socket activation: passed socket {i} is not a TCP listener: {e}"
                ))
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Socket activation is systemd's: never on other platforms.
#[cfg(not(unix))]
pub fn activated_listeners() -> Result<Option<Vec<TcpListener>>, String> {
    Ok(None)
}

/// Tells the service manager the host is ready: systemd (Type=notify, with the watchdog pings
/// it asked for) or, on Windows, the service control manager when run as a service.
pub fn notify_ready() {
    #[cfg(windows)]
    windows::report_running();
    #[cfg(unix)]
    notify_ready_systemd();
}

#[cfg(unix)]
fn notify_ready_systemd() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        warn!("cannot notify systemd: {e}");
    }
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let period = std::time::Duration::from_micros(usec / 2);
        info!(?period, "systemd watchdog enabled");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
}

/// How much longer each [`notify_starting`] asks systemd to wait for the host to be ready.
#[cfg(unix)]
const STARTING_EXTENSION_USEC: u32 = 30_000_000;

/// Tells systemd (Type=notify) that the host is still starting and why (`status`, shown by
/// `systemctl status`), asking it to wait at least 30 s more from now and resetting its
/// watchdog: a long migration of the client database is not a hung start. Under Windows'
/// service manager, reports a new check point of the pending start (30 s wait hint), which
/// `rkms service start` takes as progress. Called every few seconds while it lasts; does
/// nothing elsewhere.
pub fn notify_starting(status: &str) {
    #[cfg(unix)]
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(
            false,
            &[
                sd_notify::NotifyState::Status(status),
                sd_notify::NotifyState::ExtendTimeoutUsec(STARTING_EXTENSION_USEC),
                sd_notify::NotifyState::Watchdog,
            ],
        );
    }
    #[cfg(not(unix))]
    let _ = status;
    #[cfg(windows)]
    windows::report_starting();
}

/// Tells the service manager (systemd, or Windows' when run as a service) the host is stopping.
pub fn notify_stopping() {
    #[cfg(windows)]
    windows::report_stopping();
    #[cfg(unix)]
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }
}

/// A pid file, removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes the process ID to `path` without following a symbolic link there: the number
    /// goes to a new file of the same directory (created exclusively, mode 0644), which then
    /// replaces `path` in one rename. A link at `path` is replaced, never its target written
    /// (as root, a link planted there could otherwise overwrite any file).
    pub fn create(path: &Path) -> Result<Self, String> {
        let err = |e: std::io::Error| format!("--pidfile {}: {e}", path.display());
        let name = path
            .file_name()
            .ok_or_else(|| format!("--pidfile {}: not a file name", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let contents = format!("{}\n", std::process::id());
        let mut attempt = 0u32;
        let temp = loop {
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{}.{attempt}.tmp", std::process::id()));
            let temp = dir.join(temp_name);
            let mut options = std::fs::OpenOptions::new();
            // `create_new` (O_CREAT|O_EXCL) fails on any existing name, a link included.
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
            match options.open(&temp) {
                Ok(mut file) => {
                    use std::io::Write;
                    let written = file
                        .write_all(contents.as_bytes())
                        .and_then(|()| file.sync_all());
                    if let Err(e) = written {
                        let _ = std::fs::remove_file(&temp);
                        return Err(err(e));
                    }
                    break temp;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(err(e)),
            }
        };
        if let Err(e) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(err(e));
        }
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Switches to `user` / `group` (names or numeric IDs) after the listeners are bound.
#[cfg(unix)]
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Group, Uid, User};
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let user = match user {
        Some(u) => Some(match u.parse::<u32>() {
            Ok(id) => User::from_uid(Uid::from_raw(id))
                .ok()
                .flatten()
                .map_or((Uid::from_raw(id), None), |x| (x.uid, Some(x.gid))),
            Err(_) => {
                let x = User::from_name(u)
                    .map_err(|e| format!("--user {u}: {e}"))?
                    .ok_or(format!("--user {u}: no such user"))?;
                (x.uid, Some(x.gid))
            }
        }),
        None => None,
    };
    let gid = match group {
        Some(g) => Some(match g.parse::<u32>() {
            Ok(id) => Gid::from_raw(id),
            Err(_) => {
                Group::from_name(g)
                    .map_err(|e| format!("--group {g}: {e}"))?
                    .ok_or(format!("--group {g}: no such group"))?
                    .gid
            }
        }),
        None => user.and_then(|(_, g)| g),
    };
    if let Some(gid) = gid {
        setgroups(&[gid])
            .map_err(|e| format!("cannot drop supplementary groups (are you root?): {e}"))?;
        setgid(gid).map_err(|e| format!("cannot switch to group {gid}: {e}"))?;
    }
    if let Some((uid, _)) = user {
        setuid(uid).map_err(|e| format!("cannot switch to user {uid}: {e}"))?;
    }
    info!(uid = %nix::unistd::getuid(), gid = %nix::unistd::getgid(), "privileges dropped");
    Ok(())
}

/// Switching users exists on Unix only.
#[cfg(not(unix))]
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<(), String> {
    match (user, group) {
        (None, None) => Ok(()),
        _ => Err("--user and --group exist on Unix only; on Windows `rkms service install --account` chooses the service's account".into()),
    }
}

/// SIGHUP deliveries (never on platforms without signals).
pub struct Hangups {
    #[cfg(unix)]
    inner: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts listening for SIGHUP.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Hangups {
                inner: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Hangups {}
    }

    /// Waits for the next SIGHUP; false when none can come.
    pub async fn recv(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(s) = &mut self.inner {
            return s.recv().await.is_some();
        }
        std::future::pending::<()>().await;
        false
    }
}

impl Default for Hangups {
    fn default() -> Self {
        Self::new()
    }
}

/// The peer and the local port of the socket on standard input (inetd mode).
pub fn stdin_socket_addrs() -> (SocketAddr, u16) {
    let unknown = (
        SocketAddr::from(([0, 0, 0, 0], 0)),
        crate::addr::DEFAULT_PORT,
    );
    #[cfg(unix)]
    {
        use nix::sys::socket::{getpeername, getsockname, SockaddrStorage};
        let to_std = |s: SockaddrStorage| -> Option<SocketAddr> {
            if let Some(v4) = s.as_sockaddr_in() {
                return Some(SocketAddr::from((v4.ip(), v4.port())));
            }
            s.as_sockaddr_in6()
                .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
        };
        let peer = getpeername::<SockaddrStorage>(0)
            .ok()
            .and_then(to_std)
            .unwrap_or(unknown.0);
        let local = getsockname::<SockaddrStorage>(0)
            .ok()
            .and_then(to_std)
            .map_or(unknown.1, |a| a.port());
        (peer, local)
    }
    #[cfg(not(unix))]
    unknown
}
