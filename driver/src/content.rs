//! Content loading: the content directory at start (with the crash-loop
//! guard), hot loads by IOCTL, and the "proven" transition.
//!
//! Service-key values (all optional):
//! * `ContentDirectory` (REG_SZ, NT path; default
//!   `\SystemRoot\System32\drivers\PipeSensor`),
//! * `Mode` (REG_DWORD, 0 monitor / 1 enforce; default 0),
//! * `MaxFailedStarts` (REG_DWORD; default 3),
//! * `ProvenAfterSeconds` (REG_DWORD; default 600),
//! * `RescanIntervalSeconds` (REG_DWORD; default 3600, 0 off): a system
//!   thread rescans the content directory this often (as RESCAN does), so a
//!   not-before time that passes or a file an updater drops in is adopted
//!   without anyone calling `pipectl driver rescan`,
//! * `GuardState` (REG_BINARY, written by the driver; see sensor_core::guard),
//! * `RequireSignature` (REG_DWORD, 0 off / 1 on; default 1): every load
//!   (start and IOCTL) runs `content_trust::verify` against the built-in
//!   trusted keys (`driver/keys/*.pub`, see `build.rs`) before the parser
//!   looks past the frame.
//! * `BugCheckCallback` (REG_DWORD, default 1; test only): 0 leaves the
//!   bug-check reason callback unregistered (the Wine tests set it: Wine 8's
//!   `KeRegisterBugCheckReasonCallback` is a stub that raises),
//! * `Ring` (REG_SZ `canary` / `early` / `broad`; default `broad`),
//!   `ContentControl` (REG_SZ `latest` / `n-1` / `pin:SEQUENCE` / `freeze`;
//!   default `latest`), `MachineId` (REG_SZ; default
//!   `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`): the staged
//!   rollout inputs (`sensor_core::rollout`), read at start and on every
//!   RESCAN. Which file runs is `sensor_core::rollout::plan`'s choice: the
//!   newest file this machine's ring, bucket and the time admit, under the
//!   customer's control and anti-rollback, started under the crash-loop
//!   guard. The ROLLOUT IOCTL reports why each known file was or was not
//!   adopted.

// `LoadFailure` is the STATUS record's fixed-size failure report (no Box in
// the kernel): the loaders return it by value on purpose.
#![allow(clippy::result_large_err)]

use crate::globals::content::*;
use crate::sensor::{self, Content, ContentRef};
use crate::sys::{self, log, Level, OwnedChannel, PoolArc, PoolBuf, RegKey, Wide};
use channel_format::{Ring, CHANNEL_PIPES};
use channel_parser::{Capabilities, RolloutPolicy};
use content_trust::{TrustError, TrustedKey};
use core::fmt::Write;
use sensor_core::decision::Mode;
use sensor_core::digest::sha256;
use sensor_core::guard::{GuardState, DEFAULT_MAX_FAILED_STARTS, GUARD_STATE_LEN};
use sensor_core::proto::{
    failure, load_result, ContentInfo, FixedText, LoadFailure, LoadResponse, MachineIdSource,
    Origin, RolloutStatus, MAX_LOAD_LEN, ROLLOUT_FLAG_BAD_CONTROL, ROLLOUT_FLAG_BAD_RING,
    ROLLOUT_FLAG_NO_MACHINE_ID,
};
use sensor_core::rollout::{self, Control};
use sensor_core::scan::{self, FileRef, Note, Settings, Trigger};
use sensor_core::store::Slot;

const DEFAULT_CONTENT_DIR: &str = r"\SystemRoot\System32\drivers\PipeSensor";
const DEFAULT_PROVEN_AFTER_SECONDS: u32 = 600;
const DEFAULT_RESCAN_INTERVAL_SECONDS: u32 = 3600;

pub(crate) struct Config {
    registry_path: Wide<512>,
    content_dir: Wide<300>,
    max_failed: u32,
    proven_after: u32,
    rescan_interval: u32,
    require_signature: bool,
}

/// Guard state as last persisted, plus status flags.
#[derive(Clone, Copy)]
pub struct GuardSnapshot {
    pub state: GuardState,
    pub max_failed: u32,
    pub flags: u32,
    pub pending_active: bool,
}

