//! The sensor's global state and the one decision path shared by the
//! filter callbacks and the EVAL IOCTL.

use crate::dump;
use crate::sys::{OwnedChannel, PoolArc, Slot, SpinLock};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use sensor_core::decision::{decide, Decision, Mode, RuleHit};
use sensor_core::eval::{self, RawEvent, Work};
use sensor_core::name::MAX_NAME_UNITS;
use sensor_core::proto::{ContentInfo, Counters, FixedText, Status, RULE_NAME_LEN};
use sensor_core::ring::{EventKind, EventRecord, EventRing, RING_CAP};
use sensor_core::store::Store;

/// Parsed content plus its description.
pub struct Content {
    pub chan: OwnedChannel,
    pub info: ContentInfo,
}

/// What the store holds: a counted reference, so swapping content never
/// frees it under a reader; the last reader's drop frees it.
pub type ContentRef = PoolArc<Content>;

pub static STORE: SpinLock<Store<ContentRef>> = SpinLock::new(Store::new());
static RING: SpinLock<EventRing<RING_CAP>> = SpinLock::new(EventRing::new());
static HAS_CONTENT: AtomicBool = AtomicBool::new(false);
static MODE: AtomicU32 = AtomicU32::new(0);
static FLAGS: AtomicU32 = AtomicU32::new(0);

