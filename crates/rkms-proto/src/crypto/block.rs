//! The KMS block ciphers behind one trait: standard AES-128 (V5) and the two AES variants with a
//! custom key schedule (V4: 160-bit key, 11 rounds; V6: three round-key bytes modified).

use std::sync::OnceLock;

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::hazmat::{
    cipher_round, equiv_inv_cipher_round, equiv_inv_cipher_round_par, inv_mix_columns, mix_columns,
};
use aes::{Block, Block8};

use super::{xor16, Block16};

/// KMS V4 MAC key (160 bits).
pub const KEY_V4: [u8; 20] = [
    0x05, 0x3D, 0x83, 0x07, 0xF9, 0xE5, 0xF0, 0x88, 0xEB, 0x5E, 0xA6, 0x68, 0x6C, 0xF0, 0x37, 0xC7,
    0xE4, 0xEF, 0xD2, 0xD6,
];
/// KMS V5 key.
pub const KEY_V5: [u8; 16] = [
    0xCD, 0x7E, 0x79, 0x6F, 0x2A, 0xB2, 0x5D, 0xCB, 0x55, 0xFF, 0xC8, 0xEF, 0x83, 0x64, 0xC4, 0x70,
];
/// KMS V6 key (used with the modified schedule).
pub const KEY_V6: [u8; 16] = [
    0xA9, 0x4A, 0x41, 0x95, 0xE2, 0x01, 0x43, 0x2D, 0x9B, 0xCB, 0x46, 0x04, 0x05, 0xD8, 0x4A, 0x21,
];

/// A 128-bit block cipher, encrypting and decrypting one block in place.
pub trait BlockCipher: Sync {
    /// Encrypts one block.
    fn encrypt(&self, block: &mut Block16);
    /// Decrypts one block.
    fn decrypt(&self, block: &mut Block16);
    /// Decrypts up to [`PAR_BLOCKS`] blocks (each on its own, as by [`BlockCipher::decrypt`]);
    /// ciphers whose hardware pipelines AES rounds do them together.
    fn decrypt_par(&self, blocks: &mut [Block16]) {
        for b in blocks {
            self.decrypt(b);
        }
    }

    /// Encrypts `data` (whole blocks) in place with CBC from `iv`: one call per message, so
    /// that a cipher can run its own loop over the blocks (see [`super::cbc_encrypt_in_place`]).
    fn cbc_encrypt_blocks(&self, iv: &Block16, data: &mut [u8]) {
        let mut prev = *iv;
        for chunk in data.chunks_exact_mut(16) {
            let mut block = [0u8; 16];
            block.copy_from_slice(chunk);
            let mut block = xor16(&block, &prev);
            self.encrypt(&mut block);
            chunk.copy_from_slice(&block);
            prev = block;
        }
    }
}

/// The first 16 bytes of `b` as one 128-bit value (native byte order: for XORs only).
fn u128_of(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    u128::from_ne_bytes(a)
}

/// Blocks [`BlockCipher::decrypt_par`] takes at most.
pub const PAR_BLOCKS: usize = 8;

impl BlockCipher for aes::Aes128 {
    fn encrypt(&self, block: &mut Block16) {
        BlockEncrypt::encrypt_block(self, Block::from_mut_slice(block));
    }
    fn decrypt(&self, block: &mut Block16) {
        BlockDecrypt::decrypt_block(self, Block::from_mut_slice(block));
    }
}

const MAX_ROUNDS: usize = 11;

/// An AES-family cipher with an explicit (possibly non-standard) expanded key schedule.
#[derive(Clone)]
pub struct ExpandedKey {
    rounds: usize,
    /// Encryption round keys 0..=rounds.
    enc: [Block; MAX_ROUNDS + 1],
    /// Round keys for the equivalent inverse cipher: InvMixColumns(rk r) for 0..rounds-1 (the
    /// last decryption round is an equivalent inverse round with InvMixColumns(rk 0) followed
    /// by MixColumns, which leaves InvShiftRows, InvSubBytes and rk 0 added: MixColumns is
    /// linear).
    dec: [Block; MAX_ROUNDS + 1],
    /// `dec`, each key repeated for the eight blocks of [`BlockCipher::decrypt_par`].
    dec8: Box<[Block8; MAX_ROUNDS + 1]>,
    /// MixColumns(last round key): the last encryption round is a full round with this key
    /// followed by InvMixColumns, which leaves SubBytes, ShiftRows and the last round key
    /// added (InvMixColumns is linear), in two round-function calls and no separate XOR.
    enc_last_mixed: Block,
}

