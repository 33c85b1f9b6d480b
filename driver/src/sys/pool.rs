//! Pool memory: buffers, reference-counted objects, the loaded channel file.

use super::*;
use crate::globals::sys::*;

/// Pool allocations made by the driver and not yet freed.
pub fn pool_live() -> usize {
    POOL_LIVE.load(Ordering::Relaxed)
}

/// Zeroed nonpaged, non-executable pool, tagged [`POOL_TAG`]. IRQL <= DISPATCH_LEVEL.
fn pool_alloc(size: usize) -> Option<NonNull<u8>> {
    let p = pool_alloc_raw(size);
    if p.is_some() {
        POOL_LIVE.fetch_add(1, Ordering::Relaxed);
    }
    p
}

fn pool_alloc_raw(size: usize) -> Option<NonNull<u8>> {
    if size == 0 {
        return None;
    }
    let f = EX_ALLOCATE_POOL2.load(Ordering::Acquire);
    let p = if f.is_null() {
        // SAFETY: documented routine, nonpaged NX pool, IRQL <= DISPATCH_LEVEL.
        let p = unsafe { ExAllocatePoolWithTag(NON_PAGED_POOL_NX, size, POOL_TAG) }.cast::<u8>();
        if !p.is_null() {
            // SAFETY: p is a fresh allocation of `size` bytes.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        p
    } else {
        // SAFETY: f is ExAllocatePool2 (resolved by name), same prototype;
        // POOL_FLAG_NON_PAGED memory is zeroed and NX.
        let g: ExAllocatePool2Fn =
            unsafe { core::mem::transmute::<*mut c_void, ExAllocatePool2Fn>(f) };
        // SAFETY: see above; IRQL <= DISPATCH_LEVEL.
        unsafe { g(POOL_FLAG_NON_PAGED, size, POOL_TAG) }.cast::<u8>()
    };
    NonNull::new(p)
}

fn pool_free(p: NonNull<u8>) {
    POOL_LIVE.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: p came from pool_alloc with the same tag and is freed once.
    unsafe { ExFreePoolWithTag(p.as_ptr().cast(), POOL_TAG) }
}

/// An owned, zero-initialised byte buffer in nonpaged pool.
pub struct PoolBuf {
    ptr: NonNull<u8>,
    pub(super) len: usize,
}

// SAFETY: PoolBuf owns its memory exclusively, like Box<[u8]>.
unsafe impl Send for PoolBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for PoolBuf {}

impl PoolBuf {
    /// Allocates `len` zeroed bytes (None when out of memory or `len` is 0).
    pub fn zeroed(len: usize) -> Option<PoolBuf> {
        pool_alloc(len).map(|ptr| PoolBuf { ptr, len })
    }
    /// A copy of `data`.
    pub fn copy_of(data: &[u8]) -> Option<PoolBuf> {
        let mut b = PoolBuf::zeroed(data.len())?;
        b.as_mut_slice().copy_from_slice(data);
        Some(b)
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is a live allocation of len initialised (zeroed) bytes
        // owned by self.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        pool_free(self.ptr);
    }
}

/// A reference-counted object in nonpaged pool (an `Arc` without `alloc`).
/// Dropping the last reference frees it, at the IRQL of that drop
/// (<= DISPATCH_LEVEL; nonpaged pool may be freed there).
pub struct PoolArc<T> {
    ptr: NonNull<ArcInner<T>>,
}

struct ArcInner<T> {
    refs: AtomicUsize,
    value: T,
}

// SAFETY: like Arc<T>: shared references to T cross threads.
unsafe impl<T: Send + Sync> Send for PoolArc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for PoolArc<T> {}

impl<T> PoolArc<T> {
    /// Moves `value` into pool (None when out of memory; `value` is dropped).
    pub fn try_new(value: T) -> Option<PoolArc<T>> {
        let size = core::mem::size_of::<ArcInner<T>>();
        const {
            assert!(
                core::mem::align_of::<ArcInner<T>>() <= 16,
                "pool allocations are 16-byte aligned"
            )
        };
        let p = pool_alloc(size)?.cast::<ArcInner<T>>();
        // SAFETY: p is a fresh, suitably aligned (pool blocks are 16-aligned
        // on x64) allocation of size_of::<ArcInner<T>>() bytes.
        unsafe {
            p.as_ptr().write(ArcInner {
                refs: AtomicUsize::new(1),
                value,
            })
        };
        Some(PoolArc { ptr: p })
    }
    fn inner(&self) -> &ArcInner<T> {
        // SAFETY: the allocation lives while any PoolArc to it exists.
        unsafe { self.ptr.as_ref() }
    }
    /// Live references (diagnostics only).
    pub fn refs(&self) -> usize {
        self.inner().refs.load(Ordering::Relaxed)
    }
}

impl<T> Clone for PoolArc<T> {
    fn clone(&self) -> Self {
        self.inner().refs.fetch_add(1, Ordering::Relaxed);
        PoolArc { ptr: self.ptr }
    }
}

impl<T> core::ops::Deref for PoolArc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for PoolArc<T> {
    fn drop(&mut self) {
        if self.inner().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: this was the last reference: nobody else can reach the
        // value; drop it in place, then free the block.
        let inner = unsafe { &mut *self.ptr.as_ptr() };
        // SAFETY: as above: the value is dropped exactly once, here.
        unsafe { ptr::drop_in_place(&mut inner.value) };
        pool_free(self.ptr.cast());
    }
}

impl<T> core::fmt::Debug for PoolArc<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PoolArc")
            .field("refs", &self.refs())
            .finish_non_exhaustive()
    }
}

/// A parsed channel file together with the pool buffer it borrows from.
/// Its DFAs (format 2) are read in place from the buffer: nothing to load.
pub struct OwnedChannel {
    // Declared first: dropped before `buf`, whose bytes it borrows.
    file: ChannelFile<'static>,
    buf: PoolBuf,
}

impl OwnedChannel {
    /// Parses `buf` with `parse`, keeping both together.
    ///
    /// # Errors
    /// The parser's error (the buffer is freed).
    pub fn try_new<E>(
        buf: PoolBuf,
        parse: impl FnOnce(&'static [u8]) -> Result<ChannelFile<'static>, E>,
    ) -> Result<Self, E> {
        // SAFETY: the slice points into pool memory owned by `buf`, which
        // never moves (PoolBuf holds a pointer) and is freed only when this
        // OwnedChannel drops, after `file` (field order). `file()` hands it
        // out only with the lifetime of &self, so no 'static borrow escapes.
        let bytes: &'static [u8] =
            unsafe { core::slice::from_raw_parts(buf.ptr.as_ptr(), buf.len) };
        let file = parse(bytes)?;
        Ok(OwnedChannel { file, buf })
    }
    /// The parsed view, borrowing `self`.
    pub fn file<'s>(&'s self) -> &'s ChannelFile<'s> {
        &self.file
    }
    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }
}
