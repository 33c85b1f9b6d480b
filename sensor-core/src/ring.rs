//! The bounded event ring.
//!
//! The pipe path pushes a record and never waits for a reader: when the ring
//! is full the oldest record is overwritten and counted in
//! [`EventRing::overwritten`]. Readers drain records oldest first; record ids
//! are consecutive, so a reader also sees gaps. The driver guards the ring
//! with a spin lock held only for one push or one drain.
//!
//! The ring holds any [`RingRecord`]: the version-1 [`EventRecord`] (the
//! default) or the full [`crate::event::PipeEvent`]. [`EventRing::push_with`]
//! and [`EventRing::pop_with`] fill and read a slot in place, so a large
//! record is never copied through the (small) kernel stack.

use crate::decision::Decision;
use crate::name::MAX_NAME_UNITS;

/// UTF-16 units of the pipe name kept per record (names are cut to this).
pub const NAME_CAP: usize = MAX_NAME_UNITS;
/// UTF-16 units of the image path kept per record (its *end* is kept: the file name).
pub const IMAGE_CAP: usize = 128;
/// Records the driver's ring holds.
pub const RING_CAP: usize = 128;

/// Create or connect: the format's one definition (wire value as the
/// `EventKind` field in rules: create 1, connect 2).
pub use channel_format::EventKind;

/// One recorded event (a rule matched).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventRecord {
    /// Consecutive id assigned by the ring (first is 1).
    pub id: u64,
    /// System time (100 ns since 1601), 0 when unknown.
    pub time: u64,
    /// Requestor process id.
    pub pid: u32,
    /// Matched rule id.
    pub rule_id: u32,
    /// Create or connect.
    pub kind: u8,
    /// [`Decision`] wire value.
    pub decision: u8,
    /// Rule action wire value.
    pub action: u8,
    /// Rule severity wire value.
    pub severity: u8,
    /// Units used in `name`.
    pub name_len: u16,
    /// Units used in `image`.
    pub image_len: u16,
    /// Normalized pipe name (`\name`), cut to [`NAME_CAP`].
    pub name: [u16; NAME_CAP],
    /// Image path, its last [`IMAGE_CAP`] units.
    pub image: [u16; IMAGE_CAP],
}

impl core::fmt::Debug for EventRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventRecord")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("rule_id", &self.rule_id)
            .field("decision", &Decision::from_u8(self.decision))
            .field("name_len", &self.name_len)
            .finish_non_exhaustive()
    }
}

impl EventRecord {
    /// An all-zero record.
    pub const EMPTY: EventRecord = EventRecord {
        id: 0,
        time: 0,
        pid: 0,
        rule_id: 0,
        kind: 0,
        decision: 0,
        action: 0,
        severity: 0,
        name_len: 0,
        image_len: 0,
        name: [0; NAME_CAP],
        image: [0; IMAGE_CAP],
    };

    /// Copies `name` (cut to [`NAME_CAP`]) into the record.
    pub fn set_name(&mut self, name: &[u16]) {
        let n = name.len().min(NAME_CAP);
        if let (Some(dst), Some(src)) = (self.name.get_mut(..n), name.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.name_len = u16::try_from(n).unwrap_or(0);
    }

    /// Copies the last [`IMAGE_CAP`] units of `image` into the record.
    pub fn set_image(&mut self, image: &[u16]) {
        let n = image.len().min(IMAGE_CAP);
        let start = image.len().saturating_sub(n);
        if let (Some(dst), Some(src)) = (self.image.get_mut(..n), image.get(start..)) {
            dst.copy_from_slice(src);
        }
        self.image_len = u16::try_from(n).unwrap_or(0);
    }

    /// The name units in use.
    pub fn name(&self) -> &[u16] {
        self.name.get(..usize::from(self.name_len)).unwrap_or(&[])
    }
    /// The image units in use.
    pub fn image(&self) -> &[u16] {
        self.image.get(..usize::from(self.image_len)).unwrap_or(&[])
    }
}

/// A record the ring can hold.
pub trait RingRecord: Copy {
    /// The empty record a slot holds before (and is reset to at) each push.
    const EMPTY: Self;
    /// Stores the id the ring assigns.
    fn set_id(&mut self, id: u64);
}

impl RingRecord for EventRecord {
    const EMPTY: Self = EventRecord::EMPTY;
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
}

/// A fixed-capacity ring of `N` records of type `R`.
#[derive(Debug)]
pub struct EventRing<const N: usize, R: RingRecord = EventRecord> {
    buf: [R; N],
    /// Index of the oldest record.
    head: usize,
    len: usize,
    next_id: u64,
    overwritten: u64,
}

impl<const N: usize, R: RingRecord> Default for EventRing<N, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, R: RingRecord> EventRing<N, R> {
    /// An empty ring.
    pub const fn new() -> Self {
        EventRing {
            buf: [R::EMPTY; N],
            head: 0,
            len: 0,
            next_id: 1,
            overwritten: 0,
        }
    }

    /// Records in the ring.
    pub const fn len(&self) -> usize {
        self.len
    }
    /// Whether the ring is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Records overwritten before anyone read them.
    pub const fn overwritten(&self) -> u64 {
        self.overwritten
    }
    /// Records ever pushed.
    pub const fn total(&self) -> u64 {
        self.next_id.saturating_sub(1)
    }

    /// Adds a record (its `id` is assigned here), overwriting the oldest when
    /// full. Constant time; never fails.
    pub fn push(&mut self, rec: R) -> u64 {
        self.push_with(|slot| *slot = rec)
    }

