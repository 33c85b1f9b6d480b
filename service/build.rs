//! Builds the Event Log message resources from the event-id table
//! (`event_sink::ids::mc_file`): `windmc` turns the generated `.mc` into a
//! message table (`MSG00409.bin`, also read by the tests on any host), and
//! for a Windows GNU target `windres` compiles it into an object linked
//! into the executable, which the `PipeSensor` event source names as its
//! `EventMessageFile`. Needs mingw-w64's binutils (scripts/setup.sh).
//!
//! Also for that target: the `tracelogging` crate links its ETW imports
//! (`EventRegister`, `EventWriteTransfer`, ...) against the Windows SDK's
//! umbrella library `OneCore_apiset`, which mingw-w64 does not ship. The
//! same functions are exported by `advapi32.dll` (their documented DLL), so
//! an import library of that name is made from a `.def` naming advapi32.
use std::path::PathBuf;
use std::process::Command;

fn tool(name: &str) -> String {
    format!("x86_64-w64-mingw32-{name}")
}

fn run(cmd: &mut Command) {
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{shown} failed: {s}"),
        Err(e) => panic!("{shown}: {e} (install mingw-w64: scripts/setup.sh)"),
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mc = out.join("messages.mc");
    std::fs::write(&mc, event_sink::ids::mc_file()).expect("write messages.mc");
    run(Command::new(tool("windmc"))
        .arg("-r")
        .arg(&out)
        .arg("-h")
        .arg(&out)
        .arg(&mc));
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "windows" {
        assert_eq!(
            target_env, "gnu",
            "the service's resources are built with mingw-w64: use x86_64-pc-windows-gnu"
        );
        let obj = out.join("messages.o");
        run(Command::new(tool("windres"))
            .current_dir(&out)
            .arg("-i")
            .arg("messages.rc")
            .arg("-o")
            .arg(&obj));
        println!("cargo:rustc-link-arg-bins={}", obj.display());
        let def = out.join("onecore_apiset.def");
        std::fs::write(
            &def,
            "LIBRARY advapi32.dll\nEXPORTS\n  EventRegister\n  EventUnregister\n  \
             EventSetInformation\n  EventWriteTransfer\n  EventActivityIdControl\n",
        )
        .expect("write onecore_apiset.def");
        run(Command::new(tool("dlltool"))
            .arg("-d")
            .arg(&def)
            .arg("-D")
            .arg("advapi32.dll")
            .arg("-l")
            .arg(out.join("libOneCore_apiset.a")));
        println!("cargo:rustc-link-search=native={}", out.display());
    }
}
