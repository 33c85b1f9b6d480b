//! The protected set: pipes Windows needs, and the processes it cannot run
//! without, which no content can make the sensor deny.
//!
//! The set is compiled into the driver. Content cannot add to it, remove
//! from it or switch it off; it changes only with a signed driver update.
//! When a block rule would deny an operation on a protected pipe, or an
//! operation by a critical process, the sensor records the event with the
//! decision [`crate::decision::Decision::Protected`] and lets it through
//! (`docs/rules.md`, "Protected pipes and processes").
//!
//! **Pipe names** ([`PROTECTED_PIPES`]) are compared with the whole
//! normalized pipe name (`\name`, see [`crate::name`]) under the matcher's
//! case fold ([`channel_parser::fold_char`]: NPFS compares names
//! case-insensitively, so every spelling of `\lsass` opens the same pipe).
//! The comparison is exact: `\x\pipe\spoolss` (the PrintSpoofer trick) is
//! not `\spoolss` and is not protected. Names that NPFS aliases to another
//! pipe (`\samr` opens `\lsass`) are listed on their own, because a
//! minifilter sees the name the client asked for, before NPFS translates it.
//!
//! **Critical processes** ([`CRITICAL_IMAGES`]) are recognised by the full
//! DOS-form path of their image ([`crate::dospath`]) under the system
//! directory, `<SystemRoot>\System32\<file>`, never by a bare file name that
//! anyone can give a program. The driver supplies the system root (for
//! example `C:\Windows`); when it could not read it ([`SystemRoot::Unknown`])
//! `<any drive>:\Windows\System32\<file>` counts (Windows 10 and later, the
//! only systems whose filter manager lets a minifilter see named pipes,
//! always install into a folder named `Windows`), which protects more rather
//! than less — a failed lookup never makes the sensor deny where it would
//! otherwise have let through. Operations by the System process (the
//! kernel) are protected when they *create* a pipe; see
//! [`Protection::SystemCreate`] for why connections are not.
//!
//! Cost: linear in the name (or image) length times the number of entries
//! of the same length; no allocation; never panics.

use channel_parser::{fold_char, Text};

use crate::ring::EventKind;

/// A pipe name no block rule may deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectedPipe {
    /// The normalized name, `\name`.
    pub name: &'static str,
    /// Why Windows needs it.
    pub reason: &'static str,
}

/// A critical process: its image file under `<SystemRoot>\System32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriticalImage {
    /// The image's file name (`lsass.exe`).
    pub file: &'static str,
    /// Why Windows needs it.
    pub reason: &'static str,
}

/// The protected pipe names, each with its reason. `docs/rules.md` lists
/// them, and the names considered and left out, with the same reasons.
pub const PROTECTED_PIPES: &[ProtectedPipe] = &[
    ProtectedPipe {
        name: r"\lsass",
        reason: "the LSA's RPC server in lsass.exe, and the pipe NPFS opens for its aliases lsarpc, samr, netlogon and protected_storage: logon, SAM, LSA policy and DPAPI",
    },
    ProtectedPipe {
        name: r"\lsarpc",
        reason: "well-known endpoint of the LSA policy and name lookup protocols ([MS-LSAD], [MS-LSAT], [MS-DSSP]); an NPFS alias of \\lsass: SID/name translation, trust and domain policy",
    },
    ProtectedPipe {
        name: r"\samr",
        reason: "well-known endpoint of the Security Account Manager protocol [MS-SAMR]; an NPFS alias of \\lsass: account and group management, password changes",
    },
    ProtectedPipe {
        name: r"\netlogon",
        reason: "well-known endpoint of the Netlogon protocol [MS-NRPC]; an NPFS alias of \\lsass: the domain secure channel, pass-through logon",
    },
    ProtectedPipe {
        name: r"\protected_storage",
        reason: "well-known endpoint of the BackupKey protocol [MS-BKRP]; an NPFS alias of \\lsass: DPAPI master-key backup and recovery",
    },
    ProtectedPipe {
        name: r"\ntsvcs",
        reason: "the service control manager's pipe in services.exe: starting, stopping and configuring every service",
    },
    ProtectedPipe {
        name: r"\svcctl",
        reason: "well-known endpoint of the Service Control Manager Remote protocol [MS-SCMR] (the name sc.exe and remote management tools open)",
    },
    ProtectedPipe {
        name: r"\scerpc",
        reason: "the Security Configuration Engine in services.exe: applying security policy (Group Policy security settings, secedit)",
    },
    ProtectedPipe {
        name: r"\epmapper",
        reason: "the RPC endpoint mapper [MS-RPCE] (RpcSs) over named pipes: clients find every dynamic RPC endpoint through it",
    },
    ProtectedPipe {
        name: r"\srvsvc",
        reason: "well-known endpoint of the Server Service protocol [MS-SRVS]: shares, sessions, file-sharing administration",
    },
    ProtectedPipe {
        name: r"\wkssvc",
        reason: "well-known endpoint of the Workstation Service protocol [MS-WKST]: domain join, computer name, workstation configuration",
    },
    ProtectedPipe {
        name: r"\spoolss",
        reason: "well-known endpoint of the Print System Remote protocol [MS-RPRN]: printing, printer drivers, print queues",
    },
    ProtectedPipe {
        name: r"\winreg",
        reason: "well-known endpoint of the Windows Remote Registry protocol [MS-RRP]: remote administration, inventory and Group Policy tools",
    },
    ProtectedPipe {
        name: r"\InitShutdown",
        reason: "well-known endpoint of the Remote Shutdown protocol [MS-RSP] in wininit.exe: shutdown and restart requests",
    },
    ProtectedPipe {
        name: r"\eventlog",
        reason: "well-known endpoint of the EventLog protocols [MS-EVEN], [MS-EVEN6]: reading and writing event logs, including by log collectors",
    },
    ProtectedPipe {
        name: r"\atsvc",
        reason: "well-known endpoint of the Task Scheduler's ATSvc interface [MS-TSCH]: scheduled tasks",
    },
    ProtectedPipe {
        name: r"\LSM_API_service",
        reason: "the Local Session Manager's API: creating and tracking logon sessions, including Remote Desktop",
    },
    ProtectedPipe {
        name: r"\Ctx_WinStation_API_service",
        reason: "the Terminal Services WinStation API [MS-TSTS]: session enumeration and control (qwinsta, Remote Desktop)",
    },
    ProtectedPipe {
        name: r"\TermSrv_API_service",
        reason: "the Terminal Services session API [MS-TSTS]: Remote Desktop session management",
    },
];

