//! What the FFI layer calls in the driver above it, as data: one table of
//! plain function pointers ([`Hooks`]) that the crate root fills
//! (`crate::globals::HOOKS`, next to the rest of the driver's global
//! state). Nothing in `sys` names a module above it; the entry points
//! (DriverEntry, unload, IRP dispatch, minifilter callbacks, the system
//! threads) reach the driver only through these fields.
//!
//! The table is an immutable `static`: it exists from the moment the image
//! is mapped, so no callback can run before it is "registered" and there is
//! no empty-table state to decide about. With every field a constant, fat
//! LTO turns each call through it into a direct call (the stack bound,
//! `scripts/stack-usage.sh`, sees the real callee).

use super::{BufferedIo, Driver, Requestor, SpinLock, NTSTATUS};
use sensor_core::decision::Decision;
use sensor_core::event::PipeEvent;
use sensor_core::proto::ProtoError;
use sensor_core::ring::{EventKind, EventRing, RING_CAP};

/// The event ring the pended EVENTS_V2 requests are answered from.
pub type Ring = EventRing<RING_CAP, PipeEvent>;

/// Every call from the FFI layer into the driver. IRQL and thread per field.
pub struct Hooks {
    /// DriverEntry's work once its arguments are read (PASSIVE_LEVEL,
    /// system thread): the registry path's units, valid during the call.
    pub start: fn(&Driver, &[u16]) -> NTSTATUS,
    /// Undoes `start`; the filter manager's unload callback or (Wine)
    /// DriverUnload (PASSIVE_LEVEL). Idempotent.
    pub stop: fn(),
    /// One periodic rescan of the content directory (the rescan system
    /// thread, PASSIVE_LEVEL).
    pub periodic_rescan: fn(),
    /// An IOCTL other than EVENTS_V2 (the caller's thread, PASSIVE_LEVEL):
    /// returns the bytes written to the output or the status to fail with.
    pub device_control: fn(u32, &mut BufferedIo) -> Result<usize, NTSTATUS>,
    /// Whether an EVENTS_V2 request asks to wait and may be pended.
    pub events_wants_wait: fn(&BufferedIo) -> bool,
    /// EVENTS_V2 answered at once (no wait, or a request that does not decode).
    pub events_answer_now: fn(&mut BufferedIo) -> Result<usize, NTSTATUS>,
    /// Writes a batch from `ring` into a pended request (ring lock held,
    /// <= DISPATCH_LEVEL).
    pub events_answer: fn(&mut BufferedIo, &mut Ring) -> Result<usize, ProtoError>,
    /// The event ring (data: locked by the FFI layer around its own use,
    /// <= DISPATCH_LEVEL).
    pub ring: &'static SpinLock<Ring>,
    /// Counts a minifilter callback (any pre-create, <= APC_LEVEL).
    pub count_callback: fn(),
    /// Whether content is active (the callbacks' cheap first check).
    pub has_content: fn() -> bool,
    /// The decision for one pre-create: kind, requestor, related file
    /// object's name, target name (PASSIVE_LEVEL or APC_LEVEL).
    pub on_callback: fn(EventKind, Requestor<'_>, &[u16], &[u16]) -> Decision,
    /// The secondary dump data: address and length of the fixed nonpaged
    /// buffer (`crate::dump`) the bug-check callback hands to the kernel
    /// (HIGH_LEVEL during a bug check: must not lock or allocate).
    pub dump_area: fn() -> (*mut u8, usize),
}

impl core::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Hooks")
    }
}