impl GuardSnapshot {
    /// Before the configuration is read: nothing persisted, the default limit.
    pub const INIT: GuardSnapshot = GuardSnapshot {
        state: GuardState {
            pending: 0,
            start_count: 0,
            proven: 0,
            quarantined: [0; 4],
            highest_proven: 0,
        },
        max_failed: DEFAULT_MAX_FAILED_STARTS,
        flags: 0,
        pending_active: false,
    };
}

pub fn guard_snapshot() -> GuardSnapshot {
    GUARD.with(|g| *g)
}

fn registry_path() -> Wide<512> {
    CONFIG
        .with(|c| {
            c.as_ref()
                .map(|c| Wide::from_units(c.registry_path.units()))
        })
        .unwrap_or_else(|| Wide::new(""))
}

/// Opens the service key. Not inlined: the 1 KiB path copy stays in this
/// frame, off the stack of the callers' later work (scripts/stack-usage.sh).
#[inline(never)]
pub(crate) fn open_service_key() -> Result<RegKey, sys::NTSTATUS> {
    RegKey::open(registry_path().units())
}

/// Reads the service key. PASSIVE_LEVEL (DriverEntry). Not inlined: its
/// `Config` and buffers (~4 KiB) must not stay on DriverEntry's stack while
/// the content scan (signature check, parser) runs below it.
#[inline(never)]
pub fn configure(registry_path: &[u16]) {
    let mut cfg = Config {
        registry_path: Wide::from_units(registry_path),
        content_dir: Wide::new(DEFAULT_CONTENT_DIR),
        max_failed: DEFAULT_MAX_FAILED_STARTS,
        proven_after: DEFAULT_PROVEN_AFTER_SECONDS,
        rescan_interval: DEFAULT_RESCAN_INTERVAL_SECONDS,
        require_signature: true,
    };
    match RegKey::open(cfg.registry_path.units()) {
        Ok(key) => {
            let mut dir = [0u16; 299];
            if let Some(d) = key.string("ContentDirectory", &mut dir) {
                if !d.is_empty() {
                    cfg.content_dir = Wide::from_units(d);
                }
            }
            if let Some(m) = key.dword("Mode").and_then(Mode::from_u32) {
                sensor::set_mode(m);
            }
            if let Some(n) = key.dword("MaxFailedStarts") {
                cfg.max_failed = n.clamp(1, 100);
            }
            if let Some(s) = key.dword("ProvenAfterSeconds") {
                cfg.proven_after = s.max(1);
            }
            if let Some(s) = key.dword("RescanIntervalSeconds") {
                cfg.rescan_interval = s;
            }
            if let Some(r) = key.dword("RequireSignature") {
                cfg.require_signature = r != 0;
            }
            if let Some(ms) = key.dword("WorkWaitMilliseconds") {
                sensor::set_work_wait_ms(ms);
            }
            if let Some(on) = key.dword("BugCheckCallback") {
                sys::set_bugcheck_callback(on != 0);
            }
        }
        Err(s) => log(
            Level::Warning,
            format_args!("cannot open the service key ({s:#x}); defaults used"),
        ),
    }
    GUARD.with(|g| g.max_failed = cfg.max_failed);
    log(
        Level::Info,
        format_args!(
            "config: mode {:?}, max failed starts {}, proven after {} s, signatures {}, {} trusted keys, work wait {} ms",
            sensor::mode(),
            cfg.max_failed,
            cfg.proven_after,
            if cfg.require_signature { "required" } else { "not required" },
            TRUSTED_KEYS.len() / 32,
            sensor::work_wait_ms()
        ),
    );
    CONFIG.with(|c| *c = Some(cfg));
}

fn parse_error_failure(
    origin: Origin,
    sequence: u64,
    e: &channel_parser::ParseError,
) -> LoadFailure {
    let mut message = FixedText::empty();
    let _ = write!(message, "{e}");
    LoadFailure {
        origin,
        sequence,
        code: failure::PARSE,
        offset: e.offset().unwrap_or(u32::MAX),
        message,
    }
}

fn simple_failure(
    origin: Origin,
    sequence: u64,
    code: u32,
    args: core::fmt::Arguments<'_>,
) -> LoadFailure {
    let mut message = FixedText::empty();
    let _ = message.write_fmt(args);
    LoadFailure {
        origin,
        sequence,
        code,
        offset: u32::MAX,
        message,
    }
}

/// The trusted public keys, 32 bytes each (built by `build.rs`).
const TRUSTED_KEYS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trusted_keys.bin"));
const MAX_TRUSTED_KEYS: usize = 16;

