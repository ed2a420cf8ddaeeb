//! Criterion benchmarks of the protocol core: server-side request processing per version,
//! client-side response verification, one V6 request PDU through the RPC state machine, and
//! ePID generation.
//!
//! `cargo bench -p rkms-proto --bench protocol -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rand_core::RngCore;
use rkms_proto::epid::{generate, EpidParams};
use rkms_proto::kms::{
    build_request, handle_request, BaseRequest, ClientRequest, DecodedRequest, HResult, HostAnswer,
    KmsHost, Version,
};
use rkms_proto::rpc::client::{alter_context_pdu, bind_pdu, request, BindOffer};
use rkms_proto::rpc::{RpcConfig, ServerConnection, TransferSyntax};
use uuid::Uuid;

/// A host with one fixed answer (what vlmcsd sends with its defaults).
struct FixedHost;

impl KmsHost for FixedHost {
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

/// A cheap deterministic RNG (xorshift64), so the benchmarks measure the protocol only.
struct XorShift(u64);

impl RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

fn rng() -> XorShift {
    XorShift(0x9E37_79B9_7F4A_7C15)
}

/// The Appendix A.1 base request.
fn base() -> BaseRequest {
    BaseRequest {
        version: Version::V6,
        is_client_vm: 0,
        license_status: 2,
        grace_time: 43200,
        application_id: Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap(),
        sku_id: Uuid::parse_str("2de67392-b7a7-462a-b1ca-108dd189f588").unwrap(),
        kms_id: Uuid::parse_str("58e2134f-8e11-4d17-9cb2-91069c151148").unwrap(),
        cmid: Uuid::parse_str("a4b2c1d0-1234-4abc-8def-0123456789ab").unwrap(),
        required_client_count: 25,
        request_time: 0x01DB_5F4A_3C2E_1000,
        previous_cmid: Uuid::nil(),
        workstation: BaseRequest::workstation_field("kms-test.example.org"),
    }
}

const VERSIONS: [(Version, &str); 3] = [
    (Version::V4, "V4"),
    (Version::V5, "V5"),
    (Version::V6, "V6"),
];

fn client_request(version: Version) -> ClientRequest {
    build_request(version, &base(), &mut rng())
}

fn server(c: &mut Criterion) {
    let mut group = c.benchmark_group("server/handle_request");
    for (version, name) in VERSIONS {
        let payload = client_request(version).bytes;
        let mut rng = rng();
        group.bench_function(name, |b| {
            b.iter(|| handle_request(black_box(&payload), &mut FixedHost, &mut rng).unwrap())
        });
    }
    group.finish();
}

fn client(c: &mut Criterion) {
    let mut group = c.benchmark_group("client/verify_response");
    for (version, name) in VERSIONS {
        let rq = client_request(version);
        let resp = handle_request(&rq.bytes, &mut FixedHost, &mut rng()).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| rq.verify_response(black_box(&resp)).unwrap())
        });
    }
    group.finish();
    c.bench_function("client/build_request/V6", |b| {
        let base = base();
        let mut rng = rng();
        b.iter(|| build_request(Version::V6, black_box(&base), &mut rng))
    });
}

fn rpc(c: &mut Criterion) {
    let mut conn = ServerConnection::new(RpcConfig {
        ndr64: true,
        btfn: true,
        max_call_size: 4096,
        local_port: 1688,
        assoc_group: 0x05a9_7e71,
    });
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: true,
    };
    let mut rng = rng();
    for pdu in [bind_pdu(2, offer), alter_context_pdu(2, true)] {
        assert!(conn
            .handle_pdu(&pdu, &mut FixedHost, &mut rng)
            .reply
            .is_some());
    }
    let pdu = request(
        3,
        0,
        TransferSyntax::Ndr32,
        &client_request(Version::V6).bytes,
    );
    c.bench_function("server/handle_pdu/V6-NDR32", |b| {
        b.iter(|| {
            conn.handle_pdu(black_box(&pdu), &mut FixedHost, &mut rng)
                .reply
                .unwrap()
        })
    });
}

fn epid(c: &mut Criterion) {
    let params = EpidParams {
        platform_id: 3612,
        group_id: 206,
        min_key_id: 551_000_000,
        max_key_id: 570_999_999,
        lcid: 1033,
        build: 17763,
        min_date_unix: 1_538_352_000,
        now_unix: 1_795_000_000,
    };
    let mut rng = rng();
    c.bench_function("epid/generate", |b| {
        b.iter(|| generate(black_box(&params), &mut rng))
    });
}

criterion_group!(benches, server, client, rpc, epid);
criterion_main!(benches);
