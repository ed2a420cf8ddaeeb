//! A byte stream from a client, cut into PDUs with `complete_pdu_len` and fed to a server
//! connection, optionally after a valid bind and alter_context.
//!
//! Input: one mode byte (bit 0: send the valid bind prefix first, bit 1: NDR64 enabled,
//! bit 2: BTFN enabled), then the stream. Every reply must be one well-formed PDU, and every
//! response must pass the client's own checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkms_proto::rpc::client::check_response;
use rkms_proto::rpc::{complete_pdu_len, ptype, Event, Header, ServerConnection};
use rkms_proto_fuzz::{bind_prefix, check_reply, rpc_config, CheapRng, FixedHost, MAX_PDU};

fn feed(conn: &mut ServerConnection, pdu: &[u8]) -> bool {
    let out = conn.handle_pdu(pdu, &mut FixedHost, &mut CheapRng::default());
    if let Some(reply) = &out.reply {
        check_reply(reply);
        if let Event::Kms { syntax, result } = &out.event {
            let h = Header::parse(pdu).expect("a request was parsed");
            let ctx = u16::from_le_bytes([pdu[20], pdu[21]]);
            assert_eq!(reply[2], ptype::RESPONSE);
            let stub = check_response(reply, h.call_id, ctx, *syntax)
                .expect("the client accepts the server's response PDU");
            assert!(stub.warnings.is_empty(), "{:?}", stub.warnings);
            match (result, &stub.result) {
                (Ok(()), Ok(_)) => {}
                (Err(refusal), Err(hresult)) => assert_eq!(refusal.hresult, *hresult),
                other => panic!("event and stub disagree: {other:?}"),
            }
        }
    }
    match out.event {
        Event::Close(_) => {
            assert!(out.reply.is_none(), "nothing is sent on close");
            false
        }
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut stream)) = data.split_first() else {
        return;
    };
    let mut conn = ServerConnection::new(rpc_config(mode & 2 != 0, mode & 4 != 0));
    if mode & 1 != 0 {
        for pdu in bind_prefix() {
            assert!(feed(&mut conn, &pdu));
        }
    }
    loop {
        match complete_pdu_len(stream, MAX_PDU) {
            Ok(Some(n)) => {
                assert!((16..=stream.len()).contains(&n));
                if !feed(&mut conn, &stream[..n]) {
                    return;
                }
                stream = &stream[n..];
            }
            Ok(None) => {
                // An incomplete tail: handle_pdu must not panic on it either.
                if !stream.is_empty() {
                    feed(&mut conn, stream);
                }
                return;
            }
            Err(_) => return,
        }
    }
});