/// The first `MAX_TRUSTED_KEYS` of them as `TrustedKey`s, and how many there
/// are: built at compile time, so the signature check does not copy them
/// onto the stack.
static TRUSTED: ([TrustedKey; MAX_TRUSTED_KEYS], usize) = trusted_keys();

const fn trusted_keys() -> ([TrustedKey; MAX_TRUSTED_KEYS], usize) {
    let mut keys = [TrustedKey {
        public_key: [0; 32],
    }; MAX_TRUSTED_KEYS];
    let mut n = 0usize;
    while n < MAX_TRUSTED_KEYS && (n + 1) * 32 <= TRUSTED_KEYS.len() {
        let mut j = 0usize;
        while j < 32 {
            keys[n].public_key[j] = TRUSTED_KEYS[n * 32 + j];
            j += 1;
        }
        n += 1;
    }
    (keys, n)
}

fn require_signature() -> bool {
    CONFIG.with(|c| c.as_ref().is_none_or(|c| c.require_signature))
}

/// Checks the signature of `bytes` against the built-in keys. Not inlined:
/// Ed25519 verification is the deepest stack user of the driver, so the
/// frames above it are kept small (scripts/stack-usage.sh).
#[inline(never)]
fn check_signature(bytes: &[u8], origin: Origin, sequence: u64) -> Result<(), LoadFailure> {
    let (keys, n) = &TRUSTED;
    let e = match content_trust::verify(bytes, keys.get(..*n).unwrap_or(&[])) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let (code, offset) = match e {
        TrustError::Frame(p) => (failure::PARSE, p.offset().unwrap_or(u32::MAX)),
        TrustError::Unsigned => (failure::UNSIGNED, u32::MAX),
        TrustError::BadSignatureBlock { offset, .. } => (failure::BAD_SIGNATURE_BLOCK, offset),
        TrustError::Tampered { .. } => (failure::TAMPERED, u32::MAX),
        TrustError::WrongKey { .. } => (failure::WRONG_KEY, u32::MAX),
        TrustError::UnknownKey { .. } => (failure::UNKNOWN_KEY, u32::MAX),
        _ => (failure::PARSE, u32::MAX),
    };
    let mut message = FixedText::empty();
    let _ = write!(message, "{e}");
    Err(LoadFailure {
        origin,
        sequence,
        code,
        offset,
        message,
    })
}

/// Checks, parses and describes content. The file's header sequence must
/// equal `expect_seq` when given (the sequence in a file's name).
fn build(buf: PoolBuf, origin: Origin, expect_seq: Option<u64>) -> Result<ContentRef, LoadFailure> {
    if require_signature() {
        check_signature(buf.as_slice(), origin, expect_seq.unwrap_or(0))?;
    }
    parse_content(buf, origin, expect_seq)
}

/// Parses and describes content (after the signature check). Not inlined:
/// its parser results stay off the stack of the signature check.
#[inline(never)]
#[allow(clippy::result_large_err)] // LoadFailure by value, as in build()
fn parse_content(
    buf: PoolBuf,
    origin: Origin,
    expect_seq: Option<u64>,
) -> Result<ContentRef, LoadFailure> {
    let digest = sha256(buf.as_slice());
    let len = buf.len() as u32;
    let chan = OwnedChannel::try_new(buf, |b| channel_parser::parse(b, &Capabilities::SENSOR))
        .map_err(|e| parse_error_failure(origin, expect_seq.unwrap_or(0), &e))?;
    let sequence = chan.file().sequence();
    if let Some(s) = expect_seq {
        if s != sequence {
            return Err(simple_failure(
                origin,
                s,
                failure::PARSE,
                format_args!("file name says sequence {s}, header says {sequence}"),
            ));
        }
    }
    let info = ContentInfo {
        sequence,
        rule_count: chan.file().rule_count(),
        len,
        origin,
        digest,
    };
    PoolArc::try_new(Content { chan, info }).ok_or_else(|| {
        simple_failure(
            origin,
            sequence,
            failure::NO_MEMORY,
            format_args!("out of memory"),
        )
    })
}

fn file_path(dir: &[u16], name: &[u16]) -> Wide<400> {
    let mut p = Wide::<400>::from_units(dir);
    if dir.last() != Some(&u16::from(b'\\')) {
        p.push_str("\\");
    }
    p.push_units(name);
    p
}

