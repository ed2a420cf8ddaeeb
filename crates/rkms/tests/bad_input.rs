//! Malformed and edge-case inputs over TCP against `rkms serve` (the probe cases captured from
//! vlmcsd and py-kms in testdata/vectors/probe-*): each gets the reply the protocol names, a
//! log line, and the host keeps serving good clients.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{assert_closed, client_pdus, connect, read_pdu, send, testdata, Server};
use rkms_proto::kms::ClientRequest;
use rkms_proto::rpc::client::check_response;
use rkms_proto::rpc::ndr::decode_request_stub;
use rkms_proto::rpc::TransferSyntax;

fn probe(case: &str) -> Vec<Vec<u8>> {
    client_pdus(&testdata().join(format!("vectors/probe-vlmcsd/probe-vlmcsd-{case}.hex")))
}

fn good() -> (Vec<u8>, Vec<u8>) {
    let p = probe("good-ndr32");
    (p[0].clone(), p[1].clone())
}

/// Checks a response PDU against the request PDU it answers, with full client verification.
fn assert_verified(request_pdu: &[u8], reply: &[u8]) {
    let payload = decode_request_stub(&request_pdu[24..], TransferSyntax::Ndr32).unwrap();
    let stub = check_response(reply, 2, 0, TransferSyntax::Ndr32).unwrap();
    assert!(stub.warnings.is_empty(), "{:?}", stub.warnings);
    let v = ClientRequest::from_bytes(payload)
        .unwrap()
        .verify_response(&stub.result.unwrap())
        .unwrap();
    assert!(v.warnings.is_empty());
}

/// A good client is served right after.
fn assert_still_serving(addr: SocketAddr) {
    let (bind, request) = good();
    let mut s = connect(addr);
    send(&mut s, &bind);
    assert_eq!(read_pdu(&mut s).unwrap()[2], 12);
    send(&mut s, &request);
    assert_verified(&request, &read_pdu(&mut s).unwrap());
}

fn fault_status(pdu: &[u8]) -> u32 {
    assert_eq!(pdu[2], 3, "expected a fault PDU");
    assert_eq!(pdu[3], 0x23);
    u32::from_le_bytes(pdu[24..28].try_into().unwrap())
}

fn error_hresult(pdu: &[u8]) -> u32 {
    assert_eq!(pdu[2], 2, "expected a response PDU");
    assert_eq!(pdu.len(), 36, "NDR32 error stub");
    u32::from_le_bytes(pdu[32..36].try_into().unwrap())
}

/// (result, reason) of the single context in a bind_ack.
fn single_result(ack: &[u8]) -> (u16, u16) {
    assert_eq!(ack[2], 12);
    let o = ack.len() - 24;
    (
        u16::from_le_bytes([ack[o], ack[o + 1]]),
        u16::from_le_bytes([ack[o + 2], ack[o + 3]]),
    )
}

