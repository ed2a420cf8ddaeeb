//! The server's per-connection RPC state machine: one complete PDU in, at most one reply out.
//!
//! It remembers the contexts bound on the connection and any request being reassembled from
//! fragments; everything else (sockets, timeouts) belongs to the caller.
//!
//! Presentation contexts accumulate across bind and alter_context (MS-RPCE 3.3.2.4.1.3: a new
//! context is added to the connection's list; earlier ones stay usable), up to
//! [`MAX_CONTEXTS`] per connection.

use rand_core::RngCore;

use super::ndr::{
    decode_request_stub, response_stub_capacity, write_error_stub, write_response_stub_with,
};
use super::pdu::{
    bind_ack_body, bind_nak_pdu, fault_pdu, fault_status, parse_request, ptype, response_pdu,
    BindBody, ContextResult, Header, SyntaxId, KMS_INTERFACE, NDR32_SYNTAX, NDR64_SYNTAX,
    PFC_CONC_MPX, PFC_FIRST, PFC_LAST,
};
use super::TransferSyntax;
use crate::kms::{handle_request_into, max_response_len, KmsHost, Refusal};

/// Per-connection RPC settings.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Accept NDR64 (and prefer it over NDR32 in a bind that offers both).
    pub ndr64: bool,
    /// Answer bind-time feature negotiation.
    pub btfn: bool,
    /// Largest request stub reassembled from fragments, in bytes.
    pub max_call_size: usize,
    /// Local TCP port, sent as the bind_ack secondary address.
    pub local_port: u16,
    /// Association group id for this connection (non-zero).
    pub assoc_group: u32,
}

/// Why the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The PDU's header or body could not be parsed.
    #[error("malformed {what} PDU")]
    Malformed {
        /// Which PDU.
        what: &'static str,
    },
    /// A PDU type this host does not handle.
    #[error("unsupported PDU type {0}")]
    UnsupportedPtype(u8),
    /// A fragmented call grew past the limit.
    #[error("fragmented call exceeds {0} bytes")]
    CallTooLarge(usize),
}

/// What happened with one PDU, for the caller's logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A bind or alter_context was answered.
    Bound {
        /// alter_context rather than bind.
        alter: bool,
        /// Contexts now usable for NDR32 / NDR64.
        ndr32: Option<u16>,
        /// See above.
        ndr64: Option<u16>,
        /// BTFN was acknowledged.
        btfn: bool,
    },
    /// A bind was refused with bind_nak.
    BindNak {
        /// Reject reason sent.
        reason: u16,
        /// Why.
        why: &'static str,
    },
    /// A KMS request was answered (with a response or an HRESULT).
    Kms {
        /// Syntax used.
        syntax: TransferSyntax,
        /// Ok, or the refusal sent.
        result: Result<(), Refusal>,
    },
    /// A fault PDU was sent.
    Fault {
        /// NCA status sent.
        status: u32,
        /// Why.
        why: &'static str,
    },
    /// A request fragment was buffered; nothing is sent yet.
    FragmentBuffered,
    /// A PDU was ignored (co_cancel, orphaned).
    Ignored(u8),
    /// The connection must be closed; nothing is sent.
    Close(CloseReason),
}

/// The result of handling one PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Bytes to send, as one write.
    pub reply: Option<Vec<u8>>,
    /// What happened.
    pub event: Event,
}

struct Reassembly {
    call_id: u32,
    context_id: u16,
    opnum: u16,
    stub: Vec<u8>,
}

/// Presentation contexts kept per connection; a new one beyond this is refused with
/// provider reason 3 (local_limit_exceeded).
pub const MAX_CONTEXTS: usize = 16;

/// `p_provider_reason_t` local_limit_exceeded.
const REASON_LOCAL_LIMIT: u16 = 3;

/// RPC state of one server connection.
pub struct ServerConnection {
    cfg: RpcConfig,
    /// Every usable context id with its transfer syntax, in the order they were added.
    contexts: Vec<(u16, TransferSyntax)>,
    reassembly: Option<Reassembly>,
}

const ZERO_SYNTAX: SyntaxId = SyntaxId {
    uuid: uuid::Uuid::nil(),
    version: 0,
};

impl ServerConnection {
    /// A fresh connection with nothing bound.
    pub fn new(cfg: RpcConfig) -> Self {
        ServerConnection {
            cfg,
            contexts: Vec::new(),
            reassembly: None,
        }
    }