fn load_file(dir: &[u16], c: &FileRef) -> Result<ContentRef, LoadFailure> {
    build(read_content_file(dir, c)?, Origin::Disk, Some(c.seq))
}

/// Reads a content file into pool. Not inlined: the path (~1 KiB) is not
/// kept on the stack while `build` checks the signature.
#[inline(never)]
#[allow(clippy::result_large_err)] // LoadFailure by value, as in build()
fn read_content_file(dir: &[u16], c: &FileRef) -> Result<PoolBuf, LoadFailure> {
    // The name is rebuilt from the sequence and its digits; the open is
    // case-insensitive.
    let path = file_path(dir, Wide::<64>::new(c.name().as_str()).units());
    sys::read_file(path.units(), MAX_LOAD_LEN).map_err(|s| {
        let code = if s == sys::STATUS_FILE_TOO_LARGE {
            failure::TOO_LARGE
        } else {
            failure::IO
        };
        simple_failure(
            Origin::Disk,
            c.seq,
            code,
            format_args!("reading the file failed: {s:#x}"),
        )
    })
}

fn record_failure(f: LoadFailure) {
    log(
        Level::Warning,
        format_args!("content {} rejected: {}", f.sequence, f.message.as_str()),
    );
    sensor::update_store(|s| {
        s.record_failure(f);
        [None::<ContentRef>; 0]
    });
}

// ---------------------------------------------------------------------------
// Rollout settings
// ---------------------------------------------------------------------------

const MACHINE_GUID_KEY: &str = r"\Registry\Machine\SOFTWARE\Microsoft\Cryptography";
/// The bucket of a machine without an id: the last one, so it adopts
/// staged content last (only at 100 %).
const LAST_BUCKET: u32 = 99_999;

/// `units` as ASCII text in `buf`, or None.
fn ascii<'b>(units: &[u16], buf: &'b mut [u8; 64]) -> Option<&'b str> {
    let mut n = 0usize;
    for &u in units {
        let b = u8::try_from(u).ok().filter(u8::is_ascii)?;
        *buf.get_mut(n)? = b;
        n += 1;
    }
    core::str::from_utf8(buf.get(..n)?).ok()
}

/// Not inlined: its buffers stay off the stack of the scan's loads.
#[inline(never)]
fn read_rollout_settings() -> Settings {
    let mut s = Settings {
        ring: Ring::BROAD,
        control: Control::Latest,
        bucket_milli: LAST_BUCKET,
        id_source: MachineIdSource::None,
        flags: 0,
    };
    let mut text = [0u16; 128];
    let mut abuf = [0u8; 64];
    if let Ok(key) = open_service_key() {
        if let Some(v) = key.string("Ring", &mut text) {
            match ascii(v, &mut abuf).and_then(rollout::parse_ring) {
                Some(r) => s.ring = r,
                None => s.flags |= ROLLOUT_FLAG_BAD_RING,
            }
        }
        if let Some(v) = key.string("ContentControl", &mut text) {
            match ascii(v, &mut abuf).map(Control::parse) {
                Some(Ok(c)) => s.control = c,
                _ => s.flags |= ROLLOUT_FLAG_BAD_CONTROL,
            }
        }
        if let Some(id) = key
            .string("MachineId", &mut text)
            .filter(|id| !id.is_empty())
        {
            s.bucket_milli = rollout::machine_bucket(id, CHANNEL_PIPES);
            s.id_source = MachineIdSource::ServiceKey;
        }
    }
    if s.id_source == MachineIdSource::None {
        let id_key = RegKey::open(Wide::<64>::new(MACHINE_GUID_KEY).units());
        if let Some(id) = id_key
            .as_ref()
            .ok()
            .and_then(|k| k.string("MachineGuid", &mut text))
            .filter(|id| !id.is_empty())
        {
            s.bucket_milli = rollout::machine_bucket(id, CHANNEL_PIPES);
            s.id_source = MachineIdSource::MachineGuid;
        } else {
            s.flags |= ROLLOUT_FLAG_NO_MACHINE_ID;
        }
    }
    if s.flags & ROLLOUT_FLAG_BAD_RING != 0 {
        log(
            Level::Warning,
            format_args!("service key value Ring is not canary, early or broad: broad used"),
        );
    }
    if s.flags & ROLLOUT_FLAG_BAD_CONTROL != 0 {
        log(
            Level::Warning,
            format_args!(
                "service key value ContentControl: {}; latest used",
                rollout::ControlParseError
            ),
        );
    }
    s
}