impl ExpandedKey {
    /// Expands `key` (4 to 8 words) per FIPS-197 generalised to any Nk, for `rounds` rounds.
    ///
    /// Panics if the key length is not a multiple of 4 in 16..=32 or `rounds` is out of 1..=11:
    /// callers pass compile-time constants only.
    pub fn expand(key: &[u8], rounds: usize) -> Self {
        assert!(
            key.len().is_multiple_of(4)
                && (16..=32).contains(&key.len())
                && (1..=MAX_ROUNDS).contains(&rounds)
        );
        let nk = key.len() / 4;
        let total = 4 * (rounds + 1);
        let mut w: Vec<[u8; 4]> = key.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
        let mut rcon = 1u8;
        for i in nk..total {
            let mut t = w[i - 1];
            if i % nk == 0 {
                t.rotate_left(1);
                t = sub_word(t);
                t[0] ^= rcon;
                rcon = xtime(rcon);
            } else if nk > 6 && i % nk == 4 {
                t = sub_word(t);
            }
            let prev = w[i - nk];
            w.push([
                prev[0] ^ t[0],
                prev[1] ^ t[1],
                prev[2] ^ t[2],
                prev[3] ^ t[3],
            ]);
        }
        let mut enc = [Block::default(); MAX_ROUNDS + 1];
        for (r, rk) in enc.iter_mut().take(rounds + 1).enumerate() {
            for c in 0..4 {
                rk[4 * c..4 * c + 4].copy_from_slice(&w[4 * r + c]);
            }
        }
        Self::from_round_keys(enc, rounds)
    }

    fn from_round_keys(enc: [Block; MAX_ROUNDS + 1], rounds: usize) -> Self {
        let mut dec = enc;
        for rk in dec.iter_mut().take(rounds) {
            inv_mix_columns(rk);
        }
        let dec8 = Box::new(dec.map(|k| Block8::from([k; PAR_BLOCKS])));
        let mut enc_last_mixed = enc[rounds];
        mix_columns(&mut enc_last_mixed);
        ExpandedKey {
            rounds,
            enc,
            dec,
            dec8,
            enc_last_mixed,
        }
    }

    /// XORs `value` into byte `offset` of the expanded schedule (the V6 modification).
    pub fn modify_schedule_byte(mut self, offset: usize, value: u8) -> Self {
        self.enc[offset / 16][offset % 16] ^= value;
        Self::from_round_keys(self.enc, self.rounds)
    }

    /// Round key `r` (0..=rounds).
    pub fn round_key(&self, r: usize) -> Block16 {
        self.enc[r].into()
    }

    /// Number of rounds.
    pub fn rounds(&self) -> usize {
        self.rounds
    }
}

impl ExpandedKey {
    /// Encrypts a block to which round key 0 has already been added (CBC adds it together
    /// with the previous ciphertext block).
    fn encrypt_rounds(&self, state: &mut Block) {
        for r in 1..self.rounds {
            cipher_round(state, &self.enc[r]);
        }
        // Final round: SubBytes and ShiftRows without MixColumns (see `enc_last_mixed`).
        cipher_round(state, &self.enc_last_mixed);
        inv_mix_columns(state);
    }

    /// The last decryption round (InvShiftRows, InvSubBytes, round key 0; see `dec`) of a
    /// state that has been through the others.
    fn decrypt_last(&self, state: &mut Block) {
        equiv_inv_cipher_round(state, &self.dec[0]);
        mix_columns(state);
    }
}

