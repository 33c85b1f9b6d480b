//! ~10k realistic pipe-creation events, benign and malicious, generated from
//! the corpus with a fixed seed.
//!
//! - Benign (65 %): templates of pipes a Windows machine creates all the time
//!   (anonymous `Win32Pipes`, Chromium `mojo`, `crashpad`, PowerShell hosts,
//!   RPC endpoints, .NET diagnostics, GUIDs...) with random ids, and the
//!   sysmon-modular benign patterns (`is`, `begin with`, `contains`,
//!   `end with`) filled in.
//! - Malicious (35 %): the mthcht suspicious patterns and the RMM patterns
//!   with each `*` / `?` filled in, and names built to hit the Sigma rules'
//!   atoms (prefix + tail, head + suffix, ...).
//!
//! Each event carries an image path (5 % none), benign images for benign
//! names, a mix for malicious ones. Case is varied (15 % upper, 10 % lower).

use crate::rng::Rng;
use crate::{corpus, csv_first_column};
use pipe_compiler::import::detection::parse_wildcards;
use pipe_compiler::model::{Cond, FieldId, GlobTok, Matcher, RuleSet};

/// How many events [`events`] returns.
pub const NAME_COUNT: usize = 10_000;
/// The seed of [`events`].
pub const SEED: u64 = 0x5049_5045_2d35; // "PIPE-5"

/// One event: pipe name (Sysmon style, `\name`) and image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEvent {
    /// The pipe name.
    pub name: String,
    /// The image path of the creating process.
    pub image: Option<String>,
    /// Whether it was generated from a suspicious pattern.
    pub malicious: bool,
}

const BENIGN_IMAGES: &[&str] = &[
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\System32\lsass.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
    r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
    r"C:\Windows\explorer.exe",
    r"C:\Program Files\Microsoft SQL Server\MSSQL15.MSSQLSERVER\MSSQL\Binn\sqlservr.exe",
    r"C:\Windows\System32\spoolsv.exe",
    r"C:\Windows\System32\mmc.exe",
    r"C:\Windows\System32\wbem\scrcons.exe",
    r"C:\Program Files\Mozilla Firefox\firefox.exe",
    r"C:\Users\alice\AppData\Local\Programs\Microsoft VS Code\Code.exe",
];

const SUSPICIOUS_IMAGES: &[&str] = &[
    r"C:\Users\Public\beacon.exe",
    r"C:\Temp\evil.exe",
    r"C:\Windows\PSEXESVC.exe",
    r"C:\Users\bob\AppData\Local\Temp\update.exe",
    r"C:\ProgramData\svc.exe",
    r"C:\Windows\System32\rundll32.exe",
];

/// Well-known fixed pipe names of Windows services.
const FIXED: &[&str] = &[
    r"\lsass",
    r"\ntsvcs",
    r"\srvsvc",
    r"\wkssvc",
    r"\spoolss",
    r"\InitShutdown",
    r"\LSM_API_service",
    r"\eventlog",
    r"\atsvc",
    r"\scerpc",
    r"\epmapper",
    r"\samr",
    r"\netlogon",
    r"\protected_storage",
    r"\W32TIME_ALT",
    r"\Ctx_WinStation_API_service",
    r"\SearchTextHarvester",
    r"\MsFteWds",
    r"\PIPE_EVENTROOT\CIMV2SCM EVENT PROVIDER",
    r"\openssh-ssh-agent",
    r"\docker_engine",
    r"\discord-ipc-0",
    r"\ShellIconCache",
    r"\TermSrv_API_service",
    r"\winreg",
    r"\browser",
    r"\trkwks",
    r"\tapsrv",
    r"\wmi",
];

