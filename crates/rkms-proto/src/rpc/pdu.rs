//! PDU header and bodies: parsing what clients send, building what servers send (§2.1–2.11).

use uuid::Uuid;

use crate::wire::{PutLe, Reader, Truncated};

/// PDU types used by KMS.
pub mod ptype {
    /// request
    pub const REQUEST: u8 = 0;
    /// response
    pub const RESPONSE: u8 = 2;
    /// fault
    pub const FAULT: u8 = 3;
    /// bind
    pub const BIND: u8 = 11;
    /// bind_ack
    pub const BIND_ACK: u8 = 12;
    /// bind_nak
    pub const BIND_NAK: u8 = 13;
    /// alter_context
    pub const ALTER_CONTEXT: u8 = 14;
    /// alter_context_resp
    pub const ALTER_CONTEXT_RESP: u8 = 15;
    /// co_cancel
    pub const CO_CANCEL: u8 = 18;
    /// orphaned
    pub const ORPHANED: u8 = 19;
}

/// NCA fault status codes (§2.11).
pub mod fault_status {
    /// Operation number out of range.
    pub const OP_RNG_ERROR: u32 = 0x1C01_0002;
    /// Unknown interface / unbound context.
    pub const UNK_IF: u32 = 0x1C01_0003;
    /// Protocol error.
    pub const PROTO_ERROR: u32 = 0x1C01_000B;
    /// The stub data cannot be decoded.
    pub const BAD_STUB_DATA: u32 = 0x0000_06F7;
}

/// PFC_FIRST_FRAG.
pub const PFC_FIRST: u8 = 0x01;
/// PFC_LAST_FRAG.
pub const PFC_LAST: u8 = 0x02;
/// PFC_CONC_MPX.
pub const PFC_CONC_MPX: u8 = 0x10;
/// PFC_DID_NOT_EXECUTE.
pub const PFC_DID_NOT_EXECUTE: u8 = 0x20;
/// PFC_OBJECT_UUID.
pub const PFC_OBJECT_UUID: u8 = 0x80;
/// Little-endian, ASCII, IEEE data representation.
pub const DREP_LE: [u8; 4] = [0x10, 0, 0, 0];

/// A syntax identifier: UUID and version (major in the low 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxId {
    /// Interface or transfer-syntax UUID.
    pub uuid: Uuid,
    /// Version as on the wire (u32: major | minor << 16).
    pub version: u32,
}

/// The KMS interface, version 1.0.
pub const KMS_INTERFACE: SyntaxId = SyntaxId {
    uuid: Uuid::from_u128(0x51c82175_844e_4750_b0d8_ec255555bc06),
    version: 1,
};
/// NDR 2.0.
pub const NDR32_SYNTAX: SyntaxId = SyntaxId {
    uuid: Uuid::from_u128(0x8a885d04_1ceb_11c9_9fe8_08002b104860),
    version: 2,
};
/// NDR64 1.0.
pub const NDR64_SYNTAX: SyntaxId = SyntaxId {
    uuid: Uuid::from_u128(0x71710533_beba_4937_8319_b5dbef9ccc36),
    version: 1,
};
/// First 8 wire bytes of a bind-time feature negotiation pseudo-syntax.
pub const BTFN_PREFIX: [u8; 8] = [0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45];

impl SyntaxId {
    fn read(r: &mut Reader) -> Result<Self, Truncated> {
        Ok(SyntaxId {
            uuid: r.guid()?,
            version: r.u32()?,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_guid(&self.uuid);
        out.put_u32(self.version);
    }

    /// Whether this is a BTFN pseudo-syntax, and its feature bitmask (wire bytes 8–9).
    pub fn btfn_bits(&self) -> Option<u16> {
        let b = self.uuid.to_bytes_le();
        (b[..8] == BTFN_PREFIX).then(|| u16::from_le_bytes([b[8], b[9]]))
    }
}

/// The 16-byte common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// RPC major version (5).
    pub rpc_vers: u8,
    /// RPC minor version (0).
    pub rpc_vers_minor: u8,
    /// PDU type.
    pub ptype: u8,
    /// PFC flags.
    pub flags: u8,
    /// Data representation.
    pub drep: [u8; 4],
    /// Total PDU length.
    pub frag_length: u16,
    /// Authentication verifier length.
    pub auth_length: u16,
    /// Call identifier.
    pub call_id: u32,
}

impl Header {
    /// Parses the header at the start of a PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(pdu);
        Ok(Header {
            rpc_vers: r.u8()?,
            rpc_vers_minor: r.u8()?,
            ptype: r.u8()?,
            flags: r.u8()?,
            drep: r.array()?,
            frag_length: r.u16()?,
            auth_length: r.u16()?,
            call_id: r.u32()?,
        })
    }

