//! The sensor's global state and the one decision path shared by the
//! filter callbacks and the EVAL IOCTL.
//!
//! Working memory: every evaluation runs in one of [`WORK_SLOTS`]
//! preallocated slots (matcher scratch, the image path buffers, the name
//! buffer). A callback that finds them all busy waits for one, at most
//! `WorkWaitMilliseconds` (default 1000 ms; callbacks of creates run at
//! PASSIVE_LEVEL), on a kernel semaphore; when the wait runs out it decides
//! without evaluating: deny in enforce mode, allow in monitor mode
//! (`sensor_core::work`), counted in status (`work_exhausted`,
//! `unchecked_denied`, `unchecked_allowed`). A name too long to normalize
//! is decided the same way (`name_errors`).

use crate::dump;
use crate::globals::sensor::*;
use crate::sys::{Identity, ImageFrom, ImageQuery, OwnedChannel, PoolArc, Requestor, SidFrom};
use channel_parser::FieldId;
use channel_parser::Text;
use core::sync::atomic::Ordering;
use sensor_core::decision::{decide_unchecked_guarded, Decision, Mode, RuleHit};
use sensor_core::eval::{self, RawEvent};
use sensor_core::event::{PipeEvent, Sid, SidText};
use sensor_core::name::{is_root, normalize_target, NameError, MAX_NAME_UNITS};
use sensor_core::proto::{ContentInfo, Counters, FixedText, Status, RULE_NAME_LEN};
use sensor_core::ring::{EventKind, EventRing, RING_CAP};
use sensor_core::store::Store;
use sensor_core::work::{AfterTimeout, Enter, Unchecked, Wake};

/// Parsed content plus its description.
pub struct Content {
    pub chan: OwnedChannel,
    pub info: ContentInfo,
}

/// What the store holds: a counted reference, so swapping content never
/// frees it under a reader; the last reader's drop frees it.
pub type ContentRef = PoolArc<Content>;

/// Per-evaluation working memory: `sensor_core::eval::Work` (matcher
/// scratch, a composed name, the image path in DOS form), the
/// requestor's image path as queried (NT form) and the requester's SID in
/// string form (the `User` field, ≤ 184 bytes).
pub(crate) struct Work {
    eval: eval::Work,
    query: ImageQuery,
    user: SidText,
}

impl Work {
    /// Empty working memory.
    pub(crate) const INIT: Work = Work {
        eval: eval::Work::new(),
        query: ImageQuery::new(),
        user: SidText::EMPTY,
    };
}

/// Working memory, preallocated in the image (nonpaged), never on the
/// stack; see the module docs for what happens when all slots are busy.
pub(crate) const WORK_SLOTS: usize = 16;

/// Initialises the working-memory semaphore (DriverEntry, PASSIVE_LEVEL,
/// before the control device and the callbacks).
pub fn init_work() {
    WORK_SEM.init();
}

/// Sets the bound on the wait for working memory (`WorkWaitMilliseconds`).
pub fn set_work_wait_ms(ms: u32) {
    WORK_WAIT_MS.store(ms.min(sensor_core::work::MAX_WAIT_MS), Ordering::Release);
}

/// The bound in force.
pub fn work_wait_ms() -> u32 {
    WORK_WAIT_MS.load(Ordering::Acquire)
}