/// The critical processes, by image file under `<SystemRoot>\System32`.
pub const CRITICAL_IMAGES: &[CriticalImage] = &[
    CriticalImage {
        file: "smss.exe",
        reason: "the Session Manager: a critical process (Windows stops if it dies) that creates every session",
    },
    CriticalImage {
        file: "csrss.exe",
        reason: "the Windows subsystem server: a critical process, one per session",
    },
    CriticalImage {
        file: "wininit.exe",
        reason: "a critical process that starts services.exe and lsass.exe and serves shutdown requests (\\InitShutdown)",
    },
    CriticalImage {
        file: "winlogon.exe",
        reason: "a critical process: interactive logon, the secure attention sequence, logoff and shutdown",
    },
    CriticalImage {
        file: "services.exe",
        reason: "the service control manager: a critical process that starts every service (\\ntsvcs, \\scerpc)",
    },
    CriticalImage {
        file: "lsass.exe",
        reason: "the Local Security Authority: a critical process; authentication, SAM, Netlogon, DPAPI (\\lsass and its aliases)",
    },
    CriticalImage {
        file: "lsaiso.exe",
        reason: "Credential Guard's isolated LSA: lsass.exe depends on it for credentials where Credential Guard is on",
    },
];

/// The system directory, under the system root.
pub const SYSTEM_DIR: &str = "System32";

/// The system root after its drive letter when the driver could not read it
/// (`C:\Windows` on every Windows 10 and later).
pub const UNKNOWN_ROOT_AFTER_DRIVE: &str = r":\Windows";

/// The system root, as the driver found it.
#[derive(Debug, Clone, Copy)]
pub enum SystemRoot<'a> {
    /// The system root in DOS form, without a trailing backslash
    /// (`C:\Windows`).
    Known(Text<'a>),
    /// The driver could not read it: `<any drive>:\Windows\System32\<file>`
    /// counts.
    Unknown,
}

/// Which process asks for the operation.
#[derive(Debug, Clone, Copy)]
pub struct Requestor<'a> {
    /// Its image path in DOS form, if the driver could get one.
    pub image: Option<Text<'a>>,
    /// Whether it is the System process (the kernel itself).
    pub system_process: bool,
}

/// Why an operation is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// The pipe is one Windows needs.
    Name(&'static ProtectedPipe),
    /// A critical process asks.
    Image(&'static CriticalImage),
    /// The System process creates a pipe. Only creation: the SMB server
    /// opens pipes for remote clients in the System process, so protecting
    /// System's *connections* would exempt every remote named-pipe client
    /// (lateral movement over SMB) from every block rule. The pipes those
    /// remote clients need are protected by name.
    SystemCreate,
}

impl Protection {
    /// A wire code: 1 name, 2 image, 3 System creating a pipe.
    pub const fn code(self) -> u8 {
        match self {
            Protection::Name(_) => 1,
            Protection::Image(_) => 2,
            Protection::SystemCreate => 3,
        }
    }
}

impl core::fmt::Display for Protection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Protection::Name(p) => write!(f, "protected pipe {}: {}", p.name, p.reason),
            Protection::Image(c) => {
                write!(f, "critical process {SYSTEM_DIR}\\{}: {}", c.file, c.reason)
            }
            Protection::SystemCreate => f.write_str("the System process creates a pipe"),
        }
    }
}

