//! A server that answers every bind and request with canned bytes and no KMS work: the
//! ceiling a KMS host could reach on this machine, measured with the same load generator.

use std::net::SocketAddr;

use rkms_proto::kms::{DecodedRequest, HResult, HostAnswer, KmsHost};
use rkms_proto::rpc::{complete_pdu_len, ptype, RpcConfig, ServerConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An NDR32 response stub shaped like a V6 answer (contents not valid KMS).
const RESPONSE_LEN: usize = 300;

fn canned_response(call_id: [u8; 4], ctx: [u8; 2]) -> Vec<u8> {
    let mut r = vec![0u8; RESPONSE_LEN];
    r[..4].copy_from_slice(&[5, 0, ptype::RESPONSE, 3]);
    r[4] = 0x10;
    r[8..10].copy_from_slice(&(RESPONSE_LEN as u16).to_le_bytes());
    r[12..16].copy_from_slice(&call_id);
    r[16..20].copy_from_slice(&((RESPONSE_LEN - 24) as u32).to_le_bytes());
    r[20..22].copy_from_slice(&ctx);
    let m = 260u32.to_le_bytes();
    r[24..28].copy_from_slice(&m);
    r[28..32].copy_from_slice(&0x0002_0000u32.to_le_bytes());
    r[32..36].copy_from_slice(&m);
    r[36..40].copy_from_slice(&[0, 0, 6, 0]);
    r
}

/// Serves canned replies on `addr` until the process ends.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "null server listening");
    loop {
        let (mut stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            // Binds go through the real state machine (no KMS work there); requests get canned bytes.
            let mut rpc = ServerConnection::new(RpcConfig {
                ndr64: true,
                btfn: true,
                max_call_size: 4096,
                local_port,
                assoc_group: 1,
            });
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 2048];
            loop {
                while let Ok(Some(len)) = complete_pdu_len(&buf, 65535) {
                    let reply = match buf[2] {
                        ptype::REQUEST if len >= 24 => canned_response(
                            [buf[12], buf[13], buf[14], buf[15]],
                            [buf[20], buf[21]],
                        ),
                        _ => match rpc
                            .handle_pdu(&buf[..len], &mut NoKms, &mut rand::rngs::OsRng)
                            .reply
                        {
                            Some(r) => r,
                            None => return,
                        },
                    };
                    buf.drain(..len);
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }
}

/// Never asked: requests are answered with canned bytes before they reach the state machine.
struct NoKms;

impl KmsHost for NoKms {
    fn answer(&mut self, _: &DecodedRequest) -> Result<HostAnswer, HResult> {
        Err(HResult::INVALID_DATA)
    }
}