/// Runs `f` with a working-memory slot, waiting for one at most
/// `WorkWaitMilliseconds`. `None` when none came (counted). PASSIVE_LEVEL
/// (the create callbacks and the IOCTL path).
fn with_work<R>(f: impl FnOnce(&mut Work) -> R) -> Option<R> {
    if WORK_POOL.enter() == Enter::Wait {
        WORK_WAITS.fetch_add(1, Ordering::Relaxed);
        WORK_WAITING.fetch_add(1, Ordering::Relaxed);
        let mut admitted = WORK_SEM.wait(Some(WORK_WAIT_MS.load(Ordering::Acquire)));
        if !admitted {
            admitted = match WORK_POOL.after_wait() {
                AfterTimeout::GaveUp => false,
                // Signalled for us between the timeout and the withdrawal:
                // the unit is there, take it.
                AfterTimeout::ConsumeWakeup => WORK_SEM.wait(None),
            };
        }
        WORK_WAITING.fetch_sub(1, Ordering::Relaxed);
        if !admitted {
            WORK_EXHAUSTED.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
    let Some(i) = WORK_POOL.claim() else {
        // More admitted than slots: cannot happen (sensor_core::work); if it
        // did, give the admission back and count it as exhausted.
        if WORK_POOL.leave_unclaimed() == Wake::One {
            WORK_SEM.release();
        }
        WORK_EXHAUSTED.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let r = WORK.get(i).and_then(|s| s.try_with(f));
    if WORK_POOL.leave(i) == Wake::One {
        WORK_SEM.release();
    }
    if r.is_none() {
        WORK_EXHAUSTED.fetch_add(1, Ordering::Relaxed);
    }
    r
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
    let (sequence, policy) = STORE.with(|s| {
        (
            s.active_info().sequence,
            s.active().and_then(|a| a.handle.chan.file().enforcement()),
        )
    });
    crate::blocksafe::on_active(sequence, policy, crate::content::ring());
}

pub fn release_all_content() {
    update_store(|s| s.take_all());
}

/// Counts a pre-operation callback (every one, content or not).
pub fn count_callback() {
    CALLBACKS.fetch_add(1, Ordering::Relaxed);
}

/// The name an evaluation is about: as a callback sees it (the related
/// file object's name for a relative open, else empty) or as EVAL gives it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub related: &'a [u16],
    pub name: &'a [u16],
}

/// Where the requestor's image path comes from.
#[derive(Debug, Clone, Copy)]
pub enum ImageArg<'a> {
    /// No image.
    Absent,
    /// Given (EVAL).
    Given(&'a [u16]),
    /// Queried from the requesting process, in working memory (callbacks).
    Requestor(Requestor<'a>),
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

/// Decides an event that could not be evaluated (`sensor_core::work`
/// policy) and counts it. Out of line: a breakpoint target (docs/windbg.md).
#[cold]
#[inline(never)]
fn unchecked(why: Unchecked, target: Option<Target<'_>>) -> Decision {
    // An absolute name normalizes without working memory (borrowed in place).
    let name = target.and_then(|t| normalize_target(t.related, t.name, &mut []).ok());
    let d = decide_unchecked_guarded(mode(), why, name.map(Text::Utf16));
    match d {
        Decision::Deny => {
            UNCHECKED_DENIED.fetch_add(1, Ordering::Relaxed);
            DENIED.fetch_add(1, Ordering::Relaxed);
        }
        Decision::Protected => {
            UNCHECKED_ALLOWED.fetch_add(1, Ordering::Relaxed);
            crate::blocksafe::count_protected();
        }
        _ => {
            UNCHECKED_ALLOWED.fetch_add(1, Ordering::Relaxed);
        }
    }
    d
}

/// The decision path: take working memory (waiting for it, bounded),
/// normalize the name, get the image path (the requestor's, for a
/// callback) and rewrite it to DOS form (`crate::drives`), evaluate against
/// the active content, decide under the current mode, count, and (if
/// `record`) put a matching event, with the rewritten image path, in the
/// ring. Never allocates; waits only for working memory. `given_user` is
/// EVAL's `User` (a SID in string form); a callback reads its requester's.
pub fn evaluate(
    kind: EventKind,
    pid: u32,
    target: Target<'_>,
    image: ImageArg<'_>,
    given_user: Option<&[u16]>,
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
    let run = |work: &mut Work| {
        evaluate_in(work, kind, pid, target, image, given_user, record, &mut out)
    };
    if with_work(run).is_none() {
        out.decision = unchecked(Unchecked::WorkExhausted, Some(target));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn evaluate_in(
    work: &mut Work,
    kind: EventKind,
    pid: u32,
    target: Target<'_>,
    image: ImageArg<'_>,
    given_user: Option<&[u16]>,
    record: bool,
    out: &mut Outcome,
) {
    let Work {
        eval: eval::Work { scratch, buffers },
        query,
        user,
    } = work;
    // Callbacks feed the circuit breaker; EVAL only asks it.
    let live = matches!(image, ImageArg::Requestor(_));
    let content = active();
    let requestor = match image {
        ImageArg::Requestor(r) => Some(r),
        _ => None,
    };
    // The requestor's image is queried only when there is content to match.
    let nt_image = match (image, &content) {
        (_, None) | (ImageArg::Absent, _) => None,
        (ImageArg::Given(i), _) => Some(i),
        (ImageArg::Requestor(r), Some(_)) => {
            let (i, from) = r.image(query);
            match from {
                ImageFrom::Located => &IMAGE_LOCATED,
                ImageFrom::Queried => &IMAGE_QUERIED,
                ImageFrom::Missing => &IMAGE_MISSING,
            }
            .fetch_add(1, Ordering::Relaxed);
            i
        }
    };
    // The requester's SID, read before matching only when the active
    // content has a rule on `User` (a bit the parser computed): otherwise
    // the pipe path pays nothing here. The recorder below reuses it, so an
    // operation reads its identity at most once. Not readable → no user:
    // `User` atoms are false, as `Image` atoms are without an image
    // (docs/rules.md), counted in `user_missing`.
    let reads_user = content
        .as_ref()
        .is_some_and(|c| c.chan.file().reads_field(FieldId::USER));
    let mut who: Option<Identity> = None;
    Sid::NONE.text_into(user);
    if reads_user {
        if let Some(r) = requestor {
            USER_READ.fetch_add(1, Ordering::Relaxed);
            let id = read_identity(r);
            match &id.sid {
                Some(sid) => sid.text_into(user),
                None => {
                    USER_MISSING.fetch_add(1, Ordering::Relaxed);
                }
            }
            who = Some(id);
        } else if let Some(u) = given_user {
            // EVAL: the request's user (printable ASCII within a SID's
            // length, checked by the decoder; anything else would leave
            // no user).
            user.set_units(u);
        }
    }
    // The one evaluation path pipectl shares (sensor_core::eval): name
    // normalization, image in DOS form, the matcher's event.
    let raw = RawEvent {
        kind,
        pid,
        name: target.name,
        image: nt_image,
        user: Some(user.as_str()),
    };
    let p = match eval::prepare_target(crate::drives::map(), target.related, &raw, buffers) {
        Ok(p) => p,
        Err(e) => {
            NAME_ERRORS.fetch_add(1, Ordering::Relaxed);
            if e != NameError::Empty {
                out.decision = unchecked(Unchecked::NameTooLong, None);
            }
            return;
        }
    };
    crate::drives::note(p.image);
    let name = p.name;
    let shown = name.len().min(MAX_NAME_UNITS);
    out.name_len = shown;
    if let (Some(d), Some(s)) = (out.name.get_mut(..shown), name.get(..shown)) {
        d.copy_from_slice(s);
    }
    let Some(content) = content else {
        return;
    };
    out.sequence = content.info.sequence;
    let file = content.chan.file();
    let v = file.evaluate(&p.event(), scratch);
    out.matched = v.matched;
    if let Some(r) = v.best {
        out.hit = Some(RuleHit {
            id: r.id(),
            action: r.action(),
            severity: r.severity(),
        });
        out.rule_name = FixedText::<RULE_NAME_LEN>::new(r.name());
    }
    let dos = p.image.map(|i| i.path());
    out.decision = crate::blocksafe::decide(kind, name, dos, pid, mode(), out.hit, live).decision;
    if out.hit.is_some() {
        MATCHED.fetch_add(1, Ordering::Relaxed);
    }
    if out.decision == Decision::Deny {
        DENIED.fetch_add(1, Ordering::Relaxed);
    }
    if record && out.decision.records() {
        // Who asked, read before the ring's lock is taken (PASSIVE_LEVEL
        // object-manager calls) unless it was read for matching; EVAL
        // events have no requester.
        let who = who.or_else(|| requestor.map(read_identity));
        let dos_image = p.image.map(|i| i.path());
        let time = crate::sys::system_time();
        let boot = crate::sys::boot_identity();
        let (decision, hit, rule_name, sequence) =
            (out.decision, out.hit, out.rule_name, out.sequence);
        // Filled in place: the record (2.8 KB) is never on the stack.
        let id = RING.with(|r| {
            r.push_with(|e| {
                e.time = time;
                e.pid = pid;
                e.kind = kind.to_u8();
                e.decision = decision.to_u8();
                if let Some(h) = hit {
                    e.rule_id = h.id;
                    e.action = h.action.0;
                    e.severity = h.severity.0;
                }
                e.rule_name = rule_name;
                e.sequence = sequence;
                e.set_name(name);
                e.set_image(dos_image);
                e.set_sid(
                    who.and_then(|w| w.sid),
                    who.is_some_and(|w| w.sid_from_process),
                );
                e.set_process(boot, who.map_or(0, |w| w.create_time));
            })
        });
        dump::record_event(
            id,
            pid,
            hit.map_or(0, |h| h.id),
            decision.to_u8(),
            kind.to_u8(),
            name,
        );
        crate::events::pushed();
    }
    drop(content);
}

/// The requester's identity, its SID's source counted (once per read).
fn read_identity(r: Requestor<'_>) -> Identity {
    let (id, from) = r.identity();
    match from {
        SidFrom::Context => &SID_FROM_CONTEXT,
        SidFrom::Process => &SID_FROM_PROCESS,
        SidFrom::Missing => &SID_MISSING,
    }
    .fetch_add(1, Ordering::Relaxed);
    id
}

/// A pre-operation callback's event: the root itself is allowed (and
/// counted); anything else goes through [`evaluate`] with the requestor's
/// id and image.
pub fn on_callback(
    kind: EventKind,
    requestor: Requestor<'_>,
    related: &[u16],
    name: &[u16],
) -> Decision {
    if is_root(related, name) {
        ROOT_OPENS.fetch_add(1, Ordering::Relaxed);
        return Decision::Allow;
    }
    let pid = requestor.pid();
    evaluate(
        kind,
        pid,
        Target { related, name },
        ImageArg::Requestor(requestor),
        None,
        true,
    )
    .decision
}

/// Runs `f` on the ring, under its lock (DISPATCH_LEVEL: `f` must not wait).
pub fn with_ring<R>(f: impl FnOnce(&mut EventRing<RING_CAP, PipeEvent>) -> R) -> R {
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
            callbacks: CALLBACKS.load(Ordering::Relaxed),
            root_opens: ROOT_OPENS.load(Ordering::Relaxed),
            unchecked_denied: UNCHECKED_DENIED.load(Ordering::Relaxed),
            unchecked_allowed: UNCHECKED_ALLOWED.load(Ordering::Relaxed),
            work_waits: WORK_WAITS.load(Ordering::Relaxed),
            work_exhausted: WORK_EXHAUSTED.load(Ordering::Relaxed),
            work_waiting: WORK_WAITING.load(Ordering::Relaxed),
            work_wait_ms: u64::from(WORK_WAIT_MS.load(Ordering::Relaxed)),
            image_located: IMAGE_LOCATED.load(Ordering::Relaxed),
            image_queried: IMAGE_QUERIED.load(Ordering::Relaxed),
            image_missing: IMAGE_MISSING.load(Ordering::Relaxed),
            user_read: USER_READ.load(Ordering::Relaxed),
            user_missing: USER_MISSING.load(Ordering::Relaxed),
        },
        last_error,
    }
}

/// Where recorded events' SIDs came from: (security context, process
/// token, none), for the unload log.
pub fn sid_counts() -> (u64, u64, u64) {
    (
        SID_FROM_CONTEXT.load(Ordering::Relaxed),
        SID_FROM_PROCESS.load(Ordering::Relaxed),
        SID_MISSING.load(Ordering::Relaxed),
    )
}