#[test]
fn every_probe_case_gets_the_specified_reply() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let addr = server.addr;
    let (good_bind, good_request) = good();

    // Unmodified bind and request.
    let mut s = connect(addr);
    send(&mut s, &good_bind);
    assert_eq!(single_result(&read_pdu(&mut s).unwrap()), (0, 0));
    send(&mut s, &good_request);
    assert_verified(&good_request, &read_pdu(&mut s).unwrap());

    // Truncated header, half-close: closed without reply.
    let mut s = connect(addr);
    send(&mut s, &probe("trunc-header-close")[0]);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut s, Duration::from_secs(3));
    server.wait_log("in the middle of a PDU");
    assert_still_serving(addr);

    // Truncated header left open: the idle timeout (1 s here) closes it.
    let mut s = connect(addr);
    send(&mut s, &probe("trunc-header-open")[0]);
    assert_closed(&mut s, Duration::from_secs(4));
    assert_still_serving(addr);

    // Bind body truncated, half-close: closed.
    let mut s = connect(addr);
    send(&mut s, &probe("trunc-bind-body-close")[0]);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut s, Duration::from_secs(3));

    // Wrong interface: abstract syntax not supported; requests on it are faults.
    for case in ["bind-wrong-iface", "bind-wrong-iface-version"] {
        let p = probe(case);
        let mut s = connect(addr);
        send(&mut s, &p[0]);
        assert_eq!(single_result(&read_pdu(&mut s).unwrap()), (2, 1), "{case}");
        send(&mut s, &p[1]);
        assert_eq!(
            fault_status(&read_pdu(&mut s).unwrap()),
            0x1C01_0003,
            "{case}"
        );
    }
    server.wait_log("request on an unbound context");

    // Unknown transfer syntax: reason 2; request is a fault.
    let p = probe("bind-unknown-syntax");
    let mut s = connect(addr);
    send(&mut s, &p[0]);
    assert_eq!(single_result(&read_pdu(&mut s).unwrap()), (2, 2));
    send(&mut s, &p[1]);
    assert_eq!(fault_status(&read_pdu(&mut s).unwrap()), 0x1C01_0003);

    // RPC version 4.0 in the bind: bind_nak, protocol version not supported.
    let mut s = connect(addr);
    send(&mut s, &probe("bind-rpc-version-4")[0]);
    let nak = read_pdu(&mut s).unwrap();
    assert_eq!(
        nak,
        vec![5, 0, 13, 3, 0x10, 0, 0, 0, 21, 0, 0, 0, 2, 0, 0, 0, 4, 0, 1, 5, 0]
    );
    server.wait_log("bind refused (reason 4)");

    // Request with opnum 1: op_rng_error.
    let p = probe("request-bad-opnum");
    let mut s = connect(addr);
    send(&mut s, &p[0]);
    read_pdu(&mut s).unwrap();
    send(&mut s, &p[1]);
    assert_eq!(fault_status(&read_pdu(&mut s).unwrap()), 0x1C01_0002);

    // KMS version 7.0 and 6.1, and a KMS body cut to 100 bytes: HRESULT 0x8007000D, connection kept.
    for case in [
        "request-kms-version-7",
        "request-kms-version-minor",
        "request-short-stub",
    ] {
        let p = probe(case);
        let mut s = connect(addr);
        send(&mut s, &p[0]);
        read_pdu(&mut s).unwrap();
        send(&mut s, &p[1]);
        assert_eq!(
            error_hresult(&read_pdu(&mut s).unwrap()),
            0x8007_000D,
            "{case}"
        );
        send(&mut s, &good_request);
        assert_verified(&good_request, &read_pdu(&mut s).unwrap());
    }
    server.wait_log("unsupported KMS protocol version 7.0");

    // Requests before any bind, and on an unbound context: fault nca_s_unk_if.
    let mut s = connect(addr);
    send(&mut s, &probe("request-no-bind")[0]);
    assert_eq!(fault_status(&read_pdu(&mut s).unwrap()), 0x1C01_0003);
    let p = probe("request-bad-ctx");
    let mut s = connect(addr);
    send(&mut s, &p[0]);
    read_pdu(&mut s).unwrap();
    send(&mut s, &p[1]);
    let f = read_pdu(&mut s).unwrap();
    assert_eq!(fault_status(&f), 0x1C01_0003);
    assert_eq!(
        u16::from_le_bytes([f[20], f[21]]),
        7,
        "fault names the request's context"
    );

    // A request in two fragments is reassembled and answered once, completely.
    let p = probe("request-fragmented");
    let mut s = connect(addr);
    send(&mut s, &p[0]);
    read_pdu(&mut s).unwrap();
    send(&mut s, &p[1]);
    send(&mut s, &p[2]);
    let reply = read_pdu(&mut s).unwrap();
    assert_eq!(reply[3], 0x03);
    assert_verified(&good_request, &reply);

    // Half a request, then half-close: closed.
    let p = probe("request-trunc-body-close");
    let mut s = connect(addr);
    send(&mut s, &p[0]);
    read_pdu(&mut s).unwrap();
    send(&mut s, &p[1]);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut s, Duration::from_secs(3));

    // Bind split over two writes 0.3 s apart, and bind+request in one write: both served.
    let mut s = connect(addr);
    send(&mut s, &good_bind[..20]);
    std::thread::sleep(Duration::from_millis(300));
    send(&mut s, &good_bind[20..]);
    assert_eq!(single_result(&read_pdu(&mut s).unwrap()), (0, 0));
    let mut s = connect(addr);
    send(&mut s, &[good_bind.clone(), good_request.clone()].concat());
    read_pdu(&mut s).unwrap();
    assert_verified(&good_request, &read_pdu(&mut s).unwrap());

    // Connectionless PDU type: closed.
    let mut s = connect(addr);
    send(&mut s, &probe("unknown-ptype")[0]);
    assert_closed(&mut s, Duration::from_secs(3));
    server.wait_log("unsupported PDU type 1");

    assert_still_serving(addr);
}

