//! NDR32 and NDR64 stubs: decoding arbitrary request and response stubs, and round trips of
//! the input used as a payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkms_proto::rpc::ndr::{
    decode_request_stub, decode_response_stub, encode_request_stub, encode_response_stub,
};
use rkms_proto::rpc::TransferSyntax;

fuzz_target!(|data: &[u8]| {
    for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
        if let Ok(payload) = decode_request_stub(data, syntax) {
            let declared = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
            assert!(payload.len() <= declared);
            assert!(payload.len() <= data.len());
        }
        let hint_from_input = data
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        for hint in [data.len() as u32, hint_from_input, 0] {
            if let Ok(stub) = decode_response_stub(data, syntax, hint) {
                if let Ok(payload) = &stub.result {
                    assert!(payload.len() <= data.len());
                }
            }
        }

        // Round trips with the input as the payload.
        let stub = encode_request_stub(data, syntax);
        assert_eq!(decode_request_stub(&stub, syntax), Ok(data));
        let stub = encode_response_stub(data, syntax);
        let decoded = decode_response_stub(&stub, syntax, stub.len() as u32).expect("round trip");
        assert_eq!(decoded.result.as_deref(), Ok(data));
        assert!(decoded.warnings.is_empty());
    }
});
