//! Resolving user SIDs to `DOMAIN\name`, with a bounded cache.
//!
//! The lookup itself (`LookupAccountSidW` in the service) can be slow — it
//! may ask a domain controller — so each SID is looked up once and kept.
//! The cache holds at most `cap` SIDs (the oldest entry is dropped first).
//! A SID that did not resolve is written as its string form (`S-1-5-…`)
//! and looked up again after `retry` (a domain controller may come back).

use sensor_core::event::Sid;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Looks a SID up (`DOMAIN\name`), `None` when it does not resolve.
pub trait Resolve {
    /// One lookup.
    fn lookup(&mut self, sid: &Sid) -> Option<String>;
}

/// A resolver that never resolves: every SID is written as its string
/// (non-Windows hosts, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLookup;

impl Resolve for NoLookup {
    fn lookup(&mut self, _sid: &Sid) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone)]
struct Entry {
    name: Option<String>,
    at: Instant,
}

/// A bounded cache in front of a [`Resolve`].
#[derive(Debug)]
pub struct SidCache<R> {
    resolver: R,
    map: HashMap<Vec<u8>, Entry>,
    order: VecDeque<Vec<u8>>,
    cap: usize,
    retry: Duration,
    /// Lookups made (cache misses and retries).
    pub lookups: u64,
}

impl<R: Resolve> SidCache<R> {
    /// At most `cap` SIDs (≥ 1); failed lookups retried after `retry`.
    pub fn new(resolver: R, cap: usize, retry: Duration) -> Self {
        SidCache {
            resolver,
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            retry,
            lookups: 0,
        }
    }

    /// SIDs held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `DOMAIN\name` of `sid`, or its string form when it does not resolve.
    pub fn user(&mut self, sid: &Sid, now: Instant) -> String {
        let key = sid.as_bytes();
        if let Some(e) = self.map.get(key) {
            match &e.name {
                Some(n) => return n.clone(),
                None if now.saturating_duration_since(e.at) < self.retry => return sid.to_string(),
                None => {}
            }
        }
        self.lookups += 1;
        let name = self.resolver.lookup(sid);
        if !self.map.contains_key(key) {
            if self.map.len() >= self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
            self.order.push_back(key.to_vec());
        }
        self.map.insert(
            key.to_vec(),
            Entry {
                name: name.clone(),
                at: now,
            },
        );
        name.unwrap_or_else(|| sid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sid(rid: u32) -> Sid {
        let mut b = vec![1u8, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];
        b.extend_from_slice(&rid.to_le_bytes());
        Sid::from_bytes(&b).unwrap()
    }

    #[derive(Default)]
    struct Fake {
        names: HashMap<u32, String>,
        calls: Vec<u32>,
    }

    impl Resolve for Fake {
        fn lookup(&mut self, s: &Sid) -> Option<String> {
            let rid = s.sub_authorities().last().unwrap();
            self.calls.push(rid);
            self.names.get(&rid).cloned()
        }
    }

    #[test]
    fn resolves_once_and_caches() {
        let mut f = Fake::default();
        f.names.insert(1001, r"CORP\bob".into());
        let mut c = SidCache::new(f, 8, Duration::from_secs(60));
        let t = Instant::now();
        for _ in 0..5 {
            assert_eq!(c.user(&sid(1001), t), r"CORP\bob");
        }
        assert_eq!(c.lookups, 1);
        assert_eq!(c.resolver.calls, [1001]);
    }

    #[test]
    fn failures_show_the_sid_and_are_retried_later() {
        let mut c = SidCache::new(Fake::default(), 8, Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(c.user(&sid(7), t), "S-1-5-21-7");
        assert_eq!(c.user(&sid(7), t + Duration::from_secs(59)), "S-1-5-21-7");
        assert_eq!(c.lookups, 1);
        c.resolver.names.insert(7, r"CORP\back".into());
        assert_eq!(c.user(&sid(7), t + Duration::from_secs(60)), r"CORP\back");
        assert_eq!(c.lookups, 2);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn bounded_oldest_dropped_first() {
        let mut f = Fake::default();
        for r in 0..10 {
            f.names.insert(r, format!("D\\u{r}"));
        }
        let mut c = SidCache::new(f, 3, Duration::from_secs(60));
        let t = Instant::now();
        for r in 0..5 {
            c.user(&sid(r), t);
        }
        assert_eq!(c.len(), 3);
        // 0 and 1 were dropped: looked up again; 4 still cached.
        c.user(&sid(4), t);
        c.user(&sid(0), t);
        assert_eq!(c.resolver.calls, [0, 1, 2, 3, 4, 0]);
        assert!(!c.is_empty());
        assert_eq!(
            SidCache::new(NoLookup, 0, Duration::ZERO).user(&sid(5), t),
            "S-1-5-21-5"
        );
    }
}
