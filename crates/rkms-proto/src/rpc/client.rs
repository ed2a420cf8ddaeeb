//! The client's side of the RPC exchange: build bind, alter_context and request PDUs, and check
//! the server's replies as vlmcs does (PROTOCOL.md §2.6, §7).

use super::ndr::{decode_response_stub, encode_request_stub, ResponseStub};
use super::pdu::{
    parse_bind_ack, ptype, request_pdu, BindBody, ContextElement, Header, SyntaxId, KMS_INTERFACE,
    NDR32_SYNTAX, NDR64_SYNTAX, PFC_CONC_MPX, PFC_FIRST, PFC_LAST,
};
use super::TransferSyntax;
use crate::wire::Reader;

/// The BTFN pseudo-syntax Windows and vlmcs offer (bits 0x0003).
pub const BTFN_OFFER: SyntaxId = SyntaxId {
    uuid: uuid::Uuid::from_u128(0x6cb71c2c_9812_4540_0300_000000000000),
    version: 1,
};

/// Fragment size clients announce.
pub const MAX_FRAG: u16 = 5840;

/// What a client offers in its bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindOffer {
    /// Offer NDR64 (context 1).
    pub ndr64: bool,
    /// Offer BTFN (next context).
    pub btfn: bool,
    /// Set PFC_CONC_MPX.
    pub multiplex: bool,
}

impl BindOffer {
    /// The transfer syntaxes the bind offers, in context order (context `i` offers element
    /// `i`): NDR32, then NDR64 if offered, then [`BTFN_OFFER`] if offered. This is the
    /// `offered` list [`check_bind_ack`] needs for the bind's reply.
    pub fn syntaxes(&self) -> Vec<SyntaxId> {
        let mut syntaxes = Vec::with_capacity(3);
        syntaxes.push(NDR32_SYNTAX);
        if self.ndr64 {
            syntaxes.push(NDR64_SYNTAX);
        }
        if self.btfn {
            syntaxes.push(BTFN_OFFER);
        }
        syntaxes
    }
}

/// A reply the client cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The server sent a fault PDU.
    #[error("RPC fault 0x{0:08X}")]
    Fault(u32),
    /// The server refused the bind.
    #[error("bind refused (bind_nak reason {0})")]
    BindNak(u16),
    /// Anything else wrong with a reply.
    #[error("{0}")]
    Protocol(String),
}

fn protocol(msg: impl Into<String>) -> RpcError {
    RpcError::Protocol(msg.into())
}

/// Builds the bind PDU: ctx 0 NDR32, then NDR64 and BTFN if offered.
pub fn bind_pdu(call_id: u32, offer: BindOffer) -> Vec<u8> {
    let contexts = offer
        .syntaxes()
        .into_iter()
        .enumerate()
        .map(|(i, t)| ContextElement {
            context_id: i as u16,
            interface: KMS_INTERFACE,
            transfer_syntaxes: vec![t],
        })
        .collect();
    bind_like(ptype::BIND, call_id, offer.multiplex, contexts)
}

/// Builds the alter_context PDU offering NDR32 on context 0.
pub fn alter_context_pdu(call_id: u32, multiplex: bool) -> Vec<u8> {
    let contexts = vec![ContextElement {
        context_id: 0,
        interface: KMS_INTERFACE,
        transfer_syntaxes: vec![NDR32_SYNTAX],
    }];
    bind_like(ptype::ALTER_CONTEXT, call_id, multiplex, contexts)
}

fn bind_like(pt: u8, call_id: u32, multiplex: bool, contexts: Vec<ContextElement>) -> Vec<u8> {
    let body = BindBody {
        max_xmit_frag: MAX_FRAG,
        max_recv_frag: MAX_FRAG,
        assoc_group_id: 0,
        contexts,
    };
    let flags = PFC_FIRST | PFC_LAST | if multiplex { PFC_CONC_MPX } else { 0 };
    Header::new(pt, flags, call_id).finish(&body.encode())
}

/// What the bind (and alter_context) established.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bound {
    /// Context on which NDR32 was accepted.
    pub ndr32: Option<u16>,
    /// Context on which NDR64 was accepted.
    pub ndr64: Option<u16>,
    /// BTFN was acknowledged.
    pub btfn: bool,
    /// Server's secondary address (port string).
    pub sec_addr: String,
    /// Deviations vlmcs only warns about.
    pub warnings: Vec<String>,
}

/// Checks the common header of a reply; a call_id of 1 where another was sent (Wine's RPC
/// server always answers 1) is accepted with a warning, as vlmcs does.
fn check_header(pdu: &[u8], call_id: u32) -> Result<(Header, Option<String>), RpcError> {
    let h = Header::parse(pdu).map_err(|_| protocol("reply shorter than an RPC header"))?;
    if h.rpc_vers != 5 || h.rpc_vers_minor != 0 {
        return Err(protocol(format!(
            "reply has RPC version {}.{}",
            h.rpc_vers, h.rpc_vers_minor
        )));
    }
    if h.drep != [0x10, 0, 0, 0] {
        return Err(protocol(format!(
            "reply has data representation {:02x?}",
            h.drep
        )));
    }
    if h.auth_length != 0 {
        return Err(protocol("reply carries authentication data"));
    }
    if h.flags & (PFC_FIRST | PFC_LAST) != PFC_FIRST | PFC_LAST {
        return Err(protocol(format!(
            "reply flags 0x{:02x} lack FIRST|LAST",
            h.flags
        )));
    }
    if h.call_id != call_id && h.call_id != 1 {
        return Err(protocol(format!(
            "reply call_id {} does not match {}",
            h.call_id, call_id
        )));
    }
    if h.frag_length as usize != pdu.len() {
        return Err(protocol("reply frag_length does not match its size"));
    }
    if h.ptype == ptype::FAULT {
        let mut r = Reader::new(pdu);
        let status = r
            .skip(24)
            .and_then(|_| r.u32())
            .map_err(|_| protocol("truncated fault PDU"))?;
        return Err(RpcError::Fault(status));
    }
    let warning = (h.call_id != call_id).then(|| {
        format!(
            "reply call_id {} differs from the request's {call_id}",
            h.call_id
        )
    });
    Ok((h, warning))
}

