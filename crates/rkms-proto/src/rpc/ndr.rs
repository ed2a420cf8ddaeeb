//! NDR32 and NDR64 stubs of `RequestActivation` (PROTOCOL.md §3).

use super::TransferSyntax;
use crate::kms::HResult;
use crate::wire::{PutLe, Reader};

/// The first referent id MS NDR uses for a unique pointer.
const REFERENT_ID: u32 = 0x0002_0000;

/// Size of the request stub header before the KMS bytes.
fn request_header_len(syntax: TransferSyntax) -> usize {
    match syntax {
        TransferSyntax::Ndr32 => 8,
        TransferSyntax::Ndr64 => 16,
    }
}

/// The stub is too short for its own header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{syntax} stub of {len} bytes is too short for its header")]
pub struct StubTooShort {
    /// Syntax of the stub.
    pub syntax: TransferSyntax,
    /// Stub length.
    pub len: usize,
}

/// Extracts the KMS request from a request stub: `min(requestSize, bytes present)` bytes.
pub fn decode_request_stub(stub: &[u8], syntax: TransferSyntax) -> Result<&[u8], StubTooShort> {
    let header = request_header_len(syntax);
    if stub.len() < header {
        return Err(StubTooShort {
            syntax,
            len: stub.len(),
        });
    }
    let n = u32::from_le_bytes([stub[0], stub[1], stub[2], stub[3]]) as usize;
    let available = stub.len() - header;
    Ok(&stub[header..header + n.min(available)])
}

