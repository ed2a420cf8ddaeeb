//! Helpers shared by the integration tests: test data loading and a scripted RNG.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's `testdata` folder.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Bytes of `testdata/appendix-a/<name>.hex`.
pub fn appendix(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(testdata().join("appendix-a").join(format!("{name}.hex"))).unwrap();
    hex::decode(text.trim()).unwrap()
}

/// An RNG that returns scripted bytes in order, then zeros.
pub struct ScriptedRng(pub Vec<u8>, pub usize);

impl ScriptedRng {
    pub fn new(chunks: &[&[u8]]) -> Self {
        ScriptedRng(chunks.concat(), 0)
    }
}

impl rand_core::RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