/// Words seen in pipe names: fragments of the benign templates and fixed
/// names. The synthetic rules draw literals from these and from the corpus
/// patterns, so that realistic names do hit their prefilter.
pub const BENIGN_WORDS: &[&str] = &[
    "mojo",
    "chrome",
    "crashpad",
    "PSHost",
    "DefaultAppDomain",
    "powershell",
    "Win32Pipes",
    "Winsock2",
    "CatalogChangeListener",
    "dotnet",
    "diagnostic",
    "GoogleCrashServices",
    "UIA_PIPE",
    "Sessions",
    "AppContainerNamedObjects",
    "lsass",
    "ntsvcs",
    "srvsvc",
    "wkssvc",
    "spoolss",
    "eventlog",
    "netlogon",
    "epmapper",
    "samr",
    "vscode",
    "ipc",
    "sock",
    "python",
    "msedge",
    "firefox",
    "gecko",
    "cubeb",
    "jupyter",
    "TSVCPIPE",
    "MsFteWds",
    "SQLLocal",
    "sync",
];

fn fill_glob(toks: &[GlobTok], rng: &mut Rng) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            GlobTok::Lit(l) => s.push_str(l),
            GlobTok::One => s.push(*rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789") as char),
            GlobTok::Star => match rng.below(6) {
                0 => {}
                1 => s.push_str(&rng.digits_r(2, 6)),
                2 => s.push_str(&rng.hex_r(4, 16)),
                3 => s.push_str(&format!("{}_{}", rng.pick(BENIGN_WORDS), rng.hex(4))),
                4 => s.push_str(&format!("\\{}", rng.hex(8))),
                _ => s.push_str(&rng.string_r(b"abcdefghijklmnopqrstuvwxyz", 3, 9)),
            },
        }
    }
    s
}

/// A name the matcher is meant to hit (a random realisation of it).
pub fn example_of(m: &Matcher, rng: &mut Rng) -> Option<String> {
    let tail = |rng: &mut Rng| fill_glob(&[GlobTok::Star], rng);
    Some(match m {
        Matcher::Exact(s) => s.clone(),
        Matcher::Prefix(s) => format!("{s}{}", tail(rng)),
        Matcher::Suffix(s) => format!("\\{}{s}", tail(rng)),
        Matcher::Contains(s) => format!("\\{}{s}{}", tail(rng), tail(rng)),
        Matcher::Glob(toks) => fill_glob(toks, rng),
        Matcher::Regex { .. } | Matcher::NumEq(_) => return None,
    })
}

fn pipe_matchers(c: &Cond, out: &mut Vec<Matcher>) {
    match c {
        Cond::Atom(a) if a.field == FieldId::PIPE_NAME => out.push(a.matcher.clone()),
        Cond::Atom(_) | Cond::Const(_) => {}
        Cond::And(xs) | Cond::Or(xs) => xs.iter().for_each(|x| pipe_matchers(x, out)),
        Cond::Not(_) => {}
    }
}

/// The positive pipe-name matchers of a rule set (not under a `not`).
pub fn positive_pipe_matchers(set: &RuleSet) -> Vec<Matcher> {
    let mut out = Vec::new();
    for r in &set.rules {
        pipe_matchers(&r.condition, &mut out);
    }
    out
}

fn benign_template(rng: &mut Rng) -> String {
    match rng.below(20) {
        0..=4 => format!(
            r"\Win32Pipes.{:08x}.{:08x}",
            rng.below(1 << 16),
            rng.below(1 << 12)
        ),
        5..=7 => format!(
            r"\mojo.{}.{}.{}",
            rng.range(1000, 30000),
            rng.range(1000, 30000),
            rng.digits_r(17, 20)
        ),
        8 => format!(
            r"\chrome.sync.{}.{}.{}",
            rng.range(1000, 30000),
            rng.range(1, 99),
            rng.digits(9)
        ),
        9 => format!(
            r"\crashpad_{}_{}",
            rng.range(1000, 30000),
            rng.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 16)
        ),
        10 => format!(
            r"\PSHost.{}.{}.DefaultAppDomain.powershell",
            rng.digits(18),
            rng.range(1000, 30000)
        ),
        11 => format!(r"\Winsock2\CatalogChangeListener-{}-0", rng.hex_r(3, 4)),
        12 => format!(
            r"\dotnet-diagnostic-{}-{}-socket",
            rng.range(1000, 30000),
            rng.digits(10)
        ),
        13 => format!(r"\{{{}}}", rng.guid()),
        14 => format!(r"\UIA_PIPE_{}_{}", rng.range(1000, 30000), rng.hex(8)),
        15 => format!(
            r"\Sessions\{}\AppContainerNamedObjects\S-1-15-2-{}-{}",
            rng.range(1, 3),
            rng.digits(10),
            rng.digits(10)
        ),
        16 => format!(r"\vscode-ipc-{}-sock", rng.guid().to_lowercase()),
        17 => format!(r"\gecko-crash-server-pipe.{}", rng.range(1000, 30000)),
        18 => format!(
            r"\GoogleCrashServices\S-1-5-{}",
            rng.pick(&["18", "21-1004"])
        ),
        _ => (*rng.pick(FIXED)).to_string(),
    }
}