    /// A header for a PDU this side sends: version 5.0, little-endian, no auth.
    pub fn new(ptype: u8, flags: u8, call_id: u32) -> Self {
        Header {
            rpc_vers: 5,
            rpc_vers_minor: 0,
            ptype,
            flags,
            drep: DREP_LE,
            frag_length: 0,
            auth_length: 0,
            call_id,
        }
    }

    /// Whether the version is 5.0 and the data representation little-endian/ASCII/IEEE.
    pub fn is_v5_le(&self) -> bool {
        self.rpc_vers == 5 && self.rpc_vers_minor == 0 && self.drep[0] == 0x10 && self.drep[1] == 0
    }

    /// Writes the header followed by `body`, filling in `frag_length`.
    pub fn finish(&self, body: &[u8]) -> Vec<u8> {
        let mut out = self.start(body.len());
        out.extend_from_slice(body);
        set_frag_length(&mut out);
        out
    }

    /// A PDU buffer holding this header (`frag_length` still 0), with room for `body_len` more
    /// bytes; the body is appended to it and [`set_frag_length`] called last.
    pub(crate) fn start(&self, body_len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + body_len);
        out.extend_from_slice(&[self.rpc_vers, self.rpc_vers_minor, self.ptype, self.flags]);
        out.extend_from_slice(&self.drep);
        out.put_u16(0);
        out.put_u16(self.auth_length);
        out.put_u32(self.call_id);
        out
    }
}

/// Sets the `frag_length` of a PDU started with [`Header::start`] to its current length.
pub(crate) fn set_frag_length(pdu: &mut [u8]) {
    let len = pdu.len() as u16;
    pdu[8..10].copy_from_slice(&len.to_le_bytes());
}

/// One presentation context element of a bind or alter_context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextElement {
    /// Context id chosen by the client.
    pub context_id: u16,
    /// Abstract syntax (interface).
    pub interface: SyntaxId,
    /// Transfer syntaxes offered, in order.
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// The body of a bind or alter_context PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindBody {
    /// Client's maximum send fragment.
    pub max_xmit_frag: u16,
    /// Client's maximum receive fragment.
    pub max_recv_frag: u16,
    /// Association group requested.
    pub assoc_group_id: u32,
    /// Context elements.
    pub contexts: Vec<ContextElement>,
}

impl BindBody {
    /// Parses the body of a bind/alter_context PDU (`pdu` includes the header).
    pub fn parse(pdu: &[u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(pdu);
        r.skip(16)?;
        let max_xmit_frag = r.u16()?;
        let max_recv_frag = r.u16()?;
        let assoc_group_id = r.u32()?;
        let n = r.u8()?;
        r.skip(3)?;
        let mut contexts = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let context_id = r.u16()?;
            let n_syn = r.u8()?;
            r.skip(1)?;
            let interface = SyntaxId::read(&mut r)?;
            let mut transfer_syntaxes = Vec::with_capacity(n_syn as usize);
            for _ in 0..n_syn {
                transfer_syntaxes.push(SyntaxId::read(&mut r)?);
            }
            contexts.push(ContextElement {
                context_id,
                interface,
                transfer_syntaxes,
            });
        }
        Ok(BindBody {
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            contexts,
        })
    }

    /// Serialises the body (client side).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u16(self.max_xmit_frag);
        out.put_u16(self.max_recv_frag);
        out.put_u32(self.assoc_group_id);
        out.extend_from_slice(&[self.contexts.len() as u8, 0, 0, 0]);
        for c in &self.contexts {
            out.put_u16(c.context_id);
            out.extend_from_slice(&[c.transfer_syntaxes.len() as u8, 0]);
            c.interface.write(&mut out);
            for t in &c.transfer_syntaxes {
                t.write(&mut out);
            }
        }
        out
    }
}

/// One result of a bind_ack / alter_context_resp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextResult {
    /// 0 acceptance, 2 provider rejection, 3 negotiate_ack.
    pub result: u16,
    /// Provider reason, or BTFN bits for negotiate_ack.
    pub reason: u16,
    /// Accepted transfer syntax, or zero.
    pub syntax: SyntaxId,
}

/// Builds a bind_ack (`sec_addr` = local port) or alter_context_resp (`sec_addr` = None) body.
pub(crate) fn bind_ack_body(
    max_xmit: u16,
    max_recv: u16,
    assoc_group: u32,
    sec_addr: Option<u16>,
    results: &[ContextResult],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + 24 * results.len());
    out.put_u16(max_xmit);
    out.put_u16(max_recv);
    out.put_u32(assoc_group);
    match sec_addr {
        Some(port) => {
            let s = port.to_string();
            out.put_u16(s.len() as u16 + 1);
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        None => out.put_u16(0),
    }
    // Pad so the results start 4-aligned from the start of the PDU (body starts at 16).
    let pad = (4 - (16 + out.len()) % 4) % 4;
    out.resize(out.len() + pad, 0);
    out.extend_from_slice(&[results.len() as u8, 0, 0, 0]);
    for r in results {
        out.put_u16(r.result);
        out.put_u16(r.reason);
        r.syntax.write(&mut out);
    }
    out
}

