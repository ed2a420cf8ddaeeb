//! Binding listening sockets (dual-stack by default) and the accept loop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, warn};

use super::admission::Closed;
use super::limits::is_private;
use super::{connection, Shared};

/// The default listen address: every IPv6 and (dual-stack) IPv4 address, port 1688.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 1688);

/// Binds every address; with none given, `[::]:1688` dual-stack, else `0.0.0.0:1688` when IPv6
/// is unavailable on this machine.
pub fn bind_listeners(addrs: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    bind_listeners_with(addrs, 4096, false)
}

/// Like [`bind_listeners`] with a listen backlog; with `ipv6_only`, a listener on `[::]`
/// accepts IPv6 clients only (`IPV6_V6ONLY`) instead of IPv4 ones too.
pub fn bind_listeners_with(
    addrs: &[SocketAddr],
    backlog: u32,
    ipv6_only: bool,
) -> anyhow::Result<Vec<TcpListener>> {
    bind_all(addrs, |a| bind_one(a, backlog, ipv6_only))
}

/// Binds `addrs` with `bind`, or the default address. The IPv4 fallback is for a machine
/// without IPv6; a port another process holds is an error (IPv4 would find it taken too).
fn bind_all<T>(
    addrs: &[SocketAddr],
    bind: impl Fn(SocketAddr) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    if addrs.is_empty() {
        return match bind(DEFAULT_LISTEN) {
            Ok(l) => Ok(vec![l]),
            Err(e) if port_in_use(&e) => Err(e),
            Err(e) => {
                warn!("cannot listen on {DEFAULT_LISTEN} ({e:#}); falling back to IPv4 only");
                let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_LISTEN.port());
                Ok(vec![bind(v4)?])
            }
        };
    }
    addrs.iter().map(|a| bind(*a)).collect()
}

/// Whether binding failed because another socket holds the port.
fn port_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// The sentence for a failed bind: a taken port says so and how to choose another.
fn bind_failed(addr: SocketAddr, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        format!(
            "cannot listen on {addr}: port {} is in use by another process (another KMS host?); \
             stop it, or choose another port with --listen ADDR:PORT (clients then name it: \
             slmgr /skms HOST:PORT)",
            addr.port()
        )
    } else if e.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 {
        format!(
            "cannot listen on {addr}: ports below 1024 need privileges; use systemd's socket \
             unit (contrib/systemd/rkms.socket binds the port for rkms), give rkms \
             CAP_NET_BIND_SERVICE (AmbientCapabilities=CAP_NET_BIND_SERVICE in its unit, or \
             setcap cap_net_bind_service=+ep on the binary), start it as root with --user to \
             drop privileges after binding, or use a port from 1024 (1688 is the KMS port)"
        )
    } else {
        format!("cannot listen on {addr}")
    }
}

fn bind_one(addr: SocketAddr, backlog: u32, ipv6_only: bool) -> anyhow::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .with_context(|| format!("cannot create a socket for {addr}"))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // [::] also accepts IPv4 clients (as ::ffff:a.b.c.d) unless told not to.
        socket.set_only_v6(ipv6_only || !addr.ip().is_unspecified())?;
    }
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.bind(&addr.into()) {
        let msg = bind_failed(addr, &e);
        return Err(anyhow::Error::new(e).context(msg));
    }
    if let Err(e) = socket.listen(backlog as i32) {
        let msg = bind_failed(addr, &e);
        return Err(anyhow::Error::new(e).context(msg));
    }
    TcpListener::from_std(socket.into()).with_context(|| format!("cannot listen on {addr}"))
}

