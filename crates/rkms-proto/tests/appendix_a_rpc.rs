//! PROTOCOL.md Appendix A.5: RPC PDUs produced byte for byte by the server state machine, and
//! the §2.6 negotiation table.

mod common;

use common::{appendix, ScriptedRng};
use rkms_proto::kms::{DecodedRequest, HResult, HostAnswer, KmsHost};
use rkms_proto::rpc::client::{alter_context_pdu, bind_pdu, BindOffer};
use rkms_proto::rpc::{CloseReason, Event, Output, RpcConfig, ServerConnection};

struct VectorHost;

impl KmsHost for VectorHost {
    fn answer(&mut self, _: &DecodedRequest) -> Result<HostAnswer, HResult> {
        Ok(HostAnswer {
            epid: "03612-00206-556-123727-03-1033-17763.0000-2972018".into(),
            hwid: [0x3a, 0x1c, 0x04, 0x96, 0x00, 0xb6, 0x00, 0x76],
            current_count: 50,
            activation_interval: 120,
            renewal_interval: 10080,
        })
    }
}

fn conn(ndr64: bool, btfn: bool) -> ServerConnection {
    ServerConnection::new(RpcConfig {
        ndr64,
        btfn,
        max_call_size: 4096,
        local_port: 1688,
        assoc_group: 0x05a9_7e71,
    })
}

fn feed(c: &mut ServerConnection, pdu: &[u8]) -> Output {
    c.handle_pdu(
        pdu,
        &mut VectorHost,
        &mut ScriptedRng::new(&[&[0x22; 16], &[0x33; 16]]),
    )
}

fn reply(c: &mut ServerConnection, pdu: &[u8]) -> Vec<u8> {
    feed(c, pdu).reply.expect("a reply")
}

#[test]
fn full_exchange_ndr64_and_btfn() {
    let mut c = conn(true, true);
    assert_eq!(
        reply(&mut c, &appendix("a5-bind")),
        appendix("a5-bind-ack-ndr64")
    );
    assert_eq!(
        reply(&mut c, &appendix("a5-alter-context")),
        appendix("a5-alter-context-resp")
    );
    assert_eq!(
        reply(&mut c, &appendix("a5-request-ndr32")),
        appendix("a5-response-ndr32")
    );
    assert_eq!(
        reply(&mut c, &appendix("a5-request-ndr64")),
        appendix("a5-response-ndr64")
    );
}

#[test]
fn ndr64_disabled_accepts_ndr32_in_bind() {
    let mut c = conn(false, true);
    assert_eq!(
        reply(&mut c, &appendix("a5-bind")),
        appendix("a5-bind-ack-no-ndr64")
    );
    assert_eq!(
        reply(&mut c, &appendix("a5-request-ndr32")),
        appendix("a5-response-ndr32")
    );
    // NDR64 was rejected: a request on context 1 is a fault.
    let out = feed(&mut c, &appendix("a5-request-ndr64"));
    assert!(matches!(
        out.event,
        Event::Fault {
            status: 0x1C01_0003,
            ..
        }
    ));
}

#[test]
fn client_builders_match_the_vectors() {
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: true,
    };
    assert_eq!(bind_pdu(2, offer), appendix("a5-bind"));
    assert_eq!(alter_context_pdu(2, true), appendix("a5-alter-context"));
}

#[test]
fn error_stubs_for_unsupported_version() {
    let mut c = conn(true, true);
    reply(&mut c, &appendix("a5-bind"));
    reply(&mut c, &appendix("a5-alter-context"));
    let mut v7 = appendix("a5-request-ndr32");
    v7[24 + 8 + 2] = 7;
    assert_eq!(reply(&mut c, &v7), appendix("a5-error-ndr32"));
    let mut v7 = appendix("a5-request-ndr64");
    v7[24 + 16 + 2] = 7;
    assert_eq!(reply(&mut c, &v7), appendix("a5-error-ndr64"));
}

#[test]
fn fault_for_request_without_bind() {
    let mut c = conn(true, true);
    let mut rq = appendix("a5-request-ndr32");
    rq[12] = 3; // call_id 3
    assert_eq!(reply(&mut c, &rq), appendix("a5-fault-unk-if"));
}