/// Parses the results of a bind_ack/alter_context_resp (client side), with the sec_addr port.
pub(crate) fn parse_bind_ack(pdu: &[u8]) -> Result<(u32, String, Vec<ContextResult>), Truncated> {
    let mut r = Reader::new(pdu);
    r.skip(16 + 4)?;
    let assoc = r.u32()?;
    let len = r.u16()? as usize;
    let addr = r.bytes(len)?;
    let addr = String::from_utf8_lossy(addr.strip_suffix(&[0]).unwrap_or(addr)).into_owned();
    r.align(4)?;
    let n = r.u8()?;
    r.skip(3)?;
    let mut results = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let result = r.u16()?;
        let reason = r.u16()?;
        let syntax = SyntaxId::read(&mut r)?;
        results.push(ContextResult {
            result,
            reason,
            syntax,
        });
    }
    Ok((assoc, addr, results))
}

/// A complete fault PDU (§2.11).
pub(crate) fn fault_pdu(call_id: u32, context_id: u16, status: u32) -> Vec<u8> {
    let mut out = Header::new(
        ptype::FAULT,
        PFC_FIRST | PFC_LAST | PFC_DID_NOT_EXECUTE,
        call_id,
    )
    .start(16);
    out.put_u32(32);
    out.put_u16(context_id);
    out.extend_from_slice(&[0, 0]);
    out.put_u32(status);
    out.put_u32(0);
    set_frag_length(&mut out);
    out
}

/// A complete bind_nak PDU (§2.8).
pub(crate) fn bind_nak_pdu(call_id: u32, reason: u16) -> Vec<u8> {
    let mut out = Header::new(ptype::BIND_NAK, PFC_FIRST | PFC_LAST, call_id).start(5);
    out.put_u16(reason);
    out.extend_from_slice(&[1, 5, 0]);
    set_frag_length(&mut out);
    out
}

/// A complete response PDU whose stub, of at most `stub_capacity` bytes, `write_stub`
/// appends: header, body and stub are written into one buffer; `alloc_hint` and
/// `frag_length` are filled in from the stub's actual length.
pub(crate) fn response_pdu(
    call_id: u32,
    context_id: u16,
    stub_capacity: usize,
    write_stub: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut out =
        Header::new(ptype::RESPONSE, PFC_FIRST | PFC_LAST, call_id).start(8 + stub_capacity);
    out.put_u32(0); // alloc_hint, set below
    out.put_u16(context_id);
    out.extend_from_slice(&[0, 0]);
    write_stub(&mut out);
    let stub_len = (out.len() - 24) as u32;
    out[16..20].copy_from_slice(&stub_len.to_le_bytes());
    set_frag_length(&mut out);
    out
}

/// A parsed request PDU body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestBody<'a> {
    pub context_id: u16,
    pub opnum: u16,
    pub stub: &'a [u8],
}

/// Parses a request PDU (`pdu` includes the header); `None` if its lengths are inconsistent.
pub(crate) fn parse_request<'a>(pdu: &'a [u8], h: &Header) -> Option<RequestBody<'a>> {
    let mut r = Reader::new(pdu);
    r.skip(16 + 4).ok()?;
    let context_id = r.u16().ok()?;
    let opnum = r.u16().ok()?;
    if h.flags & PFC_OBJECT_UUID != 0 {
        r.skip(16).ok()?;
    }
    let auth = h.auth_length as usize;
    let trailer = if auth > 0 { auth + 8 } else { 0 };
    let end = (h.frag_length as usize)
        .min(pdu.len())
        .checked_sub(trailer)?;
    let start = r.position();
    let stub = pdu.get(start..end.max(start))?;
    Some(RequestBody {
        context_id,
        opnum,
        stub,
    })
}

/// Builds a request PDU (client side).
pub(crate) fn request_pdu(call_id: u32, context_id: u16, stub: &[u8]) -> Vec<u8> {
    let mut out = Header::new(ptype::REQUEST, PFC_FIRST | PFC_LAST, call_id).start(8 + stub.len());
    out.put_u32(stub.len() as u32);
    out.put_u16(context_id);
    out.put_u16(0);
    out.extend_from_slice(stub);
    set_frag_length(&mut out);
    out
}