    /// Handles one complete PDU (as delimited by [`super::complete_pdu_len`]).
    pub fn handle_pdu(
        &mut self,
        pdu: &[u8],
        host: &mut dyn KmsHost,
        rng: &mut dyn RngCore,
    ) -> Output {
        let Ok(h) = Header::parse(pdu) else {
            return close(CloseReason::Malformed { what: "header" });
        };
        match h.ptype {
            ptype::BIND | ptype::ALTER_CONTEXT => self.bind(pdu, &h),
            ptype::REQUEST => self.request(pdu, &h, host, rng),
            ptype::CO_CANCEL | ptype::ORPHANED => Output {
                reply: None,
                event: Event::Ignored(h.ptype),
            },
            other => close(CloseReason::UnsupportedPtype(other)),
        }
    }

    fn bind(&mut self, pdu: &[u8], h: &Header) -> Output {
        let alter = h.ptype == ptype::ALTER_CONTEXT;
        let what = if alter { "alter_context" } else { "bind" };
        if !h.is_v5_le() || h.auth_length != 0 {
            let (reason, why) = if h.auth_length != 0 {
                (8, "authentication requested")
            } else if h.rpc_vers != 5 || h.rpc_vers_minor != 0 {
                (4, "RPC protocol version is not 5.0")
            } else {
                (0, "unsupported data representation")
            };
            if alter {
                return fault(h.call_id, 0, fault_status::PROTO_ERROR, why);
            }
            return Output {
                reply: Some(bind_nak_pdu(h.call_id, reason)),
                event: Event::BindNak { reason, why },
            };
        }
        let Ok(body) = BindBody::parse(pdu) else {
            return close(CloseReason::Malformed { what });
        };
        let ndr64_possible = self.cfg.ndr64
            && body
                .contexts
                .iter()
                .any(|c| c.transfer_syntaxes.contains(&NDR64_SYNTAX));
        let mut btfn_acked = false;
        let results: Vec<ContextResult> = body
            .contexts
            .iter()
            .map(|c| {
                let kms = c.interface == KMS_INTERFACE;
                let per_syntax: Vec<ContextResult> = c
                    .transfer_syntaxes
                    .iter()
                    .map(|t| self.evaluate(kms, t, ndr64_possible))
                    .collect();
                let chosen = per_syntax
                    .iter()
                    .find(|r| r.result == 0 || r.result == 3)
                    .copied();
                let mut result = chosen
                    .or(per_syntax.first().copied())
                    .unwrap_or(ContextResult {
                        result: 2,
                        reason: if kms { 2 } else { 1 },
                        syntax: ZERO_SYNTAX,
                    });
                if result.result == 0 {
                    let syntax = if result.syntax == NDR64_SYNTAX {
                        TransferSyntax::Ndr64
                    } else {
                        TransferSyntax::Ndr32
                    };
                    if !self.remember(c.context_id, syntax, true) {
                        result = ContextResult {
                            result: 2,
                            reason: REASON_LOCAL_LIMIT,
                            syntax: ZERO_SYNTAX,
                        };
                    }
                } else if kms && c.transfer_syntaxes.contains(&NDR32_SYNTAX) {
                    // NDR32 refused because NDR64 is preferred: still served on this context
                    // (lenient, as vlmcsd), unless the id is already bound or the list is full.
                    self.remember(c.context_id, TransferSyntax::Ndr32, false);
                }
                btfn_acked |= result.result == 3;
                result
            })
            .collect();
        let (reply_type, flags, sec_addr) = if alter {
            (ptype::ALTER_CONTEXT_RESP, PFC_FIRST | PFC_LAST, None)
        } else {
            (
                ptype::BIND_ACK,
                PFC_FIRST | PFC_LAST | (h.flags & PFC_CONC_MPX),
                Some(self.cfg.local_port),
            )
        };
        let reply = Header::new(reply_type, flags, h.call_id).finish(&bind_ack_body(
            body.max_xmit_frag,
            body.max_recv_frag,
            self.cfg.assoc_group,
            sec_addr,
            &results,
        ));
        Output {
            reply: Some(reply),
            event: Event::Bound {
                alter,
                ndr32: self.latest(TransferSyntax::Ndr32),
                ndr64: self.latest(TransferSyntax::Ndr64),
                btfn: btfn_acked,
            },
        }
    }

    /// Adds `id` with `syntax` to the connection's contexts; an id already there is replaced
    /// when `replace`, else left as it is. False when the list is full and `id` is new.
    fn remember(&mut self, id: u16, syntax: TransferSyntax, replace: bool) -> bool {
        if let Some(entry) = self.contexts.iter_mut().find(|(c, _)| *c == id) {
            if replace {
                entry.1 = syntax;
            }
            return true;
        }
        if self.contexts.len() >= MAX_CONTEXTS {
            return false;
        }
        self.contexts.push((id, syntax));
        true
    }

    /// The context most recently added with `syntax`, for the logs.
    fn latest(&self, syntax: TransferSyntax) -> Option<u16> {
        self.contexts
            .iter()
            .rev()
            .find(|(_, s)| *s == syntax)
            .map(|(id, _)| *id)
    }

