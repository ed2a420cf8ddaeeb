//! Interoperability with bytes captured from vlmcsd, vlmcs and py-kms (testdata/vectors):
//! every PDU parses, every captured response verifies, and our server, replaying the captured
//! client PDUs, answers like the reference server and is verified by our client checks.

mod common;

use common::{client_saw, load_session, session_files, Captured, ScriptedRng};
use rkms_proto::kms::{ClientRequest, DecodedRequest, HResult, HostAnswer, KmsHost};
use rkms_proto::rpc::client::{check_bind_ack, check_response, Bound};
use rkms_proto::rpc::ndr::decode_request_stub;
use rkms_proto::rpc::{
    complete_pdu_len, ptype, BindBody, Event, Header, RpcConfig, ServerConnection, SyntaxId,
    TransferSyntax,
};

const SESSIONS: &[&str] = &[
    "vlmcs-vlmcsd",
    "vlmcs-pykms",
    "pykmsclient-vlmcsd",
    "pykmsclient-pykms",
];

/// A request/response exchange found in a capture, with the bound contexts at that time.
struct Exchange {
    request_pdu: Vec<u8>,
    response_pdu: Vec<u8>,
    syntax: TransferSyntax,
}

/// Walks a session as a client would: binds, then request/response pairs.
fn exchanges(session: &[Captured]) -> Vec<Exchange> {
    let mut offered: Vec<SyntaxId> = Vec::new();
    let mut bound = Bound::default();
    let mut out = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    for (c2s, pdu) in session {
        let h = Header::parse(pdu).unwrap();
        if *c2s {
            match h.ptype {
                ptype::BIND | ptype::ALTER_CONTEXT => {
                    let body = BindBody::parse(pdu).unwrap();
                    offered = body
                        .contexts
                        .iter()
                        .map(|c| c.transfer_syntaxes[0])
                        .collect();
                }
                ptype::REQUEST => pending = Some(pdu.clone()),
                other => panic!("unexpected client PDU type {other}"),
            }
        } else {
            match h.ptype {
                ptype::BIND_ACK | ptype::ALTER_CONTEXT_RESP => {
                    let alter = h.ptype == ptype::ALTER_CONTEXT_RESP;
                    check_bind_ack(
                        pdu,
                        h.call_id,
                        &offered,
                        h.flags & 0x10 != 0,
                        alter,
                        &mut bound,
                    )
                    .unwrap();
                }
                ptype::RESPONSE => {
                    let request_pdu = pending.take().expect("response follows a request");
                    let ctx = u16::from_le_bytes([request_pdu[20], request_pdu[21]]);
                    let syntax = if Some(ctx) == bound.ndr64 {
                        TransferSyntax::Ndr64
                    } else {
                        TransferSyntax::Ndr32
                    };
                    out.push(Exchange {
                        request_pdu,
                        response_pdu: pdu.clone(),
                        syntax,
                    });
                }
                other => panic!("unexpected server PDU type {other}"),
            }
        }
    }
    out
}

fn kms_payload(request_pdu: &[u8], syntax: TransferSyntax) -> Vec<u8> {
    decode_request_stub(&request_pdu[24..], syntax)
        .unwrap()
        .to_vec()
}

#[test]
fn every_captured_pdu_is_framed_and_parses() {
    let mut pdus = 0;
    for file in session_files(&[
        "vlmcs-vlmcsd",
        "vlmcs-pykms",
        "pykmsclient-vlmcsd",
        "pykmsclient-pykms",
        "probe-vlmcsd",
        "probe-pykms",
    ]) {
        for (_, pdu) in load_session(&file) {
            // Truncated probes are not whole PDUs: framing says "need more", never an error.
            match complete_pdu_len(&pdu, 5840).unwrap() {
                Some(len) => assert_eq!(len, pdu.len(), "{file:?}"),
                None => continue,
            }
            let h = Header::parse(&pdu).unwrap();
            if matches!(h.ptype, ptype::BIND | ptype::ALTER_CONTEXT) {
                BindBody::parse(&pdu).unwrap_or_else(|e| panic!("{file:?}: {e}"));
            }
            pdus += 1;
        }
    }
    assert!(pdus > 300, "only {pdus} PDUs parsed");
}

