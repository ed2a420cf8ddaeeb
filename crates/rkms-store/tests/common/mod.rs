//! Test helpers shared by the integration tests: temporary directories and activation builders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rkms_store::Activation;
use uuid::Uuid;

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/rkms-store-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "rkms-store-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A file name inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deterministic UUID from a small number (tests read better than random ones).
pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1111_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// Application IDs.
pub fn windows_app() -> Uuid {
    Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap()
}
/// Office 2013+ application ID.
pub fn office_app() -> Uuid {
    Uuid::parse_str("0ff1ce15-a989-479d-af46-f275c6370663").unwrap()
}

/// A successful Windows activation of client `cmid` at `time` for KMS ID `kms`.
pub fn activation(cmid: Uuid, kms: Uuid, time: i64) -> Activation {
    Activation {
        cmid,
        application_id: windows_app(),
        sku_id: id(0x5c),
        kms_id: kms,
        workstation: format!("PC-{}", &cmid.to_string()[..8]),
        license_status: 2,
        grace_minutes: 43200,
        is_vm: false,
        protocol: "6.0".into(),
        time,
        address: "192.0.2.10:50000".into(),
        epid: "06401-00206-551-000000-03-1033-9200.0000-3652017".into(),
        hresult: 0,
    }
}