    /// The transfer syntax of a bound context.
    fn syntax_of(&self, id: u16) -> Option<TransferSyntax> {
        self.contexts
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, s)| *s)
    }

    /// One row of the §2.6 table.
    fn evaluate(&self, kms: bool, t: &SyntaxId, ndr64_possible: bool) -> ContextResult {
        let accept = |syntax| ContextResult {
            result: 0,
            reason: 0,
            syntax,
        };
        let reject = |reason| ContextResult {
            result: 2,
            reason,
            syntax: ZERO_SYNTAX,
        };
        if kms && *t == NDR32_SYNTAX && !ndr64_possible {
            return accept(NDR32_SYNTAX);
        }
        if kms && *t == NDR64_SYNTAX && self.cfg.ndr64 {
            return accept(NDR64_SYNTAX);
        }
        if let Some(bits) = t.btfn_bits() {
            if self.cfg.btfn {
                return ContextResult {
                    result: 3,
                    reason: bits & 0x0003,
                    syntax: ZERO_SYNTAX,
                };
            }
            return reject(2);
        }
        if kms || *t == NDR64_SYNTAX {
            return reject(2);
        }
        reject(1)
    }

    fn request(
        &mut self,
        pdu: &[u8],
        h: &Header,
        host: &mut dyn KmsHost,
        rng: &mut dyn RngCore,
    ) -> Output {
        let Some(body) = parse_request(pdu, h) else {
            return close(CloseReason::Malformed { what: "request" });
        };
        if !h.is_v5_le() {
            return fault(
                h.call_id,
                body.context_id,
                fault_status::PROTO_ERROR,
                "RPC version is not 5.0 or data representation is not little-endian",
            );
        }
        let Some(syntax) = self.syntax_of(body.context_id) else {
            self.reassembly = None;
            return fault(
                h.call_id,
                body.context_id,
                fault_status::UNK_IF,
                "request on an unbound context",
            );
        };
        if body.opnum != 0 {
            self.reassembly = None;
            return fault(
                h.call_id,
                body.context_id,
                fault_status::OP_RNG_ERROR,
                "operation number is not 0",
            );
        }
        let first = h.flags & PFC_FIRST != 0;
        let last = h.flags & PFC_LAST != 0;
        let stub_owned;
        let stub: &[u8] = if first && last {
            self.reassembly = None;
            body.stub
        } else {
            if first {
                self.reassembly = Some(Reassembly {
                    call_id: h.call_id,
                    context_id: body.context_id,
                    opnum: body.opnum,
                    stub: Vec::new(),
                });
            }
            let Some(re) = self.reassembly.as_mut().filter(|re| {
                re.call_id == h.call_id
                    && re.context_id == body.context_id
                    && re.opnum == body.opnum
            }) else {
                self.reassembly = None;
                return fault(
                    h.call_id,
                    body.context_id,
                    fault_status::PROTO_ERROR,
                    "request fragment without its first fragment",
                );
            };
            if re.stub.len() + body.stub.len() > self.cfg.max_call_size {
                self.reassembly = None;
                return close(CloseReason::CallTooLarge(self.cfg.max_call_size));
            }
            re.stub.extend_from_slice(body.stub);
            if !last {
                return Output {
                    reply: None,
                    event: Event::FragmentBuffered,
                };
            }
            stub_owned = self.reassembly.take().map(|r| r.stub).unwrap_or_default();
            &stub_owned
        };
        let payload = match decode_request_stub(stub, syntax) {
            Ok(p) => p,
            Err(_) => {
                return fault(
                    h.call_id,
                    body.context_id,
                    fault_status::BAD_STUB_DATA,
                    "request stub too short for its NDR header",
                )
            }
        };
        // The KMS response is built in the reply itself (one buffer, no copy); a refusal
        // replaces what was begun with the error stub.
        let mut result = Ok(());
        let reply = response_pdu(
            h.call_id,
            body.context_id,
            response_stub_capacity(max_response_len()),
            |out| {
                let stub = out.len();
                if let Err(refusal) = write_response_stub_with(out, syntax, |out| {
                    handle_request_into(payload, host, rng, out)
                }) {
                    out.truncate(stub);
                    write_error_stub(out, refusal.hresult, syntax);
                    result = Err(refusal);
                }
            },
        );
        Output {
            reply: Some(reply),
            event: Event::Kms { syntax, result },
        }
    }
}

fn close(reason: CloseReason) -> Output {
    Output {
        reply: None,
        event: Event::Close(reason),
    }
}

fn fault(call_id: u32, context_id: u16, status: u32, why: &'static str) -> Output {
    Output {
        reply: Some(fault_pdu(call_id, context_id, status)),
        event: Event::Fault { status, why },
    }
}
