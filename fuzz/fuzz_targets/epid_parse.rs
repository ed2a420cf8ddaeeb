//! `Epid::parse` on arbitrary text (what it accepts must print back identically), and
//! `epid::generate` on arbitrary parameters (what it makes must parse back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkms_proto::epid::{generate, Epid, EpidParams};
use rkms_proto_fuzz::CheapRng;

fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]])
}

fn i64_at(d: &[u8], i: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[i..i + 8]);
    i64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(e) = Epid::parse(&text) {
        assert_eq!(e.to_string(), text, "accepted text prints back identically");
        assert!(e.activation_date().is_some());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<Epid>();
    }

    if data.len() >= 48 {
        let params = EpidParams {
            platform_id: u32_at(data, 0),
            group_id: u32_at(data, 4),
            min_key_id: u32_at(data, 8),
            max_key_id: u32_at(data, 12),
            lcid: u32_at(data, 16),
            build: u32_at(data, 20),
            min_date_unix: i64_at(data, 24),
            now_unix: i64_at(data, 32),
        };
        let e = generate(&params, &mut CheapRng(i64_at(data, 40) as u64 | 1));
        assert_eq!(
            Epid::parse(&e.to_string()),
            Ok(e),
            "generated ePID parses back"
        );
        if params.max_key_id > params.min_key_id {
            assert!((params.min_key_id..params.max_key_id).contains(&e.key_id));
        } else {
            assert_eq!(e.key_id, params.min_key_id);
        }
    }
});