    /// Adds a record filled in place by `fill` (the slot is reset to
    /// [`RingRecord::EMPTY`] first; its id is assigned after `fill`),
    /// overwriting the oldest when full. Constant time apart from `fill`;
    /// never fails. Returns the id.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut R)) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        if N == 0 {
            self.overwritten = self.overwritten.saturating_add(1);
            return id;
        }
        let slot = if self.len < N {
            let s = self
                .head
                .checked_add(self.len)
                .and_then(|x| x.checked_rem(N))
                .unwrap_or(0);
            self.len = self.len.saturating_add(1);
            s
        } else {
            let s = self.head;
            self.head = self
                .head
                .checked_add(1)
                .and_then(|x| x.checked_rem(N))
                .unwrap_or(0);
            self.overwritten = self.overwritten.saturating_add(1);
            s
        };
        if let Some(b) = self.buf.get_mut(slot) {
            *b = R::EMPTY;
            fill(b);
            b.set_id(id);
        }
        id
    }

    /// Removes and returns the oldest record.
    pub fn pop(&mut self) -> Option<R> {
        self.pop_with(|r| *r)
    }

    /// Removes the oldest record, handing it to `read` in place (no copy).
    pub fn pop_with<T>(&mut self, read: impl FnOnce(&R) -> T) -> Option<T> {
        self.pop_if(|r| Some(read(r)))
    }

    /// Hands the oldest record to `take` in place and removes it only when
    /// `take` returns `Some` (a reader whose buffer is full leaves it).
    pub fn pop_if<T>(&mut self, take: impl FnOnce(&R) -> Option<T>) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let out = self.buf.get(self.head).and_then(take)?;
        self.head = self
            .head
            .checked_add(1)
            .and_then(|x| x.checked_rem(N))
            .unwrap_or(0);
        self.len = self.len.saturating_sub(1);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: u32) -> EventRecord {
        EventRecord {
            pid,
            ..EventRecord::EMPTY
        }
    }

    #[test]
    fn fifo_and_ids() {
        let mut r = EventRing::<4>::new();
        assert!(r.is_empty());
        assert_eq!(r.push(rec(1)), 1);
        assert_eq!(r.push(rec(2)), 2);
        assert_eq!(r.pop().map(|e| (e.id, e.pid)), Some((1, 1)));
        assert_eq!(r.pop().map(|e| (e.id, e.pid)), Some((2, 2)));
        assert_eq!(r.pop(), None);
        assert_eq!(r.total(), 2);
    }

    #[test]
    fn overflow_overwrites_oldest_and_counts() {
        let mut r = EventRing::<3>::new();
        for p in 1..=7 {
            r.push(rec(p));
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.overwritten(), 4);
        let ids: std::vec::Vec<u64> = core::iter::from_fn(|| r.pop()).map(|e| e.id).collect();
        assert_eq!(ids, [5, 6, 7]);
        // Wrap-around after draining keeps order.
        for p in 8..=9 {
            r.push(rec(p));
        }
        assert_eq!(r.pop().map(|e| e.pid), Some(8));
        assert_eq!(r.pop().map(|e| e.pid), Some(9));
    }

    #[test]
    fn full_records_in_place() {
        use crate::event::PipeEvent;
        let mut r = EventRing::<2, PipeEvent>::new();
        for pid in 1..=3u32 {
            let id = r.push_with(|e| {
                e.pid = pid;
                e.set_name(&[0x5c, 0x60 + pid as u16]);
            });
            assert_eq!(id, u64::from(pid));
        }
        assert_eq!(r.overwritten(), 1);
        assert_eq!(
            r.pop_with(|e| (e.id, e.pid, e.name()[1])),
            Some((2, 2, 0x62))
        );
        // A reused slot starts empty: nothing of the record it held leaks.
        r.push_with(|e| e.pid = 9);
        assert_eq!(r.pop().map(|e| (e.pid, e.name().len())), Some((3, 2)));
        assert_eq!(
            r.pop().map(|e| (e.id, e.pid, e.name().len())),
            Some((4, 9, 0))
        );
        assert!(r.pop_with(|e| e.id).is_none());
        r.push_with(|e| e.pid = 10);
        assert_eq!(r.pop_if(|_| None::<()>), None);
        assert_eq!(r.len(), 1, "a refused record stays");
        assert_eq!(r.pop_if(|e| Some(e.pid)), Some(10));
    }

    #[test]
    fn zero_capacity_counts_everything() {
        let mut r = EventRing::<0>::new();
        r.push(rec(1));
        assert_eq!((r.len(), r.overwritten()), (0, 1));
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn names_are_cut_and_image_keeps_its_end() {
        let mut e = EventRecord::EMPTY;
        let long: std::vec::Vec<u16> = (0..(NAME_CAP as u16 + 10)).collect();
        e.set_name(&long);
        assert_eq!(e.name().len(), NAME_CAP);
        assert_eq!(e.name()[0], 0);
        let img: std::vec::Vec<u16> = (0..(IMAGE_CAP as u16 + 5)).collect();
        e.set_image(&img);
        assert_eq!(e.image().len(), IMAGE_CAP);
        assert_eq!(e.image()[0], 5);
        e.set_image(&[1, 2]);
        assert_eq!(e.image(), &[1, 2]);
        assert_eq!(EventKind::from_u32(2), Some(EventKind::Connect));
        assert_eq!(EventKind::from_u32(0), None);
    }
}