/// Checks a bind_ack (or alter_context_resp) against what was offered and merges the result.
pub fn check_bind_ack(
    pdu: &[u8],
    call_id: u32,
    offered: &[SyntaxId],
    sent_flags_mpx: bool,
    alter: bool,
    bound: &mut Bound,
) -> Result<(), RpcError> {
    let (h, call_id_warning) = check_header(pdu, call_id)?;
    if h.ptype == ptype::BIND_NAK {
        let reason = Reader::new(pdu)
            .skip(16)
            .ok()
            .and_then(|_| Reader::new(&pdu[16..]).u16().ok())
            .unwrap_or(0);
        return Err(RpcError::BindNak(reason));
    }
    let want = if alter {
        ptype::ALTER_CONTEXT_RESP
    } else {
        ptype::BIND_ACK
    };
    if h.ptype != want {
        return Err(protocol(format!(
            "expected PDU type {want}, got {}",
            h.ptype
        )));
    }
    bound.warnings.extend(call_id_warning);
    if !alter && (h.flags & PFC_CONC_MPX != 0) != sent_flags_mpx {
        bound
            .warnings
            .push("multiplex flag of bind_ack differs from the bind".into());
    }
    let (_assoc, addr, results) =
        parse_bind_ack(pdu).map_err(|_| protocol("truncated bind_ack"))?;
    if !alter {
        bound.sec_addr = addr;
    }
    if results.len() != offered.len() {
        return Err(protocol(format!(
            "{} results for {} offered contexts",
            results.len(),
            offered.len()
        )));
    }
    for (ctx, (res, offer)) in results.iter().zip(offered).enumerate() {
        let ctx = ctx as u16;
        if offer.btfn_bits().is_some() {
            if res.result == 3 {
                bound.btfn = true;
                if res.reason != 3 {
                    bound.warnings.push(format!(
                        "BTFN acknowledged with bits {} instead of 3",
                        res.reason
                    ));
                }
            } else if res.result != 2 {
                bound
                    .warnings
                    .push(format!("BTFN answered with result {}", res.result));
            }
            continue;
        }
        match res.result {
            0 => {
                if res.syntax != *offer {
                    return Err(protocol(
                        "accepted transfer syntax differs from the one offered",
                    ));
                }
                if res.reason != 0 {
                    bound
                        .warnings
                        .push("accepted context has a non-zero reason".into());
                }
                if *offer == NDR64_SYNTAX {
                    bound.ndr64 = Some(ctx);
                } else {
                    bound.ndr32 = Some(ctx);
                }
            }
            2 => {
                if res.reason == 1 {
                    return Err(protocol("transfer syntax does not support KMS activation (abstract syntax rejected)"));
                }
                if res.reason != 2
                    || res.syntax.uuid != uuid::Uuid::nil()
                    || res.syntax.version != 0
                {
                    bound
                        .warnings
                        .push("rejected context is not reason 2 with a zero syntax".into());
                }
            }
            other => {
                return Err(protocol(format!(
                    "context result {other} for a transfer syntax"
                )))
            }
        }
    }
    Ok(())
}

/// Builds a request PDU carrying `payload` on `context_id` with `syntax`.
pub fn request(call_id: u32, context_id: u16, syntax: TransferSyntax, payload: &[u8]) -> Vec<u8> {
    request_pdu(call_id, context_id, &encode_request_stub(payload, syntax))
}

/// Checks a response PDU and decodes its stub.
pub fn check_response(
    pdu: &[u8],
    call_id: u32,
    context_id: u16,
    syntax: TransferSyntax,
) -> Result<ResponseStub, RpcError> {
    let (h, call_id_warning) = check_header(pdu, call_id)?;
    if h.ptype != ptype::RESPONSE {
        return Err(protocol(format!(
            "expected a response PDU, got type {}",
            h.ptype
        )));
    }
    let mut r = Reader::new(pdu);
    r.skip(16).map_err(|_| protocol("truncated response"))?;
    let alloc_hint = r.u32().map_err(|_| protocol("truncated response"))?;
    let ctx = r.u16().map_err(|_| protocol("truncated response"))?;
    let cancel = r.u8().map_err(|_| protocol("truncated response"))?;
    if ctx != context_id {
        return Err(protocol(format!(
            "response on context {ctx}, request used {context_id}"
        )));
    }
    if cancel != 0 {
        return Err(protocol("response cancel_count is not 0"));
    }
    // The reserved byte after cancel_count, then the stub (a short PDU is an error, not a panic).
    r.skip(1).map_err(|_| protocol("truncated response"))?;
    let mut stub =
        decode_response_stub(r.rest(), syntax, alloc_hint).map_err(RpcError::Protocol)?;
    stub.warnings.extend(call_id_warning);
    if h.flags & PFC_CONC_MPX != 0 {
        stub.warnings
            .push("multiplex flag set on a response".into());
    }
    Ok(stub)
}