static EVALUATED: AtomicU64 = AtomicU64::new(0);
static MATCHED: AtomicU64 = AtomicU64::new(0);
static DENIED: AtomicU64 = AtomicU64::new(0);
static NAME_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Per-evaluation working memory (`sensor_core::eval::Work`: matcher
/// scratch, the normalized name, the image path in DOS form), preallocated
/// in the image (nonpaged), never on the stack. A callback that finds every
/// slot busy skips the event (counted in `name_errors`) rather than wait.
const WORK_SLOTS: usize = 16;
static WORK: [Slot<Work>; WORK_SLOTS] = [const { Slot::new(Work::new()) }; WORK_SLOTS];

fn with_work<R>(mut f: impl FnMut(&mut Work) -> R) -> Option<R> {
    WORK.iter().find_map(|s| s.try_with(&mut f))
}

pub fn set_flag(f: u32) {
    FLAGS.fetch_or(f, Ordering::AcqRel);
}

pub fn mode() -> Mode {
    Mode::from_u32(MODE.load(Ordering::Acquire)).unwrap_or_default()
}

/// Sets the mode, returning the previous one.
pub fn set_mode(m: Mode) -> Mode {
    Mode::from_u32(MODE.swap(m.to_u32(), Ordering::AcqRel)).unwrap_or_default()
}

pub fn has_content() -> bool {
    HAS_CONTENT.load(Ordering::Acquire)
}

pub fn count_name_error() {
    NAME_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// A reference to the active content (the store lock is held only to
/// bump the count).
pub fn active() -> Option<ContentRef> {
    STORE.with(|s| s.active().map(|a| a.handle.clone()))
}

/// Runs `f` on the store, then releases whatever handles it returns
/// outside the lock (the content itself is freed when its last reader
/// drops its reference).
pub fn update_store<const N: usize>(
    f: impl FnOnce(&mut Store<ContentRef>) -> [Option<ContentRef>; N],
) {
    let released = STORE.with(|s| {
        let r = f(s);
        HAS_CONTENT.store(s.active().is_some(), Ordering::Release);
        dump::set_content(
            s.active().map(|a| a.handle.chan.bytes()),
            s.active_info().sequence,
            s.lkg_info().sequence,
        );
        r
    });
    drop(released);
}

pub fn release_all_content() {
    update_store(|s| s.take_all());
}

/// The result of evaluating one event.
pub struct Outcome {
    pub decision: Decision,
    pub hit: Option<RuleHit>,
    pub matched: u32,
    pub rule_name: FixedText<RULE_NAME_LEN>,
    pub sequence: u64,
    /// The normalized name, its first `MAX_NAME_UNITS` units.
    pub name: [u16; MAX_NAME_UNITS],
    pub name_len: usize,
}

/// The decision path: `sensor_core::eval` (the name normalized, the image
/// path in DOS form with `crate::drives`' table, the verdict of the active
/// content: the same function `pipectl match/test/replay` call), then the
/// decision under the current mode, counters, and (if `record`) a matching
/// event, with the rewritten image path, in the ring. Never blocks, never
/// allocates.
pub fn evaluate(
    kind: EventKind,
    pid: u32,
    raw_name: &[u16],
    image: Option<&[u16]>,
    record: bool,
) -> Outcome {
    EVALUATED.fetch_add(1, Ordering::Relaxed);
    let mut out = Outcome {
        decision: Decision::Allow,
        hit: None,
        matched: 0,
        rule_name: FixedText::empty(),
        sequence: 0,
        name: [0; MAX_NAME_UNITS],
        name_len: 0,
    };
    let content = active();
    let raw = RawEvent {
        kind,
        pid,
        name: raw_name,
        image,
    };
    // The record's name and image (its last IMAGE_CAP units) are copied
    // while the working buffers holding them are ours.
    let mut rec = EventRecord::EMPTY;
    let ran = with_work(|work| {
        let (p, verdict) = match &content {
            Some(c) => {
                let (p, v) =
                    eval::evaluate(c.chan.file(), c.chan.dfas(), crate::drives::map(), &raw, work)?;
                (p, Some(v))
            }
            None => (eval::prepare(crate::drives::map(), &raw, &mut work.buffers)?, None),
        };
        crate::drives::note(p.image);
        // A name longer than the buffer is matched in full and reported
        // by its first MAX_NAME_UNITS units.
        let shown = p.name.len().min(MAX_NAME_UNITS);
        out.name_len = shown;
        if let (Some(d), Some(n)) = (out.name.get_mut(..shown), p.name.get(..shown)) {
            d.copy_from_slice(n);
        }
        if record {
            rec.set_name(p.name);
            rec.set_image(p.image.map_or(&[], |i| i.path()));
        }
        if let Some(v) = verdict {
            out.matched = v.matched;
            if let Some(r) = v.best {
                out.hit = Some(RuleHit {
                    id: r.id(),
                    action: r.action(),
                    severity: r.severity(),
                });
                out.rule_name = FixedText::<RULE_NAME_LEN>::new(r.name());
            }
        }
        Ok::<(), sensor_core::name::NameError>(())
    });
    if !matches!(ran, Some(Ok(()))) {
        // No free working slot, or a name that cannot be normalized: let
        // it through, counted.
        count_name_error();
        return out;
    }
    let Some(content) = content else {
        return out;
    };
    out.sequence = content.info.sequence;
    out.decision = decide(mode(), out.hit);
    if out.hit.is_some() {
        MATCHED.fetch_add(1, Ordering::Relaxed);
    }
    if out.decision == Decision::Deny {
        DENIED.fetch_add(1, Ordering::Relaxed);
    }
    if record && out.decision.records() {
        rec.time = crate::sys::system_time();
        rec.pid = pid;
        rec.kind = kind.to_u8();
        rec.decision = out.decision.to_u8();
        if let Some(h) = out.hit {
            rec.rule_id = h.id;
            rec.action = h.action.0;
            rec.severity = h.severity.0;
        }
        let id = RING.with(|r| r.push(rec));
        rec.id = id;
        dump::record_event(&rec);
    }
    drop(content);
    out
}

/// The callback entry: returns only the decision.
pub fn on_event(
    kind: EventKind,
    pid: u32,
    raw_name: &[u16],
    image: Option<&[u16]>,
    record: bool,
) -> Decision {
    evaluate(kind, pid, raw_name, image, record).decision
}

/// Pops up to what `f` consumes from the ring, under its lock.
pub fn with_ring<R>(f: impl FnOnce(&mut EventRing<RING_CAP>) -> R) -> R {
    RING.with(f)
}

/// The STATUS snapshot.
pub fn status() -> Status {
    let (active, lkg, last_error, (loads_ok, loads_failed)) = STORE.with(|s| {
        (
            s.active_info(),
            s.lkg_info(),
            *s.last_error(),
            s.load_counts(),
        )
    });
    let (events_total, events_overwritten) = RING.with(|r| (r.total(), r.overwritten()));
    let g = crate::content::guard_snapshot();
    Status {
        mode: mode(),
        flags: FLAGS.load(Ordering::Acquire) | g.flags,
        active,
        lkg,
        quarantined: g.state.quarantined,
        pending: g.state.pending,
        start_count: g.state.start_count,
        max_failed: g.max_failed,
        proven: g.state.proven,
        counters: Counters {
            evaluated: EVALUATED.load(Ordering::Relaxed),
            matched: MATCHED.load(Ordering::Relaxed),
            denied: DENIED.load(Ordering::Relaxed),
            events_total,
            events_overwritten,
            name_errors: NAME_ERRORS.load(Ordering::Relaxed),
            loads_ok,
            loads_failed,
            pool_live: crate::sys::pool_live() as u64,
        },
        last_error,
    }
}