impl BlockCipher for ExpandedKey {
    fn encrypt(&self, block: &mut Block16) {
        let state = Block::from_mut_slice(block);
        xor_into(state, &self.enc[0]);
        self.encrypt_rounds(state);
    }

    fn decrypt(&self, block: &mut Block16) {
        let state = Block::from_mut_slice(block);
        xor_into(state, &self.enc[self.rounds]);
        for r in (1..self.rounds).rev() {
            equiv_inv_cipher_round(state, &self.dec[r]);
        }
        self.decrypt_last(state);
    }

    fn decrypt_par(&self, blocks: &mut [Block16]) {
        // The same steps as `decrypt`, one round of up to eight blocks per call (CBC
        // decryption is parallel: the server's request and the client's response).
        let n = blocks.len().min(PAR_BLOCKS);
        let mut state = Block8::default();
        for (s, b) in state.iter_mut().zip(blocks.iter()) {
            *s = *Block::from_slice(b);
            xor_into(s, &self.enc[self.rounds]);
        }
        for r in (1..self.rounds).rev() {
            equiv_inv_cipher_round_par(&mut state, &self.dec8[r]);
        }
        equiv_inv_cipher_round_par(&mut state, &self.dec8[0]);
        for (s, b) in state.iter_mut().zip(blocks.iter_mut()).take(n) {
            mix_columns(s);
            b.copy_from_slice(s);
        }
        for b in blocks.iter_mut().skip(PAR_BLOCKS) {
            self.decrypt(b);
        }
    }

    fn cbc_encrypt_blocks(&self, iv: &Block16, data: &mut [u8]) {
        // Each block's input is plaintext ^ previous ciphertext ^ round key 0, one XOR pass.
        let key0 = u128_of(&self.enc[0]);
        let mut prev = u128::from_ne_bytes(*iv);
        for chunk in data.chunks_exact_mut(16) {
            let mut block = Block::from((u128_of(chunk) ^ prev ^ key0).to_ne_bytes());
            self.encrypt_rounds(&mut block);
            chunk.copy_from_slice(&block);
            prev = u128_of(&block);
        }
    }
}

fn xor_into(state: &mut Block, key: &Block) {
    let x = u128_of(state) ^ u128_of(key);
    state.copy_from_slice(&x.to_ne_bytes());
}

fn xtime(b: u8) -> u8 {
    (b << 1) ^ if b & 0x80 != 0 { 0x1b } else { 0 }
}

/// S-box substitution of a word, using the `aes` crate's round function: bytes placed in row 0
/// (block offsets 0, 4, 8, 12) are not moved by ShiftRows, and undoing MixColumns leaves SubBytes.
fn sub_word(w: [u8; 4]) -> [u8; 4] {
    let mut b = Block::default();
    for (i, byte) in w.iter().enumerate() {
        b[4 * i] = *byte;
    }
    cipher_round(&mut b, &Block::default());
    inv_mix_columns(&mut b);
    [b[0], b[4], b[8], b[12]]
}

/// The V4 MAC cipher: 160-bit key, 11 rounds.
pub fn v4_cipher() -> &'static ExpandedKey {
    static C: OnceLock<ExpandedKey> = OnceLock::new();
    C.get_or_init(|| ExpandedKey::expand(&KEY_V4, 11))
}

/// The V5 cipher: standard AES-128.
pub fn v5_cipher() -> &'static aes::Aes128 {
    static C: OnceLock<aes::Aes128> = OnceLock::new();
    C.get_or_init(|| aes::Aes128::new(&KEY_V5.into()))
}

