//! Helpers shared by the integration tests: test data loading and a scripted RNG.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's `testdata` folder.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Bytes of `testdata/appendix-a/<name>.hex`.
pub fn appendix(name: &str) -> Vec<u8> {
    let text =
        std::fs::read_to_string(testdata().join("appendix-a").join(format!("{name}.hex"))).unwrap();
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

/// One PDU of a captured session: direction (true = client to server) and bytes.
pub type Captured = (bool, Vec<u8>);

/// Parses a `.hex` session file of `testdata/vectors`.
pub fn load_session(path: &std::path::Path) -> Vec<Captured> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (dir, hex) = l.split_once(' ')?;
            match dir {
                "C>S" => Some((true, hex::decode(hex.trim()).unwrap())),
                "S>C" => Some((false, hex::decode(hex.trim()).unwrap())),
                _ => None,
            }
        })
        .collect()
}

/// Every `.hex` file in the given vector folders, sorted.
pub fn session_files(folders: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for folder in folders {
        for entry in std::fs::read_dir(testdata().join("vectors").join(folder)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "hex") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty());
    out
}

/// Values a reference client printed about a verified response (`.client.txt`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientSaw {
    pub epid: Option<String>,
    pub hwid: Option<String>,
    pub count: Option<u32>,
}

/// Reads the `.client.txt` next to a session (vlmcs or py-kms client format).
pub fn client_saw(session: &std::path::Path) -> Option<ClientSaw> {
    let name = session.file_name()?.to_str()?;
    let base = name
        .trim_end_matches(".hex")
        .trim_end_matches("-1")
        .trim_end_matches("-2");
    let text =
        std::fs::read_to_string(session.with_file_name(format!("{base}.client.txt"))).ok()?;
    let mut saw = ClientSaw::default();
    for line in text.lines() {
        let value = |l: &str| l.rsplit(':').next().unwrap().trim().to_string();
        if line.contains("KMS host extended PID") || line.contains("KMS Host ePID:") {
            saw.epid.get_or_insert(value(line));
        } else if line.contains("KMS host Hardware ID") || line.contains("KMS Host HWID:") {
            saw.hwid.get_or_insert(value(line));
        } else if line.contains("KMS host current active clients")
            || line.contains("Current Client Count:")
        {
            saw.count.get_or_insert(value(line).parse().unwrap());
        }
    }
    Some(saw)
}