/// The benign patterns of sysmon-modular as matchers (`is`, `begin with`,
/// `contains`, `end with`).
pub fn sysmon_benign_matchers() -> Vec<Matcher> {
    let text = std::fs::read_to_string(corpus(
        "third_party/sysmon-modular/derived/benign_pipename_patterns.tsv",
    ))
    .unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut cols = line.split('\t');
        let (Some(op), Some(v)) = (cols.next(), cols.next()) else {
            continue;
        };
        let v = v.to_string();
        out.push(match op {
            "is" => Matcher::Exact(v),
            "begin with" => Matcher::Prefix(v),
            "end with" => Matcher::Suffix(v),
            _ => Matcher::Contains(v),
        });
    }
    out
}

/// Glob patterns of a corpus CSV (`pipes/...`), as wildcard tokens.
pub fn csv_patterns(rel: &str) -> Vec<(String, Vec<GlobTok>)> {
    let text = std::fs::read_to_string(corpus(rel)).unwrap_or_default();
    csv_first_column(&text)
        .into_iter()
        .map(|p| {
            let t = parse_wildcards(&p);
            (p, t)
        })
        .collect()
}

/// The RMM patterns of `pipes/rmm/`.
pub fn rmm_patterns() -> Vec<(String, Vec<GlobTok>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus("data/pipe-names/rmm"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = format!(
            "data/pipe-names/rmm/{}",
            f.file_name().unwrap_or_default().to_string_lossy()
        );
        out.extend(csv_patterns(&rel));
    }
    out
}

fn vary_case(s: String, rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=14 => s.to_uppercase(),
        15..=24 => s.to_lowercase(),
        _ => s,
    }
}

/// The ~10k benchmark events (deterministic).
pub fn events() -> Vec<NameEvent> {
    let mut rng = Rng::new(SEED);
    let benign_pats = sysmon_benign_matchers();
    let mthcht = csv_patterns("data/pipe-names/suspicious.csv");
    let rmm = rmm_patterns();
    let sigma = crate::workloads::sigma()
        .map(|s| positive_pipe_matchers(&s))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NAME_COUNT);
    while out.len() < NAME_COUNT {
        let roll = rng.below(100);
        let (name, malicious) = match roll {
            0..=54 => (benign_template(&mut rng), false),
            55..=64 => {
                let m = rng.pick(&benign_pats).clone();
                (example_of(&m, &mut rng).unwrap_or_default(), false)
            }
            65..=84 => (fill_glob(&rng.pick(&mthcht).1.clone(), &mut rng), true),
            85..=91 => (fill_glob(&rng.pick(&rmm).1.clone(), &mut rng), true),
            _ => {
                let m = rng.pick(&sigma).clone();
                match example_of(&m, &mut rng) {
                    Some(n) => (n, true),
                    None => continue,
                }
            }
        };
        let name = if name.starts_with('\\') {
            name
        } else {
            format!("\\{name}")
        };
        let name = vary_case(name, &mut rng);
        let image = if rng.chance(5) {
            None
        } else if malicious && rng.chance(50) {
            Some(rng.pick(SUSPICIOUS_IMAGES).to_string())
        } else {
            Some(rng.pick(BENIGN_IMAGES).to_string())
        };
        out.push(NameEvent {
            name,
            image,
            malicious,
        });
    }
    out
}

/// Every `step`-th event (a smaller deterministic sample for slow engines).
pub fn sample(events: &[NameEvent], count: usize) -> Vec<NameEvent> {
    let step = (events.len() / count.max(1)).max(1);
    events.iter().step_by(step).take(count).cloned().collect()
}