/// Builds a request stub (client side).
pub fn encode_request_stub(payload: &[u8], syntax: TransferSyntax) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    match syntax {
        TransferSyntax::Ndr32 => {
            out.put_u32(payload.len() as u32);
            out.put_u32(payload.len() as u32);
        }
        TransferSyntax::Ndr64 => {
            out.put_u32(payload.len() as u32);
            out.put_u32(0);
            out.put_u64(payload.len() as u64);
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Builds a success response stub carrying the KMS response.
pub fn encode_response_stub(payload: &[u8], syntax: TransferSyntax) -> Vec<u8> {
    let mut out = Vec::with_capacity(response_stub_capacity(payload.len()));
    write_response_stub(&mut out, payload, syntax);
    out
}

/// An upper bound on the size of a response stub carrying `payload_len` bytes.
pub(crate) fn response_stub_capacity(payload_len: usize) -> usize {
    32 + payload_len
}

/// Appends the response stub of [`encode_response_stub`] to `out`. The stub must start at a
/// 4-aligned offset of `out` (NDR pads the array to 4 bytes from the stub's start).
pub(crate) fn write_response_stub(out: &mut Vec<u8>, payload: &[u8], syntax: TransferSyntax) {
    let written: Result<(), std::convert::Infallible> =
        write_response_stub_with(out, syntax, |out| {
            out.extend_from_slice(payload);
            Ok(())
        });
    let Ok(()) = written;
}

/// Appends the response stub of [`write_response_stub`] for the payload that `write_payload`
/// appends to `out` in its place (the payload is built in the reply itself, not copied into
/// it). When `write_payload` fails, its error is returned and `out` holds a partial stub
/// that the caller truncates.
pub(crate) fn write_response_stub_with<E>(
    out: &mut Vec<u8>,
    syntax: TransferSyntax,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    // The lengths are written once the payload is: zero until then.
    let prefix = out.len();
    match syntax {
        TransferSyntax::Ndr32 => {
            out.put_u32(0);
            out.put_u32(REFERENT_ID);
            out.put_u32(0);
        }
        TransferSyntax::Ndr64 => {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u64(REFERENT_ID as u64);
            out.put_u64(0);
        }
    }
    let payload = out.len();
    write_payload(out)?;
    let m = (out.len() - payload) as u32;
    out[prefix..prefix + 4].copy_from_slice(&m.to_le_bytes());
    match syntax {
        TransferSyntax::Ndr32 => out[prefix + 8..prefix + 12].copy_from_slice(&m.to_le_bytes()),
        TransferSyntax::Ndr64 => {
            out[prefix + 16..prefix + 24].copy_from_slice(&u64::from(m).to_le_bytes())
        }
    }
    out.pad_to(4);
    out.put_u32(0);
    Ok(())
}

/// Builds an error response stub: no buffer, the HRESULT as return value.
pub fn encode_error_stub(status: HResult, syntax: TransferSyntax) -> Vec<u8> {
    let mut out = Vec::with_capacity(ERROR_STUB_CAPACITY);
    write_error_stub(&mut out, status, syntax);
    out
}

/// The largest error stub.
pub(crate) const ERROR_STUB_CAPACITY: usize = 20;

/// Appends the error stub of [`encode_error_stub`] to `out`.
pub(crate) fn write_error_stub(out: &mut Vec<u8>, status: HResult, syntax: TransferSyntax) {
    let zeros = match syntax {
        TransferSyntax::Ndr32 => 8,
        TransferSyntax::Ndr64 => 16,
    };
    out.resize(out.len() + zeros, 0);
    out.put_u32(status.0);
}

/// A decoded response stub (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseStub {
    /// The KMS response, or the host's HRESULT when it sent no buffer.
    pub result: Result<Vec<u8>, HResult>,
    /// Deviations a genuine client only warns about.
    pub warnings: Vec<String>,
}

/// Decodes a response stub as vlmcs does (§3.3), with its checks.
pub fn decode_response_stub(
    stub: &[u8],
    syntax: TransferSyntax,
    alloc_hint: u32,
) -> Result<ResponseStub, String> {
    let mut r = Reader::new(stub);
    let short = |_| {
        format!(
            "{syntax} response stub of {} bytes is truncated",
            stub.len()
        )
    };
    let size = r.u32().map_err(short)? as usize;
    let referent = match syntax {
        TransferSyntax::Ndr32 => r.u32().map_err(short)? as u64,
        TransferSyntax::Ndr64 => {
            r.skip(4).map_err(short)?;
            r.u64().map_err(short)?
        }
    };
    let mut warnings = Vec::new();
    if referent == 0 {
        let status = r.u32().map_err(short)?;
        if status == 0 {
            return Err("NULL response buffer with a success status".into());
        }
        return Ok(ResponseStub {
            result: Err(HResult(status)),
            warnings,
        });
    }
    let max_count = match syntax {
        TransferSyntax::Ndr32 => r.u32().map_err(short)? as u64,
        TransferSyntax::Ndr64 => r.u64().map_err(short)?,
    };
    if max_count != size as u64 {
        return Err(format!(
            "responseSize {size} differs from the array's max count {max_count}"
        ));
    }
    let payload = r.bytes(size).map_err(short)?.to_vec();
    let pad = (4 - size % 4) % 4;
    let pad_bytes = r.bytes(pad).map_err(short)?;
    if pad_bytes.iter().any(|&b| b != 0) {
        warnings.push("NDR padding bytes are not zero".into());
    }
    let status = r.u32().map_err(short)?;
    if r.remaining() > 16 {
        return Err(format!(
            "{} unexpected bytes after the return value",
            r.remaining()
        ));
    }
    let header = if syntax == TransferSyntax::Ndr32 {
        12
    } else {
        24
    };
    let expected_hint = size + header + 4 + pad;
    if alloc_hint as usize != expected_hint {
        warnings.push(format!(
            "alloc_hint {alloc_hint} differs from the stub size {expected_hint}"
        ));
    }
    if status != 0 {
        return Err(format!(
            "response carries a buffer and a failure status 0x{status:08X}"
        ));
    }
    Ok(ResponseStub {
        result: Ok(payload),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_stub_round_trip_both_syntaxes() {
        let payload: Vec<u8> = (0..=255).collect();
        for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
            let stub = encode_request_stub(&payload, syntax);
            assert_eq!(
                decode_request_stub(&stub, syntax).unwrap(),
                payload.as_slice()
            );
            // Announced size larger than present: take what is there.
            let cut = &stub[..stub.len() - 10];
            assert_eq!(decode_request_stub(cut, syntax).unwrap().len(), 246);
            assert!(decode_request_stub(&stub[..request_header_len(syntax) - 1], syntax).is_err());
        }
    }

    #[test]
    fn response_stub_round_trip_with_padding() {
        for len in [158usize, 160, 228, 260] {
            let payload = vec![0xab; len];
            for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
                let stub = encode_response_stub(&payload, syntax);
                let header = if syntax == TransferSyntax::Ndr32 {
                    12
                } else {
                    24
                };
                assert_eq!(stub.len(), header + len + (4 - len % 4) % 4 + 4);
                let decoded = decode_response_stub(&stub, syntax, stub.len() as u32).unwrap();
                assert_eq!(decoded.result, Ok(payload.clone()));
                assert!(decoded.warnings.is_empty());
            }
        }
    }

    /// The stub around a payload written in place: the conformant array's lengths filled in
    /// afterwards, the same bytes as around a payload copied in.
    #[test]
    fn response_stub_written_in_place_has_the_ndr_layout() {
        for len in [0usize, 1, 3, 4, 158, 260] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let m = (len as u32).to_le_bytes();
            let pad = vec![0u8; (4 - len % 4) % 4];
            let ndr32 = [
                &m[..],
                &0x0002_0000u32.to_le_bytes(),
                &m,
                &payload,
                &pad,
                &[0; 4],
            ]
            .concat();
            let m64 = (len as u64).to_le_bytes();
            let ndr64 = [
                &m[..],
                &[0; 4],
                &0x0002_0000u64.to_le_bytes(),
                &m64,
                &payload,
                &pad,
                &[0; 4],
            ]
            .concat();
            for (syntax, expected) in [
                (TransferSyntax::Ndr32, ndr32),
                (TransferSyntax::Ndr64, ndr64),
            ] {
                assert_eq!(encode_response_stub(&payload, syntax), expected, "{len}");
                let mut out = vec![9; 8];
                write_response_stub_with(&mut out, syntax, |out| {
                    out.extend_from_slice(&payload);
                    Ok::<(), ()>(())
                })
                .unwrap();
                assert_eq!(out[..8], [9; 8]);
                assert_eq!(out[8..], expected, "{len}");
            }
        }
        let mut out = Vec::new();
        let failed = write_response_stub_with(&mut out, TransferSyntax::Ndr32, |_| Err("refused"));
        assert_eq!(failed, Err("refused"));
    }

    #[test]
    fn error_stub_round_trip() {
        for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
            let stub = encode_error_stub(HResult::INVALID_DATA, syntax);
            let decoded = decode_response_stub(&stub, syntax, stub.len() as u32).unwrap();
            assert_eq!(decoded.result, Err(HResult::INVALID_DATA));
        }
    }
}