#[test]
fn captured_responses_verify_and_match_client_output() {
    let mut verified = 0;
    for file in session_files(SESSIONS) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let session = load_session(&file);
        let saw = client_saw(&file);
        for ex in exchanges(&session) {
            let payload = kms_payload(&ex.request_pdu, ex.syntax);
            let call_id = Header::parse(&ex.request_pdu).unwrap().call_id;
            let ctx = u16::from_le_bytes([ex.request_pdu[20], ex.request_pdu[21]]);
            let stub = check_response(&ex.response_pdu, call_id, ctx, ex.syntax).unwrap();
            if name.contains("badver") {
                // vlmcsd refuses 7.0 and 4.1 with 0x8007000D; so does our decoder.
                let ours = rkms_proto::kms::decode_request(&payload).unwrap_err();
                assert_eq!(ours.hresult, HResult::INVALID_DATA, "{name}");
                if name.starts_with("vlmcs-vlmcsd") {
                    assert_eq!(stub.result, Err(HResult::INVALID_DATA), "{name}");
                }
                continue;
            }
            let resp = stub
                .result
                .unwrap_or_else(|e| panic!("{name}: host refused {e}"));
            let client = ClientRequest::from_bytes(&payload).unwrap();
            let v = client
                .verify_response(&resp)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.starts_with("vlmcs-vlmcsd") {
                assert!(
                    stub.warnings.is_empty() && v.warnings.is_empty(),
                    "{name}: {:?} {:?}",
                    stub.warnings,
                    v.warnings
                );
            }
            if let Some(saw) = &saw {
                if let Some(epid) = &saw.epid {
                    assert_eq!(&v.base.epid, epid, "{name}");
                }
                if let (Some(hwid), Some(ours)) = (&saw.hwid, v.hwid) {
                    assert_eq!(hex::encode_upper(ours), *hwid, "{name}");
                }
                if let Some(count) = saw.count {
                    assert_eq!(v.base.current_count, count, "{name}");
                }
            }
            verified += 1;
        }
    }
    assert!(verified >= 60, "only {verified} responses verified");
}

/// Answers with the values the reference server sent for the same request.
struct EchoHost(HostAnswer);

impl KmsHost for EchoHost {
    fn answer(&mut self, _request: &DecodedRequest) -> Result<HostAnswer, HResult> {
        Ok(self.0.clone())
    }
}

