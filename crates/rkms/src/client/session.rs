//! A client RPC session over TCP: connect, bind (and alter_context when NDR32 was refused),
//! then send activation requests the way Windows and vlmcs do.

use std::net::SocketAddr;
use std::time::Duration;

use rkms_proto::rpc::client::{
    alter_context_pdu, bind_pdu, check_bind_ack, check_response, request, BindOffer, Bound,
    RpcError,
};
use rkms_proto::rpc::ndr::ResponseStub;
use rkms_proto::rpc::{TransferSyntax, HEADER_LEN, NDR32_SYNTAX};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address tried.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// No reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// Socket error or the server closed the connection.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The server's reply broke the RPC protocol or was a fault.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// Neither NDR32 nor NDR64 could be bound.
    #[error("the server accepted no transfer syntax for the KMS interface")]
    NothingBound,
}

/// An open, bound connection to a KMS host.
pub struct Session {
    stream: TcpStream,
    call_id: u32,
    bound: Bound,
    timeout: Duration,
    sent: u32,
    /// Bytes received and not yet handed out: replies are read with as few reads as the
    /// kernel allows (one per reply, not one for the header and one for the rest).
    received: Vec<u8>,
}

impl Session {
    /// Connects and binds. NDR32 goes on context 0, NDR64 on 1 and BTFN on the next when offered.
    pub async fn open(
        addr: SocketAddr,
        offer: BindOffer,
        timeout: Duration,
    ) -> Result<Self, SessionError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| SessionError::Timeout(timeout))?
            .map_err(|source| SessionError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let mut s = Session {
            stream,
            call_id: 2,
            bound: Bound::default(),
            timeout,
            sent: 0,
            received: Vec::new(),
        };
        let reply = s.exchange(&bind_pdu(s.call_id, offer)).await?;
        check_bind_ack(
            &reply,
            s.call_id,
            &offer.syntaxes(),
            offer.multiplex,
            false,
            &mut s.bound,
        )?;
        if s.bound.ndr32.is_none() {
            let reply = s
                .exchange(&alter_context_pdu(s.call_id, offer.multiplex))
                .await?;
            check_bind_ack(
                &reply,
                s.call_id,
                &[NDR32_SYNTAX],
                offer.multiplex,
                true,
                &mut s.bound,
            )?;
        }
        if s.bound.ndr32.is_none() && s.bound.ndr64.is_none() {
            return Err(SessionError::NothingBound);
        }
        Ok(s)
    }

    /// Closes the connection abortively (RST): the closing side keeps no TIME_WAIT state.
    pub fn reset_on_close(self) {
        let _ = self.stream.set_zero_linger();
    }

    /// What the bind established.
    pub fn bound(&self) -> &Bound {
        &self.bound
    }

    /// Sends one KMS request: the first with NDR32, later ones with NDR64 when it was bound.
    pub async fn activate(
        &mut self,
        payload: &[u8],
    ) -> Result<(ResponseStub, TransferSyntax), SessionError> {
        let (ctx, syntax) = match (self.bound.ndr32, self.bound.ndr64) {
            (Some(c), _) if self.sent == 0 => (c, TransferSyntax::Ndr32),
            (_, Some(c)) => (c, TransferSyntax::Ndr64),
            (Some(c), None) => (c, TransferSyntax::Ndr32),
            (None, None) => return Err(SessionError::NothingBound),
        };
        if self.sent > 0 {
            self.call_id = self.call_id.wrapping_add(1);
        }
        self.sent += 1;
        let reply = self
            .exchange(&request(self.call_id, ctx, syntax, payload))
            .await?;
        Ok((check_response(&reply, self.call_id, ctx, syntax)?, syntax))
    }

    async fn exchange(&mut self, pdu: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.stream.write_all(pdu).await?;
        tokio::time::timeout(self.timeout, read_pdu(&mut self.stream, &mut self.received))
            .await
            .map_err(|_| SessionError::Timeout(self.timeout))?
    }
}

/// Room made for each read: a KMS reply is about 300 bytes, so one read takes a whole reply
/// (and the kernel, seeing the read short of the room, needs no second read to say "empty").
const READ_ROOM: usize = 2048;

/// Returns the next whole PDU, reading into `received` until one is there; bytes after it
/// stay in `received` for the next call.
async fn read_pdu(stream: &mut TcpStream, received: &mut Vec<u8>) -> Result<Vec<u8>, SessionError> {
    loop {
        if received.len() >= HEADER_LEN {
            let len = u16::from_le_bytes([received[8], received[9]]) as usize;
            if len < HEADER_LEN {
                return Err(RpcError::Protocol(format!(
                    "reply frag_length {len} is shorter than a header"
                ))
                .into());
            }
            if received.len() >= len {
                let pdu = received[..len].to_vec();
                received.drain(..len);
                return Ok(pdu);
            }
        }
        received.reserve(READ_ROOM);
        if stream.read_buf(received).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
}
