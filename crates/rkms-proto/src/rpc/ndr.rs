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
    let m = payload.len() as u32;
    match syntax {
        TransferSyntax::Ndr32 => {
            out.put_u32(m);
            out.put_u32(REFERENT_ID);
            out.put_u32(m);
        }
        TransferSyntax::Ndr64 => {
            out.put_u32(m);
            out.put_u32(0);
            out.put_u64(REFERENT_ID as u64);
            out.put_u64(m as u64);
        }
    }
    out.extend_from_slice(payload);
    out.pad_to(4);
    out.put_u32(0);
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

    #[test]
    fn error_stub_round_trip() {
        for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
            let stub = encode_error_stub(HResult::INVALID_DATA, syntax);
            let decoded = decode_response_stub(&stub, syntax, stub.len() as u32).unwrap();
            assert_eq!(decoded.result, Err(HResult::INVALID_DATA));
        }
    }
}
