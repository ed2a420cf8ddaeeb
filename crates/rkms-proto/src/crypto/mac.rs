//! The V4 MAC (a CBC-MAC with the 160-bit V4 cipher) and the V6 time-slot HMAC.

use std::cell::RefCell;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{v4_cipher, Block16, BlockCipher};

/// V4-MAC (PROTOCOL.md §5.5): pad with `80 00…` to a block multiple, CBC-MAC with zero IV.
pub fn v4_mac(msg: &[u8]) -> Block16 {
    let cipher = v4_cipher();
    let mut mac = [0u8; 16];
    let mut blocks = msg.chunks_exact(16);
    for block in &mut blocks {
        for i in 0..16 {
            mac[i] ^= block[i];
        }
        cipher.encrypt(&mut mac);
    }
    let tail = blocks.remainder();
    for (i, b) in tail.iter().enumerate() {
        mac[i] ^= b;
    }
    mac[tail.len()] ^= 0x80;
    cipher.encrypt(&mut mac);
    mac
}

const C1: u64 = 0x0000_0022_8168_89BD;
const C2: u64 = 0x0000_0020_8CBA_B5ED;
const C3: u64 = 0x3156_CD5A_C628_477A;

/// What a verifier adds to a slot value to try the neighbouring time slots (§5.7).
pub const V6_SLOT_STEP: u64 = C1;

/// The V6 HMAC time-slot value for a request time (FILETIME).
pub fn v6_time_slot(request_time: u64) -> u64 {
    (request_time / C1).wrapping_mul(C2).wrapping_add(C3)
}

/// The V6 HMAC key for a slot value: the last 16 bytes of SHA-256(slot, little-endian).
pub fn v6_hmac_key(slot: u64) -> Block16 {
    let digest = Sha256::digest(slot.to_le_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[16..32]);
    key
}

/// The last 16 bytes of HMAC-SHA256(key, data).
pub fn v6_hmac(key: &Block16, data: &[u8]) -> Block16 {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[16..32]);
    out
}

std::thread_local! {
    /// The HMAC keyed for the time slot last used on this thread: the slot changes every
    /// ~4 hours, so the key's SHA-256 and the HMAC's keyed state are made once per slot,
    /// not once per response.
    static V6_SLOT_HMAC: RefCell<Option<(u64, Hmac<Sha256>)>> = const { RefCell::new(None) };
}

/// [`v6_hmac`] with the key of time slot `slot` ([`v6_hmac_key`]), keyed once per slot.
pub fn v6_slot_hmac(slot: u64, data: &[u8]) -> Block16 {
    let keyed = |slot| {
        <Hmac<Sha256> as Mac>::new_from_slice(&v6_hmac_key(slot))
            .expect("HMAC takes any key length")
    };
    let mut mac = V6_SLOT_HMAC
        .try_with(|cell| {
            let mut cached = cell.borrow_mut();
            match &*cached {
                Some((s, mac)) if *s == slot => mac.clone(),
                _ => {
                    let mac = keyed(slot);
                    *cached = Some((slot, mac.clone()));
                    mac
                }
            }
        })
        // A thread being torn down keys its own.
        .unwrap_or_else(|_| keyed(slot));
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[16..32]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn v4_mac_vectors_section_5_5() {
        assert_eq!(v4_mac(&[]).to_vec(), h("d144963029e2bd12f9970c9f52b27f09"));
        assert_eq!(
            v4_mac(&[0u8; 16]).to_vec(),
            h("2a090d7c1155251ab86445447d060335")
        );
        let seq: Vec<u8> = (0u8..15).collect();
        assert_eq!(v4_mac(&seq).to_vec(), h("d9ced343d1fa93d3a37414a0be533037"));
    }

    #[test]
    fn slot_hmac_equals_the_hmac_with_the_slots_key() {
        let data: Vec<u8> = (0u8..=200).collect();
        let slots = [v6_time_slot(0x01DB_5F4A_3C2E_1000), 7, 7 + V6_SLOT_STEP, 7];
        for slot in slots {
            for len in [0, 1, 63, 64, 65, data.len()] {
                assert_eq!(
                    v6_slot_hmac(slot, &data[..len]),
                    v6_hmac(&v6_hmac_key(slot), &data[..len]),
                    "slot {slot:x}, {len} bytes"
                );
            }
        }
        // Each thread keys its own.
        std::thread::spawn(move || {
            assert_eq!(v6_slot_hmac(9, &data), v6_hmac(&v6_hmac_key(9), &data));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn v6_key_vector_section_5_7() {
        let slot = v6_time_slot(0x01DB_5F4A_3C2E_1000);
        assert_eq!(slot, 0x3317_3ae4_0ffa_a998);
        assert_eq!(
            v6_hmac_key(slot).to_vec(),
            h("241f199b068ad4346e9e609140236fa6")
        );
    }
}