/// Accepts connections until told to stop, one task per connection, at most
/// `max_connections` at once and `max_connections_per_address` from one address (more are
/// closed right after accept). At the global limit a new connection is accepted and the oldest
/// connection that has not sent a complete PDU is closed; when every open connection has sent
/// one, accepting pauses (the kernel queues the rest).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let admission = &shared.admission;
    let mut at_limit_since: Option<std::time::Instant> = None;
    loop {
        // A place now, or later by evicting a connection that has not sent a complete PDU.
        let mut permit = shared.connections.clone().try_acquire_owned().ok();
        if permit.is_none() && !admission.has_pending() {
            if at_limit_since.is_none() {
                debug!(
                    limit = shared.config.max_connections,
                    "connection limit reached; new connections wait"
                );
                admission.note_wait();
                at_limit_since = Some(std::time::Instant::now());
            }
            tokio::select! {
                _ = stop.changed() => return,
                p = shared.connections.clone().acquire_owned() => match p {
                    Ok(p) => permit = Some(p),
                    Err(_) => return,
                },
            }
        }
        if let Some(since) = at_limit_since.take() {
            debug!(waited = ?since.elapsed(), "below the connection limit again; accepting");
        }
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // IPv4 clients of a dual-stack listener are shown as IPv4.
                    let peer = crate::escape::canonical_addr(peer);
                    if shared.config.private_only && !is_private(peer.ip()) {
                        warn!(client = %peer, "closed: public address (--private-only)");
                        drop(stream);
                        continue;
                    }
                    let Some(ticket) = admission.admit(peer.ip()) else {
                        debug!(client = %peer, "closed: too many connections from this address");
                        // An abortive close: no TIME_WAIT state kept for each refused connection.
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        continue;
                    };
                    let permit = match permit {
                        Some(p) => p,
                        None => {
                            // At the limit: make room by closing the oldest connection without
                            // a complete PDU (the new one is accepted, not left in the queue).
                            if admission.evict_for(&ticket) {
                                debug!(client = %peer, "at the connection limit: closed the oldest connection without a complete PDU");
                            } else {
                                // Every other connection sent a PDU meanwhile: this one waits.
                                admission.note_wait();
                            }
                            tokio::select! {
                                _ = stop.changed() => return,
                                p = shared.connections.clone().acquire_owned() => match p {
                                    Ok(p) => p,
                                    Err(_) => return,
                                },
                            }
                        }
                    };
                    debug!(client = %peer, "connection accepted");
                    let shared = shared.clone();
                    let stop = stop.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = connection::serve(stream, peer, shared.clone(), stop, Some(&ticket)) => {}
                            why = ticket.closed_by_limits() => match why {
                                Closed::Evicted => debug!(client = %peer, "closed: evicted at the connection limit before a complete PDU"),
                                Closed::HandshakeTimeout => debug!(client = %peer, timeout = ?shared.config.handshake_timeout, "closed: no complete PDU within the handshake timeout"),
                            },
                        }
                        drop(ticket);
                        drop(permit);
                        drop(done);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and similar: wait a little instead of spinning.
                    error!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod bind_tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::{Error, ErrorKind};

    fn failing(kind: ErrorKind, tried: &RefCell<Vec<SocketAddr>>) -> anyhow::Result<Vec<()>> {
        bind_all(&[], |a| {
            tried.borrow_mut().push(a);
            if a.is_ipv6() {
                Err(anyhow::Error::new(Error::from(kind))
                    .context(bind_failed(a, &Error::from(kind))))
            } else {
                Ok(())
            }
        })
    }

    #[test]
    fn a_busy_default_port_is_an_error_not_an_ipv4_fallback() {
        let tried = RefCell::new(Vec::new());
        let e = failing(ErrorKind::AddrInUse, &tried).unwrap_err();
        assert_eq!(*tried.borrow(), [DEFAULT_LISTEN], "no IPv4 attempt");
        let text = format!("{e:#}");
        assert!(
            text.contains("port 1688 is in use by another process")
                && text.contains("--listen ADDR:PORT"),
            "{text}"
        );
    }

    #[test]
    fn without_ipv6_the_default_falls_back_to_ipv4() {
        let tried = RefCell::new(Vec::new());
        assert_eq!(
            failing(ErrorKind::AddrNotAvailable, &tried).unwrap().len(),
            1
        );
        assert_eq!(tried.borrow().len(), 2);
        assert!(tried.borrow()[1].is_ipv4());
    }
}

#[cfg(test)]
mod bind_message_tests {
    #[test]
    fn privileged_port_names_the_ways_to_get_it() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let msg = super::bind_failed("0.0.0.0:688".parse().unwrap(), &denied);
        assert!(
            msg.contains("CAP_NET_BIND_SERVICE") && msg.contains("rkms.socket"),
            "{msg}"
        );
        let msg = super::bind_failed("0.0.0.0:1688".parse().unwrap(), &denied);
        assert!(!msg.contains("CAP_NET_BIND_SERVICE"), "{msg}");
    }
}