/// Unix seconds (UTC) now; 0 when the kernel has no time routine.
fn unix_now() -> u64 {
    const UNIX_EPOCH_IN_FILETIME_SECONDS: u64 = 11_644_473_600;
    (sys::system_time() / 10_000_000).saturating_sub(UNIX_EPOCH_IN_FILETIME_SECONDS)
}

/// This machine's ring as the last content scan read it (selects the soak
/// of `crate::blocksafe`).
pub(crate) fn ring() -> Ring {
    ROLLOUT.with(|r| r.ring)
}

/// The last selection's report, with the highest proven sequence as of now
/// (a clean run may have raised it since).
pub fn rollout_status() -> RolloutStatus {
    let highest = GUARD.with(|g| g.state.highest_proven);
    let mut r = ROLLOUT.with(|r| *r);
    r.highest_proven = r.highest_proven.max(highest);
    r
}

// ---------------------------------------------------------------------------
// Scanning the content directory (start and RESCAN)
// ---------------------------------------------------------------------------

/// Working memory of a scan: kept off the kernel stack (the signature check
/// and the parser run below this), one scan at a time.
pub(crate) struct ScanWork {
    /// The content directory (a copy of the configured one).
    dir: Wide<300>,
    work: scan::Work,
}

impl ScanWork {
    /// Empty working memory.
    pub(crate) const INIT: ScanWork = ScanWork {
        dir: Wide::empty(),
        work: scan::Work::new(),
    };
}

/// Lists the content directory, validates every candidate (newest first),
/// chooses with `sensor_core::rollout::plan` (staging, customer control,
/// anti-rollback, crash-loop guard), persists the guard state and only then
/// activates (`sensor_core::scan`). PASSIVE_LEVEL (DriverEntry).
pub fn load_at_start() {
    if SCAN.try_with(|w| scan(w, Trigger::Start)).is_none() {
        log(Level::Error, format_args!("content scan busy at start"));
    }
}

/// RESCAN: re-reads the rollout settings and the content directory and
/// activates what the policy selects now, if that differs from what runs
/// (a new file, a widened policy, a not-before time passed, a changed
/// control). Keeps what runs when the selection is empty. Returns false
/// when another scan is running (the report is [`rollout_status`]).
/// PASSIVE_LEVEL (IOCTL).
pub fn rescan() -> bool {
    SCAN.try_with(|w| scan(w, Trigger::Rescan)).is_some()
}

/// A scan: the decisions are `sensor_core::scan::scan`'s, the side effects
/// [`DriverScan`]'s.
fn scan(w: &mut ScanWork, trigger: Trigger) {
    let Some(max_failed) = CONFIG.with(|c| {
        c.as_ref().map(|c| {
            w.dir.set_units(c.content_dir.units());
            c.max_failed
        })
    }) else {
        return;
    };
    let settings = read_rollout_settings();
    let mut platform = DriverScan {
        dir: w.dir.units(),
        key: None,
    };
    scan::scan(&mut platform, &mut w.work, trigger, &settings, max_failed);
}

/// The driver's side of a scan: the content directory, the service key
/// (opened once, when the scan first reads the guard state), the store,
/// the proven timer and the log.
struct DriverScan<'a> {
    dir: &'a [u16],
    key: Option<Option<RegKey>>,
}

impl DriverScan<'_> {
    fn key(&mut self) -> Option<&RegKey> {
        self.key
            .get_or_insert_with(|| open_service_key().ok())
            .as_ref()
    }
}