#[test]
fn our_server_answers_captured_clients_like_vlmcsd() {
    let mut compared = 0;
    for file in session_files(SESSIONS) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let session = load_session(&file);
        let ex = exchanges(&session);
        // The host answer each reference server gave (from its first verified response).
        let answer = ex.iter().find_map(|e| {
            let payload = kms_payload(&e.request_pdu, e.syntax);
            let client = ClientRequest::from_bytes(&payload).ok()?;
            let call_id = Header::parse(&e.request_pdu).unwrap().call_id;
            let ctx = u16::from_le_bytes([e.request_pdu[20], e.request_pdu[21]]);
            let resp = check_response(&e.response_pdu, call_id, ctx, e.syntax)
                .ok()?
                .result
                .ok()?;
            let v = client.verify_response(&resp).ok()?;
            Some(HostAnswer {
                epid: v.base.epid,
                hwid: v.hwid.unwrap_or([1; 8]),
                current_count: v.base.current_count,
                activation_interval: v.base.activation_interval,
                renewal_interval: v.base.renewal_interval,
            })
        });
        let answer = answer.unwrap_or(HostAnswer {
            epid: "03612-00206-556-123727-03-1033-17763.0000-2972018".into(),
            hwid: [1; 8],
            current_count: 50,
            activation_interval: 120,
            renewal_interval: 10080,
        });
        let their_port = session
            .iter()
            .find(|(c2s, p)| !c2s && p[2] == ptype::BIND_ACK)
            .map(|(_, p)| {
                let len = u16::from_le_bytes([p[24], p[25]]) as usize;
                std::str::from_utf8(&p[26..26 + len - 1])
                    .unwrap()
                    .parse::<u16>()
                    .unwrap()
            })
            .unwrap();
        let mut conn = ServerConnection::new(RpcConfig {
            ndr64: true,
            btfn: true,
            max_call_size: 65536,
            local_port: their_port,
            assoc_group: 0x1234_5678,
        });
        let mut host = EchoHost(answer.clone());
        let mut rng = ScriptedRng::new(&[&[0x5a; 64]]);
        let theirs: Vec<&Vec<u8>> = session
            .iter()
            .filter(|(c2s, _)| !c2s)
            .map(|(_, p)| p)
            .collect();
        let mut offered: Vec<SyntaxId>;
        let mut bound = Bound::default();
        for (replies, (_, pdu)) in session.iter().filter(|(c2s, _)| *c2s).enumerate() {
            let h = Header::parse(pdu).unwrap();
            let out = conn.handle_pdu(pdu, &mut host, &mut rng);
            let reply = out
                .reply
                .unwrap_or_else(|| panic!("{name}: no reply ({:?})", out.event));
            let rh = Header::parse(&reply).unwrap();
            match h.ptype {
                ptype::BIND | ptype::ALTER_CONTEXT => {
                    offered = BindBody::parse(pdu)
                        .unwrap()
                        .contexts
                        .iter()
                        .map(|c| c.transfer_syntaxes[0])
                        .collect();
                    let alter = h.ptype == ptype::ALTER_CONTEXT;
                    check_bind_ack(
                        &reply,
                        h.call_id,
                        &offered,
                        h.flags & 0x10 != 0,
                        alter,
                        &mut bound,
                    )
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(bound.warnings.is_empty(), "{name}: {:?}", bound.warnings);
                    if name.starts_with("vlmcs-vlmcsd") {
                        // Same results as vlmcsd, byte for byte apart from the assoc group and padding.
                        let theirs = theirs[replies];
                        assert_eq!(reply[..20], theirs[..20], "{name}: header");
                        let results_at = reply.len() - 4 - 24 * offered.len();
                        assert_eq!(
                            reply[results_at..],
                            theirs[results_at..],
                            "{name}: context results"
                        );
                    }
                }
                ptype::REQUEST => {
                    let ctx = u16::from_le_bytes([pdu[20], pdu[21]]);
                    let syntax = if Some(ctx) == bound.ndr64 {
                        TransferSyntax::Ndr64
                    } else {
                        TransferSyntax::Ndr32
                    };
                    let stub = check_response(&reply, h.call_id, ctx, syntax)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(stub.warnings.is_empty(), "{name}: {:?}", stub.warnings);
                    let payload = kms_payload(pdu, syntax);
                    match ClientRequest::from_bytes(&payload) {
                        Ok(client) => {
                            let v = client
                                .verify_response(&stub.result.unwrap())
                                .unwrap_or_else(|e| panic!("{name}: {e}"));
                            assert!(v.warnings.is_empty(), "{name}: {:?}", v.warnings);
                            assert_eq!(v.base.epid, answer.epid);
                            assert_eq!(v.base.current_count, answer.current_count);
                            assert!(matches!(out.event, Event::Kms { result: Ok(()), .. }));
                            if name.starts_with("vlmcs-vlmcsd") {
                                assert_eq!(
                                    reply.len(),
                                    theirs[replies].len(),
                                    "{name}: same response size as vlmcsd"
                                );
                            }
                        }
                        Err(refusal) => {
                            assert_eq!(stub.result, Err(refusal.hresult), "{name}");
                        }
                    }
                    compared += 1;
                }
                other => panic!("{other}"),
            }
            assert_eq!(rh.call_id, h.call_id);
        }
    }
    assert!(compared >= 60, "only {compared} requests replayed");
}