/// Whether `chars` equals `want` under the matcher's fold.
fn eq_fold(chars: impl Iterator<Item = char>, want: &str) -> bool {
    let mut a = chars.map(fold_char);
    let mut b = want.chars().map(fold_char);
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

/// The protected entry for the normalized pipe name `name`, if any.
///
/// # Panics
/// Never. Allocates nothing.
pub fn protected_name(name: Text<'_>) -> Option<&'static ProtectedPipe> {
    PROTECTED_PIPES
        .iter()
        .find(|p| eq_fold(name.chars(), p.name))
}

/// The critical-process entry for the DOS-form image path `image`, if any:
/// `image` is `<root>\System32\<file>` (case-insensitive); with
/// [`SystemRoot::Unknown`], `<any drive>:\Windows\System32\<file>`.
///
/// # Panics
/// Never. Allocates nothing.
pub fn critical_image(image: Text<'_>, root: SystemRoot<'_>) -> Option<&'static CriticalImage> {
    CRITICAL_IMAGES
        .iter()
        .find(|c| is_critical_path(image, root, c.file))
}

/// `image` is `<root>\System32\<file>` (`<any drive>:\Windows\System32\<file>`
/// when the root is unknown).
fn is_critical_path(image: Text<'_>, root: SystemRoot<'_>, file: &str) -> bool {
    // The tail `\System32\<file>`, compared from the end of the path so that
    // no buffer is needed.
    let tail = ['\\']
        .into_iter()
        .chain(SYSTEM_DIR.chars())
        .chain(['\\'])
        .chain(file.chars());
    let tail_len = tail.clone().count();
    let n = image.chars().count();
    let Some(head_len) = n.checked_sub(tail_len) else {
        return false;
    };
    let tail_ok = image
        .chars()
        .skip(head_len)
        .zip(tail)
        .all(|(a, b)| fold_char(a) == fold_char(b));
    if !tail_ok {
        return false;
    }
    match root {
        SystemRoot::Unknown => {
            // One character (the drive), then `:\Windows`.
            let mut head = image.chars().take(head_len);
            head.next().is_some() && eq_fold(head, UNKNOWN_ROOT_AFTER_DRIVE)
        }
        SystemRoot::Known(r) => {
            let r_len = r.chars().count();
            r_len == head_len
                && image
                    .chars()
                    .take(head_len)
                    .zip(r.chars())
                    .all(|(a, b)| fold_char(a) == fold_char(b))
        }
    }
}

/// Whether an operation is protected, and why: the pipe name first, then the
/// requesting process.
///
/// # Panics
/// Never. Allocates nothing.
pub fn check(
    kind: EventKind,
    name: Text<'_>,
    who: &Requestor<'_>,
    root: SystemRoot<'_>,
) -> Option<Protection> {
    if let Some(p) = protected_name(name) {
        return Some(Protection::Name(p));
    }
    if let Some(c) = who.image.and_then(|i| critical_image(i, root)) {
        return Some(Protection::Image(c));
    }
    if who.system_process && kind == EventKind::Create {
        return Some(Protection::SystemCreate);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    const ROOT: SystemRoot<'static> = SystemRoot::Known(Text::Utf8(r"C:\Windows"));

    fn nobody() -> Requestor<'static> {
        Requestor {
            image: Some(Text::Utf8(r"C:\Users\u\tool.exe")),
            system_process: false,
        }
    }

    #[test]
    fn every_protected_name_in_every_case_and_encoding() {
        for p in PROTECTED_PIPES {
            for n in [
                String::from(p.name),
                p.name.to_lowercase(),
                p.name.to_uppercase(),
            ] {
                assert_eq!(protected_name(Text::Utf8(&n)), Some(p), "{n}");
                let u = w(&n);
                assert_eq!(protected_name(Text::Utf16(&u)), Some(p), "{n}");
                assert_eq!(
                    check(EventKind::Connect, Text::Utf16(&u), &nobody(), ROOT),
                    Some(Protection::Name(p))
                );
            }
        }
    }

    #[test]
    fn names_are_compared_whole() {
        for n in [
            r"\lsass2",
            r"lsass",
            r"\lsas",
            r"\x\pipe\spoolss",
            r"\spoolss\x",
            r"\ lsass",
            r"\lsass ",
            r"\samr\",
            "",
            r"\",
        ] {
            assert_eq!(protected_name(Text::Utf8(n)), None, "{n:?}");
        }
        // An unpaired surrogate never equals an ASCII letter.
        let mut u = w(r"\lsass");
        u[2] = 0xD800;
        assert_eq!(protected_name(Text::Utf16(&u)), None);
    }

    #[test]
    fn the_fold_is_the_matchers() {
        // U+0131 (dotless i) folds to I, as in the matcher (and NPFS's
        // upcase table): `\wınreg` opens \winreg and is protected.
        assert!(protected_name(Text::Utf8("\\w\u{131}nreg")).is_some());
    }

    #[test]
    fn critical_images_by_full_path_under_the_system_root() {
        for c in CRITICAL_IMAGES {
            let path = std::format!(r"C:\Windows\System32\{}", c.file);
            for p in [path.clone(), path.to_uppercase(), path.to_lowercase()] {
                let u = w(&p);
                assert_eq!(critical_image(Text::Utf16(&u), ROOT), Some(c), "{p}");
                let who = Requestor {
                    image: Some(Text::Utf16(&u)),
                    system_process: false,
                };
                assert_eq!(
                    check(EventKind::Create, Text::Utf8(r"\anything"), &who, ROOT),
                    Some(Protection::Image(c))
                );
            }
        }
        for p in [
            r"C:\Users\u\lsass.exe",
            r"lsass.exe",
            r"C:\Windows\SysWOW64\lsass.exe",
            r"C:\Windows\System32\lsass.exe.bak",
            r"C:\Windows\System32\x\lsass.exe",
            r"D:\Windows\System32\lsass.exe",
            r"C:\Windows2\System32\lsass.exe",
            r"\Device\HarddiskVolume2\Windows\System32\lsass.exe",
            r"C:\Windows\System32\svchost.exe",
            r"C:\Windows\System32\spoolsv.exe",
            "",
        ] {
            assert_eq!(critical_image(Text::Utf8(p), ROOT), None, "{p}");
        }
        // Another system root.
        let root = SystemRoot::Known(Text::Utf8(r"D:\WINNT"));
        assert!(critical_image(Text::Utf8(r"d:\winnt\system32\LSASS.EXE"), root).is_some());
        assert!(critical_image(Text::Utf8(r"C:\Windows\System32\lsass.exe"), root).is_none());
    }

    #[test]
    fn unknown_root_protects_more_never_less() {
        for p in [
            r"C:\Windows\System32\lsass.exe",
            r"D:\Windows\System32\lsass.exe",
            r"z:\WINDOWS\system32\LSASS.exe",
        ] {
            assert!(
                critical_image(Text::Utf8(p), SystemRoot::Unknown).is_some(),
                "{p}"
            );
        }
        for p in [
            r"C:\x\System32\lsass.exe",
            r"C:\Windows\x\System32\lsass.exe",
            r":\Windows\System32\lsass.exe",
            r"CD:\Windows\System32\lsass.exe",
            r"C:\x\lsass.exe",
            r"System32\lsass.exe",
            r"lsass.exe",
        ] {
            assert!(
                critical_image(Text::Utf8(p), SystemRoot::Unknown).is_none(),
                "{p}"
            );
        }
    }

    #[test]
    fn system_process_only_when_it_creates() {
        let system = Requestor {
            image: None,
            system_process: true,
        };
        let name = Text::Utf8(r"\msagent_12");
        assert_eq!(
            check(EventKind::Create, name, &system, ROOT),
            Some(Protection::SystemCreate)
        );
        // The SMB server connects for remote clients as System: not exempt.
        assert_eq!(check(EventKind::Connect, name, &system, ROOT), None);
        assert_eq!(check(EventKind::Create, name, &nobody(), ROOT), None);
        let no_image = Requestor {
            image: None,
            system_process: false,
        };
        assert_eq!(check(EventKind::Create, name, &no_image, ROOT), None);
    }

    #[test]
    fn entries_are_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for p in PROTECTED_PIPES {
            assert!(p.name.starts_with('\\') && p.name.len() > 1, "{}", p.name);
            assert!(!p.name[1..].contains('\\'), "{}", p.name);
            assert!(p.reason.len() > 20, "{}", p.name);
            assert!(seen.insert(p.name.to_uppercase()), "{} twice", p.name);
        }
        for c in CRITICAL_IMAGES {
            assert!(c.file.ends_with(".exe") && !c.file.contains('\\'));
            assert!(c.reason.len() > 20, "{}", c.file);
            assert!(seen.insert(c.file.to_uppercase()), "{} twice", c.file);
        }
    }
}
