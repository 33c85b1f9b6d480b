//! Rundown protection for callbacks (the driver's unload waits for
//! in-flight callbacks to leave).
//!
//! The kernel's `EX_RUNDOWN_REF` routines would do, but Wine 8 only stubs
//! them (calling one raises an exception in `winedevice.exe`), so the
//! driver uses this equivalent: a counter of active holders and a
//! "running down" bit. Acquire fails once rundown has begun; the unloader
//! begins rundown and waits (the driver sleeps between polls) until the
//! count drains to zero. Lock-free; never blocks an acquirer.

use core::sync::atomic::{AtomicUsize, Ordering};

const RUNDOWN_BIT: usize = 1;
const ONE: usize = 2;

/// A rundown reference.
#[derive(Debug)]
pub struct Rundown {
    state: AtomicUsize,
}

impl Default for Rundown {
    fn default() -> Self {
        Self::new()
    }
}

impl Rundown {
    /// No holders, not running down.
    pub const fn new() -> Self {
        Rundown {
            state: AtomicUsize::new(0),
        }
    }

    /// Takes protection; `false` once rundown has begun (or the count would
    /// overflow). Every `true` must be paired with [`Rundown::release`].
    pub fn try_acquire(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & RUNDOWN_BIT != 0 {
                return false;
            }
            let Some(n) = s.checked_add(ONE) else {
                return false;
            };
            match self
                .state
                .compare_exchange_weak(s, n, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// Releases protection taken by a successful [`Rundown::try_acquire`].
    pub fn release(&self) {
        self.state.fetch_sub(ONE, Ordering::Release);
    }

    /// Stops new acquisitions. Returns whether every holder has left.
    pub fn begin(&self) -> bool {
        self.state.fetch_or(RUNDOWN_BIT, Ordering::AcqRel) & !RUNDOWN_BIT == 0
    }

    /// Whether rundown has begun and every holder has left.
    pub fn drained(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNDOWN_BIT
    }

    /// Holders right now.
    pub fn holders(&self) -> usize {
        self.state.load(Ordering::Relaxed) >> 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn acquire_release_then_rundown() {
        let r = Rundown::new();
        assert!(r.try_acquire());
        assert!(r.try_acquire());
        assert_eq!(r.holders(), 2);
        assert!(!r.begin(), "holders still inside");
        assert!(!r.try_acquire(), "no new holders after begin");
        assert!(!r.drained());
        r.release();
        assert!(!r.drained());
        r.release();
        assert!(r.drained());
        assert!(!r.try_acquire());
    }

    #[test]
    fn begin_with_no_holders_is_drained() {
        let r = Rundown::new();
        assert!(r.begin());
        assert!(r.drained());
    }

    #[test]
    #[cfg_attr(miri, ignore)] // too slow under Miri (scripts/miri.sh)
    fn threads_drain() {
        let r = Arc::new(Rundown::new());
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut n = 0u32;
                    while r.try_acquire() {
                        n += 1;
                        r.release();
                        if n > 1_000_000 {
                            break;
                        }
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(5));
        r.begin();
        while !r.drained() {
            std::hint::spin_loop();
        }
        assert!(!r.try_acquire());
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(r.holders(), 0);
    }
}
