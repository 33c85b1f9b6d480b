//! The Wine callbacks test's SigmaHQ check, on the host: the content
//! `scripts/wine-callbacks.sh` compiles (its Wine rules plus SigmaHQ's
//! "PsExec Tool Execution From Suspicious Locations": PipeName `\PSEXESVC`
//! and Image containing `:\Users\Public\` ...) evaluated through
//! `sensor_core::eval::evaluate` with what the driver gives it: the
//! requestor's image in NT device form with the driver's drive table, the
//! real process id, and one working memory reused across a run of earlier
//! events (the driver's slots are never cleared between events). The Image
//! condition sits on a lazily scanned field behind the name's gate.

use channel_parser::{parse, Capabilities};
use pipe_compiler::import::load_paths;
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use sensor_core::dospath::DeviceMap;
use sensor_core::eval::{evaluate, RawEvent, Work};
use sensor_core::ring::EventKind;
use std::path::PathBuf;

/// The decimal id `pipectl inspect` prints for the SigmaHQ rule (from its
/// UUID 41504465-...).
const SIGMA_ID: u32 = 0x4150_4465;

fn w(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn content(rules: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let set = load_paths(&[
        root.join("tests/wine").join(rules),
        root.join("third_party/sigma/rules/windows/pipe_created/pipe_created_sysinternals_psexec_default_pipe_susp_location.yml"),
    ])
    .unwrap_or_else(|e| panic!("{e:?}"));
    compile(&set, &CompileOptions::default()).unwrap()
}

/// (best rule id, matched count, DOS image) of one event.
fn eval_one(
    file: &channel_parser::ChannelFile<'_>,
    drives: &DeviceMap,
    work: &mut Work,
    pid: u32,
    name: &str,
    image: &str,
) -> (Option<u32>, u32, String) {
    let (n, i) = (w(name), w(image));
    let raw = RawEvent {
        kind: EventKind::Create,
        pid,
        name: &n,
        image: Some(&i),
        user: None,
    };
    let (p, v) = evaluate(file, drives, &raw, work).unwrap();
    let dos = p
        .image
        .map(|d| String::from_utf16_lossy(d.path()))
        .unwrap_or_default();
    (v.best.map(|r| r.id()), v.matched, dos)
}

#[test]
fn sigma_image_condition_fires_in_the_driver_path() {
    for rules in ["rules-v1", "rules-v2"] {
        let bytes = content(rules);
        let aligned = AlignedBytes::new(&bytes);
        let file = parse(aligned.as_slice(), &Capabilities::SENSOR_V1).unwrap();
        let mut drives = DeviceMap::new();
        drives.insert(b'C', &w(r"\Device\HarddiskVolume1")).unwrap();
        let mut work = Work::new();
        let host = r"\Device\HarddiskVolume1\windows\system32\winedevice.exe";
        let client = r"\Device\HarddiskVolume1\pipesensor\fltctl.exe";
        let public = r"\Device\HarddiskVolume1\users\Public\fltctl.exe";
        // Earlier events on the same working memory, as in the Wine run:
        // block-rule names, Image rules hit and missed, a 32767-unit name.
        let long = format!(r"\postex_{}", "x".repeat(32_759));
        for (name, image) in [
            (r"\postex_r1", client),
            (r"\harmless_r2", client),
            (long.as_str(), client),
            (r"\kharmless_k2", host),
            (r"\msagent_12", public),
            (r"\PSEXESVC2", public),
        ] {
            let (best, _, _) = eval_one(&file, &drives, &mut work, 740, name, image);
            assert_ne!(best, Some(SIGMA_ID), "{rules}: {name} from {image}");
        }
        let (best, matched, dos) = eval_one(&file, &drives, &mut work, 784, r"\PSEXESVC", public);
        assert_eq!(dos, r"C:\users\Public\fltctl.exe", "{rules}");
        assert_eq!(best, Some(SIGMA_ID), "{rules}: the Image condition fires");
        assert_eq!(matched, 1, "{rules}");
        // The same pipe from outside the suspicious locations: no match.
        let (best, matched, _) = eval_one(&file, &drives, &mut work, 785, r"\PSEXESVC", client);
        assert_eq!((best, matched), (None, 0), "{rules}");
        // The other spellings the driver may be given (\??\C:, DOS), after
        // a miss on the same working memory.
        for image in [
            r"\??\C:\users\Public\fltctl.exe",
            r"C:\Users\Public\Downloads\psexec.exe",
        ] {
            let (best, _, _) = eval_one(&file, &drives, &mut work, 786, r"\PSEXESVC", image);
            assert_eq!(best, Some(SIGMA_ID), "{rules}: {image}");
        }
        // Every location of the rule, and a near miss (no colon before
        // \Users\Public\), with the pipe name in another case.
        for (image, hit) in [
            (r"C:\Windows\Temp\p.exe", true),
            (r"C:\x\AppData\Local\Temp\p.exe", true),
            (r"C:\x\Desktop\p.exe", true),
            (r"\\srv\Users\Public\p.exe", false),
        ] {
            let (best, _, _) = eval_one(&file, &drives, &mut work, 787, r"\psexesvc", image);
            assert_eq!(best == Some(SIGMA_ID), hit, "{rules}: {image}");
        }
    }
}
