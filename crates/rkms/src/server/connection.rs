//! One client connection: read bytes, cut them into PDUs, feed the protocol state machine,
//! write each reply in one write, close on error, idle timeout or shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::rngs::OsRng;
use rand::RngCore;
use rkms_proto::kms::{DecodedRequest, HResult, HostAnswer, KmsHost};
use rkms_proto::rpc::{
    complete_pdu_len, CloseReason, Event, FrameError, RpcConfig, ServerConnection,
};
use rkms_store::Activation;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::admission::Ticket;
use super::limits::{is_own_check, BadInput, Verdict};
use super::Shared;
use crate::clock::now_unix;
use rkms_proto::rpc::{ptype, PFC_FIRST};

/// The policy seen from one connection: it knows the client's address for the logs and
/// sends each decision to the client store.
struct ConnectionHost<'a> {
    peer: SocketAddr,
    /// The client's address as recorded, formatted once per connection.
    address: String,
    /// The client's address and port as logged, formatted once per connection.
    peer_text: String,
    shared: &'a Shared,
    /// Resolves when the last activation's record is written.
    pending: Option<oneshot::Receiver<bool>>,
    /// Bad input on this connection (logged once, counted).
    bad: BadInput,
    /// The activation counter last counted on this connection.
    counted: Option<super::metrics::ActivationCounter>,
    /// The text of the last activation line's message (its memory kept for the next).
    message: String,
}

impl KmsHost for ConnectionHost<'_> {
    fn answer(&mut self, request: &DecodedRequest) -> Result<HostAnswer, HResult> {
        let rq = &request.base;
        let workstation = match rq.workstation_name() {
            Ok(name) => name,
            Err(_) => {
                if self.bad.first() {
                    warn!(client = %self.peer, "workstation name is not valid UTF-16; logged with replacement characters");
                }
                rq.workstation_name_lossy()
            }
        };
        // The host's own health check is answered like any request but neither counted nor kept.
        let own_check = is_own_check(self.peer.ip(), &workstation, &rq.cmid);
        let now = now_unix();
        // The policy as of this request (a reload applies from the next request on).
        let policy = self.shared.policy.load();
        let decision = policy.decide(request, now, !own_check, &mut rand::thread_rng());
        let metrics = &self.shared.metrics;
        if !own_check {
            metrics.activation(
                &mut self.counted,
                request.version.major,
                decision.family,
                decision.answer.is_ok(),
            );
            if let Some(code) = decision.refusal_code {
                metrics.refusal(code);
            }
        }
        // The host's own checks (every 30 s) are logged at debug level, clients at info.
        let shown = if own_check {
            tracing::enabled!(tracing::Level::DEBUG)
        } else {
            tracing::enabled!(tracing::Level::INFO)
        };
        if shown {
            let product = policy
                .catalog()
                .product_name(&rq.sku_id, &rq.kms_id, &rq.application_id);
            // Text fields are handed over as `&str` (the subscriber writes them as they are,
            // without formatting each into a buffer first), the GUIDs encoded on the stack the
            // way they display. The message is written into a buffer the connection keeps and
            // handed over as `&str` too (a message given as format arguments would be
            // formatted into a buffer of the subscriber's first, then copied into the line):
            // the same first field, the same text.
            let mut guids = [uuid::Uuid::encode_buffer(); 3];
            let [cmid, sku, kms_id] = &mut guids;
            let cmid: &str = rq.cmid.hyphenated().encode_lower(cmid);
            let sku: &str = rq.sku_id.hyphenated().encode_lower(sku);
            let kms_id: &str = rq.kms_id.hyphenated().encode_lower(kms_id);
            let protocol = request.version.text();
            LogResult {
                answer: &decision.answer,
                required: rq.required_client_count,
                refusal: decision.refusal.as_deref(),
            }
            .write_to(&mut self.message);
            if self.message.capacity() > MESSAGE_KEPT {
                self.message.shrink_to(MESSAGE_KEPT);
            }
            let message = self.message.as_str();
            macro_rules! activation_line {
                ($level:ident) => {
                    $level!(
                        message,
                        client = self.peer_text.as_str(),
                        workstation = &*workstation,
                        cmid,
                        product = &*product,
                        sku,
                        kms_id,
                        protocol = &*protocol
                    )
                };
            }
            if own_check {
                activation_line!(debug);
            } else {
                activation_line!(info);
            }
        }
        debug!(client = %self.peer, request = ?rq, answer = ?decision.answer, profile = %decision.profile, "decoded request");
        if let Some(writer) = self.shared.store.as_ref().filter(|_| !own_check) {
            let activation = Activation {
                cmid: rq.cmid,
                application_id: rq.application_id,
                sku_id: rq.sku_id,
                kms_id: rq.kms_id,
                workstation,
                license_status: rq.license_status,
                grace_minutes: rq.grace_time,
                is_vm: rq.is_client_vm != 0,
                protocol: request.version.text().into_owned(),
                time: now,
                address: self.address.clone(),
                epid: decision
                    .answer
                    .as_ref()
                    .map(|a| a.epid.clone())
                    .unwrap_or_default(),
                hresult: decision.answer.as_ref().err().map_or(0, |h| h.0),
            };
            let queued = if self.shared.store_acks {
                let (tx, rx) = oneshot::channel();
                let ack: rkms_store::Ack = match &self.shared.ack_queue {
                    Some(queue) => queue.ack(tx),
                    None => Box::new(move |written| {
                        let _ = tx.send(written);
                    }),
                };
                let ok = writer.submit_with_ack(activation, ack);
                self.pending = ok.then_some(rx);
                ok
            } else {
                writer.submit(activation)
            };
            if !queued {
                warn!(client = %self.peer, "client store queue is full; this activation is not recorded");
            }
        }
        decision.answer
    }
}

