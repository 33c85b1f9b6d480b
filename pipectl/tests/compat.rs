//! The writer side of the frozen compatibility files
//! (`parser/tests/compat/`, see its README): today's `pipectl compile`, run
//! with the arguments of `format2/commands.txt`, writes exactly the committed
//! format-2 bytes, the signed ones verify with the committed test keys, and
//! `pipectl verify` refuses the format-1 files by version. With `parser/tests/compat.rs` (the reader side) a change to how
//! format 2 is written or read fails a test even when writer and reader
//! change together; format-1 files are refused by version there.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{pipectl, root, text, tmp};

fn compat() -> PathBuf {
    root().join("parser/tests/compat")
}

fn compat2() -> PathBuf {
    compat().join("format2")
}

#[test]
fn compile_reproduces_every_frozen_file_byte_for_byte() {
    let out = tmp("compat", "out");
    let commands = std::fs::read_to_string(compat2().join("commands.txt")).unwrap();
    let mut n = 0;
    for line in commands
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|a| {
                if a == "parser/tests/compat/format2/" {
                    format!("{}/", out.display())
                } else {
                    a.to_string()
                }
            })
            .collect();
        let seq = args
            .iter()
            .position(|a| a == "--sequence")
            .map(|i| args[i + 1].parse::<u64>().unwrap())
            .expect("--sequence");
        let o = Command::new(env!("CARGO_BIN_EXE_pipectl"))
            .current_dir(root())
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{line}: {}", text(&o.stderr));
        let name = format!("C-00000291-{seq:08}.sys");
        let got = std::fs::read(out.join(&name)).unwrap();
        let want = std::fs::read(compat2().join(&name)).unwrap();
        let first = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got == want,
            "{name}: today's writer differs from the frozen file (lengths {} / {}, first difference at byte {first:?})",
            got.len(),
            want.len()
        );
        n += 1;
    }
    assert_eq!(
        n, 5,
        "format2/commands.txt lists five files today's writer reproduces (four from rules/, sequence 6 from rules-user/; sequence 5 is read-only)"
    );
}

#[test]
fn frozen_signed_files_verify_with_the_test_keys() {
    for (file, key) in [
        ("C-00000291-00000003.sys", "compat-test.pub"),
        ("C-00000291-00000004.sys", "compat-test.pub"),
        ("C-00000291-00000004.sys", "compat-test-2.pub"),
    ] {
        let f = compat2().join(file);
        let k = compat().join(key);
        let o = pipectl(&["verify", f.to_str().unwrap(), "--key", k.to_str().unwrap()]);
        assert!(o.status.success(), "{file} / {key}: {}", text(&o.stderr));
        // The format-1 file of the same sequence is refused by version, not
        // reported as a bad signature.
        let f1 = compat().join(file);
        let o = pipectl(&["verify", f1.to_str().unwrap(), "--key", k.to_str().unwrap()]);
        assert!(!o.status.success(), "format 1 {file} accepted");
        let err = text(&o.stderr);
        assert!(
            err.contains("unsupported format version 1 (this sensor reads version 2)"),
            "format 1 {file}: {err}"
        );
    }
}
