//! Where rkms looks for its files by default, per platform: the configuration file, and the
//! Windows service's directories under %ProgramData%; the Windows service's default account.

use std::path::PathBuf;

/// The file read when `--config` is not given, if it exists (Unix; Windows: see
/// [`default_config_path`]).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rkms/rkms.toml";

/// The account the Windows service runs as unless `rkms service install --account` says
/// otherwise.
pub const DEFAULT_SERVICE_ACCOUNT: &str = r"NT AUTHORITY\LocalService";

/// The configuration file read when `--config` is not given (if it exists):
/// /etc/rkms/rkms.toml, or %ProgramData%\rkms\rkms.toml on Windows.
pub fn default_config_path() -> PathBuf {
    #[cfg(windows)]
    {
        PathBuf::from(WindowsPaths::from_env(&|k| std::env::var(k).ok()).config)
    }
    #[cfg(not(windows))]
    PathBuf::from(DEFAULT_CONFIG_PATH)
}

/// The service's directories and files under %ProgramData% (Windows paths, as text, so they
/// are computed and tested the same on every platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsPaths {
    /// %ProgramData%\rkms: state (client database) and the optional configuration file.
    pub root: String,
    /// %ProgramData%\rkms\logs.
    pub logs: String,
    /// %ProgramData%\rkms\logs\rkms.log.
    pub log_file: String,
    /// %ProgramData%\rkms\clients.db.
    pub db: String,
    /// %ProgramData%\rkms\rkms.toml (read when it exists).
    pub config: String,
}

impl WindowsPaths {
    /// The paths under `ProgramData` (C:\ProgramData when the variable is not set).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Self {
        let program_data = get("ProgramData")
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| r"C:\ProgramData".into());
        let root = format!(r"{}\rkms", program_data.trim_end_matches(['\\', '/']));
        WindowsPaths {
            logs: format!(r"{root}\logs"),
            log_file: format!(r"{root}\logs\rkms.log"),
            db: format!(r"{root}\clients.db"),
            config: format!(r"{root}\rkms.toml"),
            root,
        }
    }
}