impl scan::Platform for DriverScan<'_> {
    type Content = ContentRef;

    fn list_files(&mut self, each: impl FnMut(&[u16])) -> Result<(), i32> {
        sys::list_dir(self.dir, each)
    }

    fn load(&mut self, file: FileRef) -> Result<ContentRef, LoadFailure> {
        load_file(self.dir, &file)
    }

    fn info(content: &ContentRef) -> ContentInfo {
        content.info
    }

    fn rollout(content: &ContentRef) -> Option<RolloutPolicy> {
        content.chan.file().rollout()
    }

    fn record_failure(&mut self, f: LoadFailure) {
        record_failure(f);
    }

    fn read_guard(&mut self, buf: &mut [u8; GUARD_STATE_LEN]) -> Option<usize> {
        self.key()?.binary("GuardState", buf)
    }

    fn write_guard(&mut self, bytes: &[u8; GUARD_STATE_LEN]) -> bool {
        self.key()
            .is_some_and(|k| k.set_binary("GuardState", bytes).is_ok())
    }

    fn now(&mut self) -> u64 {
        unix_now()
    }

    fn running(&mut self) -> Option<u64> {
        crate::globals::sensor::STORE.with(|s| s.active().map(|a| a.info.sequence))
    }

    fn publish(&mut self, report: &RolloutStatus) {
        ROLLOUT.with(|r| *r = *report);
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::ListFailed { status } => log(
                Level::Warning,
                format_args!("content directory unreadable ({status:#x}); running without content"),
            ),
            Note::NotAdopted { sequence, reason } => log(
                Level::Info,
                format_args!("content {sequence} not adopted: {reason}"),
            ),
            Note::RescanKeeps { running } => log(
                Level::Info,
                format_args!("rescan: content {} stays active", running.unwrap_or(0)),
            ),
            Note::Quarantined {
                sequence,
                max_failed,
            } => log(
                Level::Error,
                format_args!("content {sequence} failed to start {max_failed} times: quarantined, running last-known-good"),
            ),
            Note::PersistFailed => log(
                Level::Error,
                format_args!("cannot persist the guard state; pending content not activated"),
            ),
        }
    }

    fn stop_proven_timer(&mut self) {
        sys::stop_timer();
        GUARD.with(|g| g.pending_active = false);
    }

    fn set_guard(&mut self, state: GuardState, flags: u32, pending_active: bool) {
        GUARD.with(|g| {
            g.state = state;
            g.flags = flags;
            g.pending_active = pending_active;
        });
    }

    fn install(
        &mut self,
        trigger: Trigger,
        active: Option<Slot<ContentRef>>,
        lkg: Option<Slot<ContentRef>>,
        pending_active: bool,
    ) {
        match &active {
            Some(a) => log(
                Level::Info,
                format_args!(
                    "{} content {} ({} rules, {} DFAs read in place){}",
                    if trigger == Trigger::Start {
                        "active"
                    } else {
                        "rescan activated"
                    },
                    a.info.sequence,
                    a.info.rule_count,
                    a.handle.chan.file().dfa_count(),
                    if pending_active { ", pending" } else { "" }
                ),
            ),
            None => log(
                Level::Warning,
                format_args!("no valid content: every pipe event is allowed"),
            ),
        }
        let ok = usize::from(active.is_some()) + usize::from(lkg.is_some());
        sensor::update_store(|s| {
            for _ in 0..ok {
                s.count_ok();
            }
            s.install_start(active, lkg)
        });
    }

    fn start_proven_timer(&mut self) {
        start_proven_timer();
    }
}

/// The rescan thread's tick (`RescanIntervalSeconds`): a RESCAN, skipped
/// when another scan (an IOCTL RESCAN) is running. PASSIVE_LEVEL.
pub fn periodic_rescan() {
    if !rescan() {
        log(
            Level::Info,
            format_args!("periodic rescan skipped: another scan is running"),
        );
    }
}

/// Starts the periodic rescan thread unless `RescanIntervalSeconds` is 0.
pub fn start_rescan_thread() {
    let secs = CONFIG.with(|c| {
        c.as_ref()
            .map_or(DEFAULT_RESCAN_INTERVAL_SECONDS, |c| c.rescan_interval)
    });
    if secs == 0 {
        log(Level::Info, format_args!("periodic rescan off"));
        return;
    }
    match sys::start_rescan_thread(secs) {
        Ok(()) => log(
            Level::Info,
            format_args!("content directory rescanned every {secs} s"),
        ),
        Err(s) => log(
            Level::Warning,
            format_args!("periodic rescan not started ({s:#x}); RESCAN by IOCTL still works"),
        ),
    }
}

fn proven_timer_fired() {
    mark_proven("clean run");
}