fn bind_with(offers: &[(u128, u32)], iface: u128) -> Vec<u8> {
    use rkms_proto::rpc::{BindBody, ContextElement, Header, SyntaxId};
    let contexts = offers
        .iter()
        .enumerate()
        .map(|(i, (u, v))| ContextElement {
            context_id: i as u16,
            interface: SyntaxId {
                uuid: uuid::Uuid::from_u128(iface),
                version: 1,
            },
            transfer_syntaxes: vec![SyntaxId {
                uuid: uuid::Uuid::from_u128(*u),
                version: *v,
            }],
        })
        .collect();
    let body = BindBody {
        max_xmit_frag: 5840,
        max_recv_frag: 5840,
        assoc_group_id: 0,
        contexts,
    };
    Header::new(11, 3, 1).finish(&body.encode())
}

/// (result, reason) of each context in a bind_ack.
fn results(ack: &[u8], n: usize) -> Vec<(u16, u16)> {
    let start = ack.len() - 24 * n;
    (0..n)
        .map(|i| {
            let o = start + 24 * i;
            (
                u16::from_le_bytes([ack[o], ack[o + 1]]),
                u16::from_le_bytes([ack[o + 2], ack[o + 3]]),
            )
        })
        .collect()
}

const KMS: u128 = 0x51c82175_844e_4750_b0d8_ec255555bc06;
const NDR32: (u128, u32) = (0x8a885d04_1ceb_11c9_9fe8_08002b104860, 2);
const NDR64: (u128, u32) = (0x71710533_beba_4937_8319_b5dbef9ccc36, 1);
const BTFN: (u128, u32) = (0x6cb71c2c_9812_4540_0300_000000000000, 1);

#[test]
fn negotiation_table_section_2_6() {
    type Case<'a> = (bool, bool, &'a [(u128, u32)], &'a [(u16, u16)]);
    let cases: &[Case] = &[
        (true, true, &[NDR32, NDR64, BTFN], &[(2, 2), (0, 0), (3, 3)]),
        (
            false,
            true,
            &[NDR32, NDR64, BTFN],
            &[(0, 0), (2, 2), (3, 3)],
        ),
        (
            false,
            false,
            &[NDR32, NDR64, BTFN],
            &[(0, 0), (2, 2), (2, 2)],
        ),
        (true, true, &[NDR32, BTFN], &[(0, 0), (3, 3)]),
        (true, false, &[NDR32, BTFN], &[(0, 0), (2, 2)]),
        (true, true, &[NDR32], &[(0, 0)]),
        (true, true, &[(0x1234, 1)], &[(2, 2)]),
    ];
    for (ndr64, btfn, offers, want) in cases {
        let mut c = conn(*ndr64, *btfn);
        let ack = reply(&mut c, &bind_with(offers, KMS));
        assert_eq!(
            results(&ack, offers.len()),
            *want,
            "ndr64={ndr64} btfn={btfn} offers={offers:x?}"
        );
    }
    // Unknown interface: abstract syntax not supported, and nothing is bound.
    let mut c = conn(true, true);
    let ack = reply(&mut c, &bind_with(&[NDR32], 0xdead_beef));
    assert_eq!(results(&ack, 1), vec![(2, 1)]);
    let out = feed(&mut c, &appendix("a5-request-ndr32"));
    assert!(matches!(
        out.event,
        Event::Fault {
            status: 0x1C01_0003,
            ..
        }
    ));
}

#[test]
fn bind_ack_mirrors_multiplex_flag_and_port_padding() {
    let mut c = ServerConnection::new(RpcConfig {
        ndr64: true,
        btfn: true,
        max_call_size: 4096,
        local_port: 7,
        assoc_group: 9,
    });
    let mut bind = appendix("a5-bind");
    bind[3] = 0x03;
    let ack = reply(&mut c, &bind);
    assert_eq!(ack[3], 0x03);
    // Port "7": length 2, "7\0" ends at offset 28, already 4-aligned: results start at 28.
    assert_eq!(&ack[24..28], &[2, 0, b'7', 0]);
    assert_eq!(ack[28], 3);
    assert_eq!(ack.len(), 32 + 24 * 3);
}