/// The outcome part of an activation's log line.
struct LogResult<'a> {
    answer: &'a Result<HostAnswer, HResult>,
    required: u32,
    refusal: Option<&'a str>,
}

/// Largest message buffer a connection keeps for its next activation line.
const MESSAGE_KEPT: usize = 256;

impl LogResult<'_> {
    /// Replaces `out` with the message as [`Display`](std::fmt::Display) writes it; the
    /// usual one (an activation) without the formatting machinery.
    fn write_to(&self, out: &mut String) {
        out.clear();
        match self.answer {
            Ok(a) => {
                out.push_str("activated (count ");
                push_decimal(out, a.current_count);
                out.push_str(" for required ");
                push_decimal(out, self.required);
                out.push(')');
            }
            Err(_) => {
                use std::fmt::Write as _;
                let _ = write!(out, "{self}");
            }
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

impl std::fmt::Display for LogResult<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.answer {
            Ok(a) => write!(
                f,
                "activated (count {} for required {})",
                a.current_count, self.required
            ),
            Err(h) => write!(
                f,
                "refused {h} ({}): {}",
                h.description(),
                self.refusal.unwrap_or("policy")
            ),
        }
    }
}

/// Serves one connection until the client closes, an error, the idle timeout or shutdown.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    admitted: Option<&Ticket>,
) {
    let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    serve_io(reader, writer, peer, local_port, shared, stop, admitted).await;
}

/// Where a connection's bytes come from.
pub(crate) trait ByteSource {
    /// Waits for bytes and appends them to `buf`; `Ok(0)` at the end of the stream.
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize>;
}

/// A TCP connection waits for readiness before it makes room in `buf`, so a connection
/// waiting for its next request holds no receive buffer at all. The read itself goes through
/// `read_buf`, which takes a read that did not fill the room made as the end of what the
/// socket holds: the next wait goes straight to the poller, without a further `recv` that
/// would only find nothing (one system call less per request on a kept connection).
impl ByteSource for OwnedReadHalf {
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        self.readable().await?;
        buf.reserve(READ_SIZE);
        self.read_buf(buf).await
    }
}

/// Any other byte stream (stdin in inetd mode), read with a buffer made ready beforehand.
pub(crate) struct Stream<R>(pub R);

impl<R: AsyncRead + Unpin> ByteSource for Stream<R> {
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        buf.reserve(READ_SIZE);
        self.0.read_buf(buf).await
    }
}

