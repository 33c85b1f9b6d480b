//! The kernel's image paths against rules written with drive letters: a
//! real SigmaHQ rule (`pipe_created_powershell_alternate_host_pipe.yml`,
//! vendored in `third_party/sigma/rules/windows/pipe_created/`) whose filters say `C:\Program Files\...`
//! and `:\Windows\System32\...`. With the NT path the kernel sees, the
//! filters never apply and the rule fires on legitimate hosts; after
//! `sensor_core::dospath::to_dos` the verdict equals Sysmon's.

use channel_parser::{parse, Capabilities, Event, EventKind, Scratch, Text};
use pipe_compiler::import::load_paths;
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use sensor_core::dospath::{to_dos, DeviceMap, DosPath};
use std::path::PathBuf;

fn w(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn sigma_file() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../third_party/sigma/rules/windows/pipe_created/pipe_created_powershell_alternate_host_pipe.yml");
    let set = load_paths(&[p]).expect("the Sigma rule imports");
    assert_eq!(set.rules.len(), 1);
    compile(&set, &CompileOptions::default()).expect("compiles")
}

/// Rules matched for pipe `\PSHost.1` created by `image`.
fn matched(bytes: &[u8], image: &[u16]) -> u32 {
    let aligned = AlignedBytes::new(bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let name = w(r"\PSHost.1");
    let ev = Event {
        pipe_name: Text::Utf16(&name),
        image: Some(Text::Utf16(image)),
        pid: 1,
        kind: EventKind::Create,
        user: None,
    };
    file.evaluate(&ev, &mut Scratch::new()).matched
}

#[test]
fn sigma_drive_letter_filters_apply_to_kernel_paths_after_the_rewrite() {
    let bytes = sigma_file();
    let mut map = DeviceMap::new();
    map.insert(b'C', &w(r"\Device\HarddiskVolume3")).unwrap();
    let mut buf = [0u16; 1024];
    for (nt, sysmon_matches) in [
        // filter_optional_citrix: Image|startswith 'C:\Program Files\Citrix\'
        (
            r"\Device\HarddiskVolume3\Program Files\Citrix\ICA\wfshell.exe",
            0,
        ),
        // filter_main_generic: Image|contains ':\Windows\System32\wsmprovhost.exe'
        (
            r"\Device\HarddiskVolume3\Windows\System32\wsmprovhost.exe",
            0,
        ),
        // Not filtered: a PowerShell host in a user directory.
        (r"\Device\HarddiskVolume3\Users\bob\host.exe", 1),
        // An unknown volume stays in NT form: filters cannot apply.
        (r"\Device\HarddiskVolume30\Program Files\Citrix\x.exe", 1),
    ] {
        let nt = w(nt);
        let dos = to_dos(&map, &nt, &mut buf);
        let dos_string = String::from_utf16(dos.path()).unwrap();
        assert_eq!(
            matched(&bytes, dos.path()),
            sysmon_matches,
            "{dos_string} ({dos:?})"
        );
        if matches!(dos, DosPath::Rewritten(_)) {
            // Sysmon's form gives the same verdict.
            assert_eq!(matched(&bytes, &w(&dos_string)), sysmon_matches);
        }
    }
    // Without the rewrite the drive-letter filters miss (the documented gap
    // this closes): the rule fires on a Citrix host.
    let raw = w(r"\Device\HarddiskVolume3\Program Files\Citrix\ICA\wfshell.exe");
    assert_eq!(matched(&bytes, &raw), 1);
}
