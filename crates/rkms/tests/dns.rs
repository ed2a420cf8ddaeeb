//! `rkms::dns::discover` against a tiny authoritative DNS responder on loopback UDP.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use rkms::dns::{discover, records, DnsError, ResolverChoice, SrvTarget, SRV_SERVICE};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Upper bound for one `discover` call in these tests.
const BOUND: Duration = Duration::from_secs(5);

/// A UDP DNS responder on 127.0.0.1 for the zones `test.lan` (two SRV records),
/// `empty.lan` (the SRV name exists with no SRV data) and `broken.lan` (SERVFAIL);
/// everything else is NXDOMAIN.
struct Responder {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn name(text: &str) -> Name {
    Name::from_str(text).expect("valid name")
}

fn answer(request: &Message) -> Message {
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.queries = request.queries.clone();
    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    let srv_test = name("_vlmcs._tcp.test.lan.");
    let srv_empty = name("_vlmcs._tcp.empty.lan.");
    let srv_broken = name("_vlmcs._tcp.broken.lan.");
    if query.name == srv_test {
        if query.query_type == RecordType::SRV {
            for (priority, weight, port, target) in
                [(10, 0, 1701, "b.test.lan."), (0, 100, 1700, "a.test.lan.")]
            {
                response.answers.push(Record::from_rdata(
                    srv_test.clone(),
                    300,
                    RData::SRV(SRV::new(priority, weight, port, name(target))),
                ));
            }
        }
    } else if query.name == srv_empty {
        // NOERROR with no answers: the name exists, no SRV records.
    } else if query.name == srv_broken {
        response.metadata.response_code = ResponseCode::ServFail;
    } else {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response
}

impl Responder {
    async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = socket.local_addr().expect("local addr");
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&queries);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                if let Ok(bytes) = answer(&request).to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Responder {
            addr,
            queries,
            task,
        }
    }

    async fn discover(&self, domain: &str) -> Result<Vec<SrvTarget>, DnsError> {
        timeout(
            BOUND,
            discover(Some(domain), ResolverChoice::Server(self.addr)),
        )
        .await
        .expect("discover finished in time")
    }
}

#[tokio::test]
async fn finds_both_targets_in_priority_order() {
    let server = Responder::start().await;
    let found = server.discover("test.lan").await.expect("records");
    assert_eq!(
        found,
        vec![
            SrvTarget {
                priority: 0,
                weight: 100,
                port: 1700,
                host: "a.test.lan".into()
            },
            SrvTarget {
                priority: 10,
                weight: 0,
                port: 1701,
                host: "b.test.lan".into()
            },
        ]
    );
    assert_eq!(found[0].to_string(), "a.test.lan:1700");
    assert!(server.queries.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn trailing_dot_and_case_in_the_domain_are_accepted() {
    let server = Responder::start().await;
    let found = server.discover("Test.LAN.").await.expect("records");
    let hosts: Vec<_> = found.iter().map(|t| t.host.as_str()).collect();
    assert_eq!(hosts, ["a.test.lan", "b.test.lan"]);
}

#[tokio::test]
async fn unknown_domain_is_no_records_with_the_windows_code() {
    let server = Responder::start().await;
    let err = server.discover("unknown.lan").await.expect_err("NXDOMAIN");
    assert!(
        matches!(&err, DnsError::NoRecords { name } if name == "_vlmcs._tcp.unknown.lan"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("0x8007232B"), "{message}");
    assert!(message.contains("_vlmcs._tcp.unknown.lan"), "{message}");
}

#[tokio::test]
async fn name_without_srv_data_is_no_records() {
    let server = Responder::start().await;
    let err = server.discover("empty.lan").await.expect_err("NODATA");
    assert!(matches!(err, DnsError::NoRecords { .. }), "{err:?}");
}

#[tokio::test]
async fn server_failure_is_a_lookup_error() {
    let server = Responder::start().await;
    let err = server.discover("broken.lan").await.expect_err("SERVFAIL");
    assert!(matches!(err, DnsError::Lookup { .. }), "{err:?}");
    assert!(err.to_string().contains("_vlmcs._tcp.broken.lan"), "{err}");
}

#[tokio::test]
async fn invalid_domain_is_rejected_before_any_query() {
    let server = Responder::start().await;
    let long_label = "x".repeat(64);
    let err = server
        .discover(&format!("{long_label}.lan"))
        .await
        .expect_err("label too long");
    assert!(matches!(err, DnsError::InvalidDomain { .. }), "{err:?}");
    assert_eq!(server.queries.load(Ordering::SeqCst), 0);
}

#[test]
fn srv_service_label() {
    assert_eq!(SRV_SERVICE, "_vlmcs._tcp");
}

#[test]
fn records_golden_with_priority_weight_and_long_ttl() {
    let expected = "\
; BIND zone file
_vlmcs._tcp.corp.example. 86400 IN SRV 10 50 1700 kms2.corp.example.

# dnsmasq (dnsmasq.conf)
srv-host=_vlmcs._tcp.corp.example,kms2.corp.example,1700,10,50

# Windows DNS Server (PowerShell)
Add-DnsServerResourceRecord -ZoneName \"corp.example\" -Srv -Name \"_vlmcs._tcp\" -DomainName \"kms2.corp.example\" -Priority 10 -Weight 50 -Port 1700 -TimeToLive 1.00:00:00

# OpenWrt (dnsmasq via uci)
uci add dhcp srvhost
uci set dhcp.@srvhost[-1].srv='_vlmcs._tcp.corp.example'
uci set dhcp.@srvhost[-1].target='kms2.corp.example'
uci set dhcp.@srvhost[-1].port='1700'
uci set dhcp.@srvhost[-1].class='10'
uci set dhcp.@srvhost[-1].weight='50'
uci commit dhcp
/etc/init.d/dnsmasq restart
";
    assert_eq!(
        records("kms2.corp.example", 1700, "corp.example", 86_400, 10, 50),
        expected
    );
}

#[test]
fn records_qualifies_a_bare_host() {
    let text = records("kms1", 1688, "example.lan", 10_800, 0, 0);
    assert!(text.contains("_vlmcs._tcp.example.lan. 10800 IN SRV 0 0 1688 kms1.example.lan.\n"));
    assert!(text.contains("srv-host=_vlmcs._tcp.example.lan,kms1.example.lan,1688,0,0\n"));
    assert!(text.contains("-TimeToLive 03:00:00\n"));
}