/// Serves one client over any byte stream (a TCP connection, or stdin/stdout in inetd mode).
pub(crate) async fn serve_io<R, W>(
    mut reader: R,
    mut writer: W,
    peer: SocketAddr,
    local_port: u16,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut admitted: Option<&Ticket>,
) where
    R: ByteSource,
    W: AsyncWrite + Unpin,
{
    // An IPv4 client of a dual-stack `[::]` listener is logged and recorded as IPv4.
    let peer = crate::escape::canonical_addr(peer);
    let config = &shared.config;
    let mut calls: u32 = 0;
    shared.metrics.connection_opened();
    let _open = OpenGuard(&shared.metrics);
    let mut rpc = ServerConnection::new(RpcConfig {
        ndr64: config.ndr64,
        btfn: config.btfn,
        max_call_size: config.max_call_size,
        local_port,
        assoc_group: OsRng.next_u32() | 1,
    });
    let mut host = ConnectionHost {
        shared: &shared,
        pending: None,
        bad: BadInput::new(peer),
        counted: None,
        message: String::new(),
        address: peer.ip().to_string(),
        peer_text: peer.to_string(),
        peer,
    };
    // Bytes received and not yet handled. Its memory is given back whenever it is empty, so
    // an idle connection holds no buffer at all (10,000 idle connections stay small).
    let mut buf: Vec<u8> = Vec::new();
    let mut pdu_started: Option<tokio::time::Instant> = None;
    // When the last call's reply was written: the wait for the next request starts then (one
    // clock reading for the call's duration and the idle deadline).
    let mut answered: Option<tokio::time::Instant> = None;
    // One timer and one shutdown wait for the connection's life: each wait for bytes moves the
    // timer's deadline (a later deadline is an update in place, not a new timer to register
    // and cancel per request).
    let idle = tokio::time::sleep_until(later_by(tokio::time::Instant::now(), config.idle_timeout));
    tokio::pin!(idle);
    let shutdown = stop.changed();
    tokio::pin!(shutdown);
    loop {
        // Handle every complete PDU already buffered.
        loop {
            let len = match complete_pdu_len(&buf, config.max_pdu) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    warn!(client = %peer, "closing connection: {e}");
                    shared.metrics.malformed(match e {
                        FrameError::TooShort(_) => "frag_length_too_short",
                        FrameError::TooLong { .. } => "frag_length_too_long",
                    });
                    return;
                }
            };
            // The first complete PDU ends the handshake deadline and protects the connection
            // from eviction at the connection limit.
            if let Some(ticket) = admitted.take() {
                ticket.established();
            }
            let started = std::time::Instant::now();
            // Each call counts once: its first (or only) fragment.
            if buf[2] == ptype::REQUEST && buf[3] & PFC_FIRST != 0 {
                if let Some(rate) = &shared.rate {
                    if let Verdict::Refuse { report } = rate.check(peer.ip(), started) {
                        shared.metrics.rate_limited();
                        if report {
                            warn!(client = %peer, limit = config.rate_limit, "rate limit reached: closing this address's connections until it slows down (logged once a minute)");
                        }
                        return;
                    }
                }
            }
            // A CSPRNG seeded from the operating system's (rand's ThreadRng: ChaCha, reseeded).
            let out = rpc.handle_pdu(&buf[..len], &mut host, &mut rand::thread_rng());
            buf.drain(..len);
            let is_call = matches!(out.event, Event::Kms { .. } | Event::Fault { .. });
            // Answer once the client's record is on disk, so nothing acknowledged is lost in a
            // crash; a slow or broken disk delays the answer by at most `store_wait`.
            if let Some(rx) = host.pending.take() {
                if tokio::time::timeout(config.store_wait, rx).await.is_err() {
                    warn!(client = %peer, wait = ?config.store_wait, "client store is slow; answering before the record is written");
                }
            }
            if let Some(reply) = &out.reply {
                if let Err(e) = write_reply(&mut writer, reply).await {
                    debug!(client = %peer, "write failed: {e}");
                    return;
                }
            }
            match out.event {
                Event::Close(reason) => {
                    warn!(client = %peer, "closing connection: {reason}");
                    shared.metrics.malformed(match reason {
                        CloseReason::Malformed { what } => what,
                        CloseReason::UnsupportedPtype(_) => "unsupported_pdu_type",
                        CloseReason::CallTooLarge(_) => "call_too_large",
                    });
                    return;
                }
                // Bad input that does not close the connection is logged once per connection
                // (the rest are counted and summed up at the close).
                Event::Fault { status, why } => {
                    if host.bad.first() {
                        warn!(client = %peer, "RPC fault 0x{status:08X}: {why} (further bad PDUs on this connection are counted, not logged)");
                    }
                    shared.metrics.fault(status);
                }
                Event::BindNak { reason, why } => {
                    if host.bad.first() {
                        warn!(client = %peer, "bind refused (reason {reason}): {why} (further bad PDUs on this connection are counted, not logged)");
                    }
                    shared.metrics.malformed("bind_refused");
                }
                Event::Kms {
                    result: Err(refusal),
                    ..
                } if refusal.reason != rkms_proto::kms::RefusalReason::Policy => {
                    if host.bad.first() {
                        warn!(client = %peer, "KMS request refused with {}: {} (further bad PDUs on this connection are counted, not logged)", refusal.hresult, refusal.reason);
                    }
                    shared.metrics.refusal(refusal.reason.code())
                }
                other => debug!(client = %peer, event = ?other, "handled PDU"),
            }
            if is_call {
                let now = std::time::Instant::now();
                answered = Some(now.into());
                shared
                    .metrics
                    .observe_duration(now.saturating_duration_since(started).as_secs_f64());
                calls += 1;
                if config.disconnect_after_request {
                    debug!(client = %peer, "closing after the response (--disconnect-after-request)");
                    return;
                }
                if calls >= config.max_calls_per_connection {
                    info!(client = %peer, calls, "closing: maximum calls per connection reached");
                    return;
                }
            }
        }
        // A partial PDU must be completed within the idle timeout of its first byte, so a
        // client trickling bytes cannot hold the connection forever (slowloris).
        if buf.is_empty() {
            pdu_started = None;
            buf = Vec::new();
        } else if pdu_started.is_none() {
            pdu_started = Some(tokio::time::Instant::now());
        }
        let from = pdu_started
            .or(answered.take())
            .unwrap_or_else(tokio::time::Instant::now);
        idle.as_mut().reset(later_by(from, config.idle_timeout));
        // Shutdown first, so that a client that always has bytes ready cannot hold it off;
        // then the bytes, then the deadline (as a timeout around the read would).
        let read = tokio::select! {
            biased;
            _ = &mut shutdown => {
                debug!(client = %peer, "closing connection for shutdown");
                return;
            }
            r = reader.read_into(&mut buf) => Ok(r),
            () = &mut idle => Err(()),
        };
        match read {
            Err(()) if pdu_started.is_some() => {
                warn!(client = %peer, "closing: a PDU was not completed within {:?}", config.idle_timeout);
                shared.metrics.malformed("slow_pdu");
                return;
            }
            Err(()) => {
                debug!(client = %peer, "idle timeout after {:?}", config.idle_timeout);
                shared.metrics.idle_timeout();
                return;
            }
            Ok(Ok(0)) => {
                if !buf.is_empty() {
                    warn!(client = %peer, "client closed the connection in the middle of a PDU ({} bytes)", buf.len());
                    shared.metrics.malformed("truncated_pdu");
                } else {
                    debug!(client = %peer, "client closed the connection");
                }
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(client = %peer, "read failed: {e}");
                return;
            }
        }
    }
}

