//! The log file rotated by size (`--log-file`, `--log-max-size`, `--log-keep`): when the file
//! holds more than the size, the next write first renames it to `FILE.1` (`FILE.1` to
//! `FILE.2`, …; the oldest beyond the number kept is deleted) and starts a new `FILE`. The
//! writer hands whole pieces (lines) to [`RotatingFile::write`], so a file ends at a line's end.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file rotated by size, keeping `keep` rotated files.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file (its size when opened, plus what was written since).
    written: u64,
    max_size: u64,
    keep: usize,
}

impl RotatingFile {
    /// Opens (or creates) `path` for appending; it rotates once it holds more than
    /// `max_size` bytes, keeping `keep` (at least 1) rotated files.
    pub fn open(path: &Path, max_size: u64, keep: usize) -> io::Result<Self> {
        let file = append(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            written,
            max_size,
            keep: keep.max(1),
        })
    }

    /// `FILE.n`.
    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// The numbers n of the files FILE.n there are.
    fn numbers(&self) -> io::Result<Vec<usize>> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Ok(Vec::new());
        };
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?.file_name();
            let n = entry
                .to_str()
                .and_then(|e| e.strip_prefix(name))
                .and_then(|e| e.strip_prefix('.'))
                .filter(|n| !n.starts_with('0') && !n.starts_with('+'))
                .and_then(|n| n.parse::<usize>().ok());
            numbers.extend(n);
        }
        Ok(numbers)
    }

    /// Renames FILE to FILE.1 after moving the older ones up a number, deletes the one beyond
    /// `keep` (and any left above it by a run that kept more), and opens a new FILE.
    fn rotate(&mut self) -> io::Result<()> {
        for n in self.numbers()?.into_iter().filter(|&n| n >= self.keep) {
            std::fs::remove_file(self.numbered(n))?;
        }
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        self.file = append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rkms-rotate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rotates_past_the_size_keeping_the_newest_files() {
        let d = dir("keep");
        let log = d.join("rkms.log");
        std::fs::write(&log, "old line\n").unwrap();
        // Files of an earlier run that kept more are deleted at the first rotation; other
        // names stay.
        std::fs::write(d.join("rkms.log.3"), "stale\n").unwrap();
        std::fs::write(d.join("rkms.log.x"), "other\n").unwrap();
        let mut f = RotatingFile::open(&log, 20, 2).unwrap();
        for i in 0..10 {
            f.write_all(format!("line {i:02} 0123\n").as_bytes())
                .unwrap();
        }
        let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
        // 9 + 13 bytes > 20: rotated before line 01, then before every second line.
        assert_eq!(read("rkms.log"), "line 09 0123\n");
        assert_eq!(read("rkms.log.1"), "line 07 0123\nline 08 0123\n");
        assert_eq!(read("rkms.log.2"), "line 05 0123\nline 06 0123\n");
        assert!(!d.join("rkms.log.3").exists());
        assert!(d.join("rkms.log.x").exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn appends_to_an_existing_file_counting_its_size() {
        let d = dir("append");
        let log = d.join("rkms.log");
        std::fs::write(&log, "0123456789\n").unwrap();
        let mut f = RotatingFile::open(&log, 10, 1).unwrap();
        f.write_all(b"next\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("rkms.log.1")).unwrap(),
            "0123456789\n"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "next\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}