#[test]
fn bad_frame_lengths_close_the_connection() {
    let server = Server::start(&[]);
    let (good_bind, _) = good();
    // frag_length below the header size.
    let mut s = connect(server.addr);
    let mut b = good_bind.clone();
    b[8..10].copy_from_slice(&8u16.to_le_bytes());
    send(&mut s, &b);
    assert_closed(&mut s, Duration::from_secs(3));
    // frag_length above the limit: closed before the body arrives (no unbounded buffering).
    let mut s = connect(server.addr);
    let mut b = good_bind.clone();
    b[8..10].copy_from_slice(&60000u16.to_le_bytes());
    send(&mut s, &b);
    assert_closed(&mut s, Duration::from_secs(3));
    server.wait_log("exceeds the limit of 5840 bytes");
    assert_still_serving(server.addr);
}

#[test]
fn non_utf16_workstation_name_is_served_and_logged() {
    use rkms_proto::kms::{build_request, BaseRequest, Version};
    let server = Server::start(&[]);
    let (bind, _) = good();
    let mut base = BaseRequest::decode(
        &rkms_proto::kms::decode_request(
            decode_request_stub(&good().1[24..], TransferSyntax::Ndr32).unwrap(),
        )
        .unwrap()
        .base
        .encode(),
    )
    .unwrap();
    base.workstation[0] = 0xD800;
    let built = build_request(Version::V6, &base, &mut rand::rngs::OsRng);
    let request = rkms_proto::rpc::client::request(2, 0, TransferSyntax::Ndr32, &built.bytes);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    let stub = check_response(&read_pdu(&mut s).unwrap(), 2, 0, TransferSyntax::Ndr32).unwrap();
    built.verify_response(&stub.result.unwrap()).unwrap();
    server.wait_log("workstation name is not valid UTF-16");
}

#[test]
fn bad_pdus_on_one_connection_are_logged_once_with_a_count() {
    let server = Server::start(&[]);
    let (bind, request) = good();
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    // 900 requests on a context that was never bound: 900 faults, one warning (each counts
    // as a call: --max-calls-per-connection is 1,000).
    let mut unbound = request.clone();
    unbound[20..22].copy_from_slice(&7u16.to_le_bytes());
    let burst: Vec<u8> = std::iter::repeat_n(unbound.as_slice(), 900)
        .flatten()
        .copied()
        .collect();
    send(&mut s, &burst);
    for _ in 0..900 {
        assert_eq!(fault_status(&read_pdu(&mut s).unwrap()), 0x1C01_0003);
    }
    // The connection still serves good requests.
    send(&mut s, &request);
    assert_eq!(read_pdu(&mut s).unwrap()[2], 2);
    drop(s);
    let summary = server.wait_log("connection closed after 900 bad PDUs");
    assert!(summary.contains("count=900"), "{summary}");
    // Another connection's bad input is logged again (once).
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &unbound);
    read_pdu(&mut s).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    let faults = server
        .log()
        .iter()
        .filter(|l| l.contains("RPC fault 0x1C010003"))
        .count();
    assert_eq!(faults, 2, "{:#?}", server.log());
    let summaries = server
        .log()
        .iter()
        .filter(|l| l.contains("bad PDUs (only the first was logged)"))
        .count();
    assert_eq!(summaries, 1, "a single bad PDU needs no summary");
}