/// `from` + `wait`, or a year on when that is past what an instant holds.
fn later_by(from: tokio::time::Instant, wait: std::time::Duration) -> tokio::time::Instant {
    from.checked_add(wait)
        .or_else(|| from.checked_add(std::time::Duration::from_secs(365 * 86_400)))
        .unwrap_or(from)
}

/// Room made in the receive buffer before each read (KMS PDUs are at most ~300 bytes).
const READ_SIZE: usize = 512;

/// Counts the connection as closed however `serve` returns.
struct OpenGuard<'a>(&'a super::Metrics);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// Writes one reply in one write and flushes it (stdout in inetd mode is buffered).
async fn write_reply<W: AsyncWrite + Unpin>(w: &mut W, reply: &[u8]) -> std::io::Result<()> {
    w.write_all(reply).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_message_is_written_as_displayed() {
        let mut out = String::from("left over from the last line");
        for count in [0, 1, 9, 10, 25, 50, 99, 100, 12_345, u32::MAX] {
            for required in [0, 5, 25, 1_000_000, u32::MAX] {
                let answer = Ok(HostAnswer {
                    epid: "e".into(),
                    hwid: [0; 8],
                    current_count: count,
                    activation_interval: 120,
                    renewal_interval: 10080,
                });
                let result = LogResult {
                    answer: &answer,
                    required,
                    refusal: None,
                };
                result.write_to(&mut out);
                assert_eq!(out, result.to_string());
                assert_eq!(
                    out,
                    format!("activated (count {count} for required {required})")
                );
            }
        }
        for refusal in [None, Some("not on the list")] {
            let answer = Err(HResult::KMS_ID_MISMATCH);
            let result = LogResult {
                answer: &answer,
                required: 25,
                refusal,
            };
            result.write_to(&mut out);
            assert_eq!(out, result.to_string());
            assert!(out.starts_with("refused "), "{out}");
        }
    }
}