/// Starts the timer that marks pending content proven after a clean run.
pub fn start_proven_timer() {
    if !GUARD.with(|g| g.pending_active) {
        return;
    }
    let secs = CONFIG.with(|c| {
        c.as_ref()
            .map_or(DEFAULT_PROVEN_AFTER_SECONDS, |c| c.proven_after)
    });
    if let Err(s) = sys::start_timer(secs, proven_timer_fired) {
        log(
            Level::Warning,
            format_args!("proven timer not started ({s:#x}); content is proven at clean unload"),
        );
    }
}

/// Marks the content activated as pending at start proven (it ran cleanly
/// for the configured time, or until a clean unload, even if a hot load
/// replaced it meanwhile) and persists that. PASSIVE_LEVEL.
pub fn mark_proven(why: &str) {
    let changed = GUARD.with(|g| {
        let pending = g.state.pending;
        if g.pending_active && g.state.mark_proven(pending) {
            g.pending_active = false;
            Some(g.state)
        } else {
            None
        }
    });
    let Some(state) = changed else { return };
    let ok = open_service_key().and_then(|k| k.set_binary("GuardState", &state.encode()));
    match ok {
        Ok(()) => log(
            Level::Info,
            format_args!("content {} proven ({why})", state.proven),
        ),
        Err(s) => log(
            Level::Error,
            format_args!("persisting proven content failed: {s:#x}"),
        ),
    }
}

/// Hot load: copies `bytes` (the IOCTL's system buffer) into nonpaged
/// pool, validates it, and swaps it in atomically. The previous active
/// content becomes last-known-good; the one before is released and freed
/// once its readers drain. A failure leaves everything as it was. Not
/// inlined into the IOCTL dispatch (stack: see `control.rs`).
#[inline(never)]
pub fn hot_load(bytes: &[u8], force: bool) -> LoadResponse {
    let result = (|| {
        let buf = PoolBuf::copy_of(bytes).ok_or_else(|| {
            simple_failure(
                Origin::Ioctl,
                0,
                failure::NO_MEMORY,
                format_args!("out of memory"),
            )
        })?;
        let content = build(buf, Origin::Ioctl, None)?;
        Ok::<_, LoadFailure>(content)
    })();
    // Anti-rollback: force does not override it; only a signed rollback
    // instruction whose ceiling covers the highest proven sequence does.
    let result = result.and_then(|content| {
        let highest = GUARD.with(|g| g.state.highest_proven);
        let candidate = rollout::Candidate {
            sequence: content.info.sequence,
            rollout: content.chan.file().rollout(),
        };
        match rollout::check_anti_rollback(&candidate, highest) {
            Ok(()) => Ok(content),
            Err(_) => Err(simple_failure(
                Origin::Ioctl,
                candidate.sequence,
                failure::ROLLBACK,
                format_args!(
                    "sequence {} is older than {highest}, the highest proven here; no rollback instruction covers it",
                    candidate.sequence
                ),
            )),
        }
    });
    match result {
        Ok(content) => {
            let info = content.info;
            let dfas = content.chan.file().dfa_count();
            let mut refused = None;
            sensor::update_store(|s| {
                if let Err(r) = s.check_hot_load(info.sequence, force) {
                    s.record_refusal(Origin::Ioctl, info.sequence, r);
                    refused = Some(*s.last_error());
                    return [None];
                }
                [s.activate(Slot {
                    info,
                    handle: content,
                })]
            });
            let active_sequence = crate::globals::sensor::STORE.with(|s| s.active_info().sequence);
            match refused {
                Some(f) => LoadResponse {
                    result: load_result::REJECTED,
                    active_sequence,
                    failure: f,
                },
                None => {
                    log(
                        Level::Info,
                        format_args!(
                            "hot-loaded content {} ({} rules, {} DFAs read in place)",
                            info.sequence, info.rule_count, dfas
                        ),
                    );
                    LoadResponse {
                        result: load_result::LOADED,
                        active_sequence,
                        failure: LoadFailure::none(),
                    }
                }
            }
        }
        Err(f) => {
            record_failure(f);
            let active_sequence = crate::globals::sensor::STORE.with(|s| s.active_info().sequence);
            LoadResponse {
                result: load_result::REJECTED,
                active_sequence,
                failure: f,
            }
        }
    }
}

/// Persists the mode in the service key (so it survives a restart).
pub fn persist_mode(m: Mode) {
    if let Err(s) = open_service_key().and_then(|k| k.set_dword("Mode", m.to_u32())) {
        log(
            Level::Warning,
            format_args!("persisting mode failed: {s:#x}"),
        );
    }
}
