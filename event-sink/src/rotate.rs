//! JSON lines in a file rotated by size, without losing or splitting a line.
//!
//! Lines go to `<dir>/<stem>.jsonl`. Before a line that would take the file
//! past `max_bytes` (and the file is not empty), the file is closed and
//! renamed `<stem>.1.jsonl` (older ones shift to `.2`, …; the one past
//! `keep` is deleted), and a new file is started. Each line is written with
//! one `write_all` and flushed, so a reader (`tail -f`, Winlogbeat, Wazuh)
//! never sees half a line except after a crash in the middle of a write;
//! then the next open ends the torn line with a newline so every line after
//! it stays whole. A rotation that fails (a reader holding a rotated file
//! open without delete sharing) is counted and retried before the next
//! line; meanwhile lines keep going to the current file: nothing is dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A size-rotated JSON-lines file.
#[derive(Debug)]
pub struct Rotating {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
    /// Rotations done.
    pub rotations: u64,
    /// Rotations that failed (retried before the next line).
    pub rotate_failures: u64,
}

fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let mut size = f.metadata()?.len();
    if size > 0 {
        // A torn last line (crash during a write): end it.
        f.seek(SeekFrom::Start(size - 1))?;
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
            size += 1;
        }
    }
    Ok((f, size))
}

impl Rotating {
    /// Opens (appends to) `path`, which must end in `.jsonl`; `max_bytes`
    /// per file (at least one line is always written), `keep` rotated files.
    ///
    /// # Errors
    /// The file cannot be created or read, or `path` does not end in `.jsonl`.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Rotating> {
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: the JSON path must end in .jsonl", path.display()),
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let (file, size) = open_append(path)?;
        Ok(Rotating {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: Some(file),
            size,
            rotations: 0,
            rotate_failures: 0,
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<stem>.<n>.jsonl` beside the current file.
    pub fn rotated(&self, n: u32) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path.with_file_name(format!("{stem}.{n}.jsonl"))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        // Closed first: Windows renames an open file only when every opener
        // allowed delete sharing.
        self.file = None;
        let result = (|| {
            if self.keep == 0 {
                std::fs::remove_file(&self.path)?;
                return Ok(());
            }
            let oldest = self.rotated(self.keep);
            if oldest.exists() {
                std::fs::remove_file(&oldest)?;
            }
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))
        })();
        let (file, size) = open_append(&self.path)?;
        self.file = Some(file);
        self.size = size;
        match result {
            Ok(()) => {
                self.rotations += 1;
                Ok(())
            }
            Err(e) => {
                self.rotate_failures += 1;
                Err(e)
            }
        }
    }

    /// Appends `line` and a newline (one write, then a flush), rotating
    /// first when the line would not fit. A failed rotation does not stop
    /// the line: it goes to the current file.
    ///
    /// # Errors
    /// The write itself failed (the line is not in the file).
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let need = line.len() as u64 + 1;
        if self.size > 0 && self.size.saturating_add(need) > self.max_bytes {
            let _ = self.rotate();
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let f = match &mut self.file {
            Some(f) => f,
            None => {
                let (f, size) = open_append(&self.path)?;
                self.size = size;
                self.file.insert(f)
            }
        };
        f.write_all(&buf)?;
        f.flush()?;
        self.size += need;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "event-sink-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn all_lines(r: &Rotating, keep: u32) -> Vec<String> {
        let mut files: Vec<PathBuf> = (1..=keep).rev().map(|n| r.rotated(n)).collect();
        files.push(r.path().to_path_buf());
        files
            .iter()
            .filter(|p| p.exists())
            .flat_map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                assert!(text.is_empty() || text.ends_with('\n'));
                text.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn rotation_keeps_every_line_whole_and_in_order() {
        let d = temp_dir("rotate");
        let mut r = Rotating::open(&d.join("ev.jsonl"), 300, 100).unwrap();
        let lines: Vec<String> = (0..200)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 37)))
            .collect();
        for l in &lines {
            r.write_line(l).unwrap();
        }
        assert!(r.rotations > 20, "{} rotations", r.rotations);
        assert_eq!(all_lines(&r, 100), lines);
        for n in 1..=r.rotations as u32 {
            let len = std::fs::metadata(r.rotated(n)).unwrap().len();
            assert!(len <= 300, "{n}: {len}");
        }
        // A line longer than the limit still goes in, alone in its file.
        let big = "y".repeat(1000);
        r.write_line(&big).unwrap();
        r.write_line("{}").unwrap();
        assert_eq!(
            std::fs::read_to_string(r.rotated(1)).unwrap(),
            format!("{big}\n")
        );
    }

    #[test]
    fn keep_bounds_the_number_of_files() {
        let d = temp_dir("keep");
        let mut r = Rotating::open(&d.join("ev.jsonl"), 20, 2).unwrap();
        for i in 0..10 {
            r.write_line(&format!("line-{i:04}-xxxxx")).unwrap();
        }
        assert!(!r.rotated(3).exists());
        assert_eq!(
            all_lines(&r, 2),
            ["line-0007-xxxxx", "line-0008-xxxxx", "line-0009-xxxxx"]
        );
        let names = std::fs::read_dir(&d).unwrap().count();
        assert_eq!(names, 3);
    }

    #[test]
    fn a_failed_rotation_loses_nothing_and_is_retried() {
        let d = temp_dir("fail");
        let mut r = Rotating::open(&d.join("ev.jsonl"), 20, 1).unwrap();
        // `.1.jsonl` is a non-empty directory: the rename onto it fails.
        std::fs::create_dir_all(r.rotated(1).join("x")).unwrap();
        for i in 0..3 {
            r.write_line(&format!("line-{i:04}-xxxxx")).unwrap();
        }
        assert!(r.rotate_failures >= 1);
        assert_eq!(
            std::fs::read_to_string(r.path()).unwrap().lines().count(),
            3,
            "every line is in the current file"
        );
        std::fs::remove_dir_all(r.rotated(1)).unwrap();
        r.write_line("after").unwrap();
        assert_eq!(r.rotations, 1);
        assert_eq!(std::fs::read_to_string(r.path()).unwrap(), "after\n");
        assert_eq!(
            std::fs::read_to_string(r.rotated(1))
                .unwrap()
                .lines()
                .count(),
            3
        );
    }

    #[test]
    fn a_torn_line_is_ended_on_open_and_the_path_must_be_jsonl() {
        let d = temp_dir("torn");
        let p = d.join("ev.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":").unwrap();
        let mut r = Rotating::open(&p, 1 << 20, 1).unwrap();
        r.write_line("{\"c\":3}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":\n{\"c\":3}\n"
        );
        assert!(Rotating::open(&d.join("ev.json"), 10, 1).is_err());
    }
}