#[test]
fn bad_pdus_get_nak_fault_or_close() {
    // Bind with RPC version 4.0 → bind_nak, reason 4.
    let mut c = conn(true, true);
    let mut bind = appendix("a5-bind");
    bind[0] = 4;
    let nak = reply(&mut c, &bind);
    assert_eq!(
        nak,
        vec![5, 0, 13, 3, 0x10, 0, 0, 0, 21, 0, 0, 0, 2, 0, 0, 0, 4, 0, 1, 5, 0]
    );
    // Truncated bind body → close.
    let mut short = appendix("a5-bind")[..100].to_vec();
    short[8] = 100;
    assert!(matches!(
        feed(&mut c, &short).event,
        Event::Close(CloseReason::Malformed { .. })
    ));
    // Unknown PDU type → close; co_cancel ignored.
    let mut ping = appendix("a5-fault-unk-if")[..16].to_vec();
    ping[2] = 1;
    ping[8] = 16;
    assert!(matches!(
        feed(&mut c, &ping).event,
        Event::Close(CloseReason::UnsupportedPtype(1))
    ));
    ping[2] = 18;
    assert_eq!(
        feed(&mut c, &ping),
        Output {
            reply: None,
            event: Event::Ignored(18)
        }
    );
    // Bad opnum → op_rng_error fault.
    let mut c = conn(true, true);
    reply(&mut c, &appendix("a5-bind"));
    reply(&mut c, &appendix("a5-alter-context"));
    let mut rq = appendix("a5-request-ndr32");
    rq[22] = 1;
    let f = reply(&mut c, &rq);
    assert_eq!(&f[24..28], &0x1C01_0002u32.to_le_bytes());
    assert_eq!(f[3], 0x23);
    // Stub shorter than its NDR header → bad stub data fault; short KMS body → 0x8007000D.
    let mut tiny = appendix("a5-request-ndr32")[..30].to_vec();
    tiny[8] = 30;
    tiny[9] = 0;
    assert!(matches!(
        feed(&mut c, &tiny).event,
        Event::Fault { status: 0x6F7, .. }
    ));
    let mut short_kms = appendix("a5-request-ndr32")[..132].to_vec();
    short_kms[8] = 132;
    short_kms[9] = 0;
    let r = reply(&mut c, &short_kms);
    assert_eq!(&r[32..36], &0x8007_000Du32.to_le_bytes());
}

#[test]
fn fragmented_request_is_reassembled_within_bound() {
    let full = appendix("a5-request-ndr32");
    let stub = &full[24..];
    let frag = |flags: u8, part: &[u8]| {
        let mut p = full[..24].to_vec();
        p[3] = flags;
        p.extend_from_slice(part);
        let len = p.len() as u16;
        p[8..10].copy_from_slice(&len.to_le_bytes());
        p
    };
    let mut c = conn(false, false);
    reply(&mut c, &appendix("a5-bind"));
    assert_eq!(
        feed(&mut c, &frag(0x01, &stub[..100])),
        Output {
            reply: None,
            event: Event::FragmentBuffered
        }
    );
    assert_eq!(
        feed(&mut c, &frag(0x00, &stub[100..200])).event,
        Event::FragmentBuffered
    );
    assert_eq!(
        reply(&mut c, &frag(0x02, &stub[200..])),
        appendix("a5-response-ndr32")
    );
    // A middle fragment without a first one is a protocol error.
    assert!(matches!(
        feed(&mut c, &frag(0x02, &stub[..10])).event,
        Event::Fault {
            status: 0x1C01_000B,
            ..
        }
    ));
    // Endless fragments are cut off at max_call_size.
    let mut small = ServerConnection::new(RpcConfig {
        ndr64: false,
        btfn: false,
        max_call_size: 300,
        local_port: 1,
        assoc_group: 1,
    });
    reply(&mut small, &appendix("a5-bind"));
    feed(&mut small, &frag(0x01, &stub[..200]));
    assert_eq!(
        feed(&mut small, &frag(0x00, &stub[..200])).event,
        Event::Close(CloseReason::CallTooLarge(300))
    );
}

/// A bind (ptype 11) or alter_context (14) offering the KMS interface with one transfer syntax
/// per context id.
fn offer_contexts(pt: u8, call_id: u32, offers: &[(u16, (u128, u32))]) -> Vec<u8> {
    use rkms_proto::rpc::{BindBody, ContextElement, Header, SyntaxId};
    let contexts = offers
        .iter()
        .map(|(id, (u, v))| ContextElement {
            context_id: *id,
            interface: SyntaxId {
                uuid: uuid::Uuid::from_u128(KMS),
                version: 1,
            },
            transfer_syntaxes: vec![SyntaxId {
                uuid: uuid::Uuid::from_u128(*u),
                version: *v,
            }],
        })
        .collect();
    let body = BindBody {
        max_xmit_frag: 5840,
        max_recv_frag: 5840,
        assoc_group_id: 0,
        contexts,
    };
    Header::new(pt, 3, call_id).finish(&body.encode())
}