/// The V6 cipher: AES-128 whose round keys 4, 6 and 8 have byte 0 modified after expansion.
pub fn v6_cipher() -> &'static ExpandedKey {
    static C: OnceLock<ExpandedKey> = OnceLock::new();
    C.get_or_init(|| {
        ExpandedKey::expand(&KEY_V6, 10)
            .modify_schedule_byte(64, 0x73)
            .modify_schedule_byte(96, 0x09)
            .modify_schedule_byte(128, 0xE4)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn enc(c: &dyn BlockCipher, input: &[u8]) -> Vec<u8> {
        let mut b: Block16 = input.try_into().unwrap();
        c.encrypt(&mut b);
        let mut back = b;
        c.decrypt(&mut back);
        assert_eq!(back.as_slice(), input, "decrypt inverts encrypt");
        b.to_vec()
    }

    #[test]
    fn parallel_decryption_equals_one_block_at_a_time() {
        let ciphers: [&dyn BlockCipher; 3] = [v4_cipher(), v5_cipher(), v6_cipher()];
        for c in ciphers {
            for n in 0..=PAR_BLOCKS + 2 {
                let blocks: Vec<Block16> = (0..n)
                    .map(|i| core::array::from_fn(|j| (i * 16 + j * 7) as u8))
                    .collect();
                let mut par = blocks.clone();
                c.decrypt_par(&mut par);
                let mut one = blocks.clone();
                for b in &mut one {
                    c.decrypt(b);
                }
                assert_eq!(par, one, "{n} blocks");
            }
        }
        let mut b = [[9u8; 16]; 3];
        v6_cipher().decrypt_par(&mut b);
        for block in &mut b {
            v6_cipher().encrypt(block);
        }
        assert_eq!(b, [[9u8; 16]; 3]);
    }

    #[test]
    fn primitive_vectors_section_5_3() {
        let zero = [0u8; 16];
        let seq: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            enc(v4_cipher(), &zero),
            h("933030f10e2e7782b80915d5778a4957")
        );
        assert_eq!(
            enc(v4_cipher(), &seq),
            h("28916e4a0ee525b42cf393cae0f4dc9a")
        );
        assert_eq!(
            enc(v5_cipher(), &zero),
            h("ec7c7e75b1923978eac4b2d2260235d5")
        );
        assert_eq!(
            enc(v6_cipher(), &zero),
            h("8ca59de0c483c04aa7026a22d6dd208e")
        );
        assert_eq!(
            enc(v6_cipher(), &seq),
            h("ca89ca11b2c4e77a94e806af17136b38")
        );
    }

    #[test]
    fn standard_schedule_matches_aes_crate() {
        let ours = ExpandedKey::expand(&KEY_V5, 10);
        for input in [
            [0u8; 16],
            [0x5a; 16],
            core::array::from_fn(|i| i as u8 * 17),
        ] {
            let mut a = input;
            let mut b = input;
            ours.encrypt(&mut a);
            v5_cipher().encrypt(&mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn schedules_match_appendix_b() {
        let v4 = v4_cipher();
        assert_eq!(v4.rounds(), 11);
        assert_eq!(
            v4.round_key(1).to_vec(),
            h("e4efd2d6db88756e226d85e6c933238e")
        );
        assert_eq!(
            v4.round_key(11).to_vec(),
            h("4a7d08d621ed8fd1454df13ba968579d")
        );
        let v5 = ExpandedKey::expand(&KEY_V5, 10);
        assert_eq!(
            v5.round_key(10).to_vec(),
            h("aa20a23d6a7693cd0c7eb589e541336f")
        );
        let v6 = v6_cipher();
        assert_eq!(
            v6.round_key(4).to_vec(),
            h("0530e12e111e2b4d3f6a5901edca6094")
        );
        assert_eq!(
            v6.round_key(5).to_vec(),
            h("12e0c37b03fee8363c94b137d15ed1a3")
        );
        assert_eq!(
            v6.round_key(6).to_vec(),
            h("63dec94569202173 55b4904484ea41e7")
        );
        assert_eq!(
            v6.round_key(8).to_vec(),
            h("efc82943cfb5552a5e7cb9074b5f14cd")
        );
        assert_eq!(
            v6.round_key(10).to_vec(),
            h("a0625e9bb0e59f41fe1ee79cfbba8b8c")
        );
    }

    #[test]
    fn sub_word_is_the_sbox() {
        assert_eq!(sub_word([0x00, 0x01, 0x53, 0xff]), [0x63, 0x7c, 0xed, 0x16]);
    }
}
