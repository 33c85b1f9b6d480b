//! The writer side of the frozen compatibility files
//! (`parser/tests/compat/`, see its README): today's `pipectl compile`, run
//! with the arguments of `commands.txt`, writes exactly the committed bytes,
//! and the signed ones verify with the committed test keys. With
//! `parser/tests/compat.rs` (the reader side) a change to how format 1 is
//! written or read fails a test even when writer and reader change together.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{pipectl, root, text, tmp};

fn compat() -> PathBuf {
    root().join("parser/tests/compat")
}

#[test]
fn compile_reproduces_every_frozen_file_byte_for_byte() {
    let out = tmp("compat", "out");
    let commands = std::fs::read_to_string(compat().join("commands.txt")).unwrap();
    let mut n = 0;
    for line in commands
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|a| {
                if a == "parser/tests/compat/" {
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
        let want = std::fs::read(compat().join(&name)).unwrap();
        let first = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got == want,
            "{name}: today's writer differs from the frozen file (lengths {} / {}, first difference at byte {first:?})",
            got.len(),
            want.len()
        );
        n += 1;
    }
    assert_eq!(n, 4, "commands.txt lists the four files");
}

#[test]
fn frozen_signed_files_verify_with_the_test_keys() {
    for (file, key) in [
        ("C-00000291-00000003.sys", "compat-test.pub"),
        ("C-00000291-00000004.sys", "compat-test.pub"),
        ("C-00000291-00000004.sys", "compat-test-2.pub"),
    ] {
        let f = compat().join(file);
        let k = compat().join(key);
        let o = pipectl(&["verify", f.to_str().unwrap(), "--key", k.to_str().unwrap()]);
        assert!(o.status.success(), "{file} / {key}: {}", text(&o.stderr));
    }
}