/// `pdu` (a request or response) moved to presentation context `ctx`.
fn on_context(pdu: &[u8], ctx: u16) -> Vec<u8> {
    let mut p = pdu.to_vec();
    p[20..22].copy_from_slice(&ctx.to_le_bytes());
    p
}

#[test]
fn alter_context_adds_a_context_and_keeps_the_earlier_ones() {
    // PROTOCOL.md §2.6 step 3 (MS-RPCE 3.3.2.4.1.3): NDR32 bound on context 0, then NDR32
    // added on context 1 by alter_context: both serve requests.
    for ndr64 in [false, true] {
        let mut c = conn(ndr64, true);
        let ack = reply(&mut c, &offer_contexts(11, 2, &[(0, NDR32)]));
        assert_eq!(results(&ack, 1), vec![(0, 0)]);
        let resp = reply(&mut c, &offer_contexts(14, 3, &[(1, NDR32)]));
        assert_eq!(resp[2], 15, "alter_context_resp");
        assert_eq!(results(&resp, 1), vec![(0, 0)]);
        for ctx in [0u16, 1, 0] {
            assert_eq!(
                reply(&mut c, &on_context(&appendix("a5-request-ndr32"), ctx)),
                on_context(&appendix("a5-response-ndr32"), ctx),
                "ndr64={ndr64}: request on context {ctx}"
            );
        }
    }
    // The Appendix A exchange: NDR64 on context 1 stays usable after NDR32 is added on 0.
    let mut c = conn(true, true);
    reply(&mut c, &appendix("a5-bind"));
    reply(&mut c, &appendix("a5-alter-context"));
    reply(&mut c, &offer_contexts(14, 3, &[(5, NDR32)]));
    for (rq, resp) in [
        ("a5-request-ndr64", "a5-response-ndr64"),
        ("a5-request-ndr32", "a5-response-ndr32"),
    ] {
        assert_eq!(reply(&mut c, &appendix(rq)), appendix(resp), "{rq}");
    }
    assert_eq!(
        reply(&mut c, &on_context(&appendix("a5-request-ndr32"), 5)),
        on_context(&appendix("a5-response-ndr32"), 5)
    );
}

#[test]
fn contexts_are_bounded_per_connection() {
    use rkms_proto::rpc::MAX_CONTEXTS;
    assert_eq!(MAX_CONTEXTS, 16);
    let mut c = conn(false, false);
    let first: Vec<(u16, (u128, u32))> = (0..10).map(|i| (i, NDR32)).collect();
    assert_eq!(
        results(&reply(&mut c, &offer_contexts(11, 2, &first)), 10),
        vec![(0, 0); 10]
    );
    // Six more fit; the next two are refused with provider reason 3 (local_limit_exceeded).
    let more: Vec<(u16, (u128, u32))> = (10..18).map(|i| (i, NDR32)).collect();
    let resp = reply(&mut c, &offer_contexts(14, 3, &more));
    let mut want = vec![(0, 0); 6];
    want.extend([(2, 3), (2, 3)]);
    assert_eq!(results(&resp, 8), want);
    // A refused context carries the all-zero syntax, version 0.
    assert_eq!(&resp[resp.len() - 20..], &[0u8; 20]);
    // Every accepted context still serves; the refused ones fault with nca_s_unk_if.
    for ctx in [0u16, 9, 15] {
        assert_eq!(
            reply(&mut c, &on_context(&appendix("a5-request-ndr32"), ctx)),
            on_context(&appendix("a5-response-ndr32"), ctx)
        );
    }
    let out = feed(&mut c, &on_context(&appendix("a5-request-ndr32"), 16));
    assert!(matches!(
        out.event,
        Event::Fault {
            status: 0x1C01_0003,
            ..
        }
    ));
    // Offering an id already bound still succeeds when the list is full.
    let again = reply(&mut c, &offer_contexts(14, 4, &[(3, NDR32)]));
    assert_eq!(results(&again, 1), vec![(0, 0)]);
}
