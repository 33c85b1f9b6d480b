//! PipeSensor: a named-pipe (NPFS) minifilter.
//!
//! It observes pipe creation (`IRP_MJ_CREATE_NAMED_PIPE`) and connection
//! (`IRP_MJ_CREATE` on NPFS), evaluates each against the active channel-291
//! content (parsed once, by `channel-parser`), records matches in a bounded
//! ring, and in enforce mode denies operations a block rule matched.
//!
//! This crate is the FFI shell: every `unsafe` block is in [`sys`]; the
//! decisions, the content store, the crash-loop guard, the event ring and
//! the IOCTL protocol come from `sensor-core` and are tested on the host.
//!
//! Start-up order (teardown runs it backwards, see [`teardown`]):
//! resolve optional routines → working-memory semaphore → drive-letter
//! table (image paths in DOS form, [`drives`]) → register the filter →
//! read the configuration and load content (crash-loop guard) → control
//! device → bug-check callback → start filtering → "proven" timer →
//! periodic rescan thread.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![debugger_visualizer(natvis_file = "../pipesensor.natvis")]

mod blocksafe;
mod content;
mod control;
mod drives;
mod dump;
mod events;
mod globals;
#[allow(dead_code)] // the tables are read by the host layout probe
mod layout;
mod sensor;
// The FFI layer: the only module where unsafe code is allowed (the crate
// denies it everywhere else).
#[allow(unsafe_code)]
mod sys;

use core::sync::atomic::Ordering;
use globals::root::*;
use sys::{log, Level, NTSTATUS};

fn driver_entry(driver: &sys::Driver, registry_path: &[u16]) -> NTSTATUS {
    log(
        Level::Info,
        format_args!("DriverEntry (layout checks: {})", layout::CHECKS.len()),
    );
    sys::resolve_dynamic_routines();
    sys::fix_boot_identity();
    sensor::init_work();
    drives::build_at_start();

    if let Err(s) = driver.register_filter() {
        log(
            Level::Error,
            format_args!("FltRegisterFilter failed: {s:#x}"),
        );
        return s;
    }
    // Wine's stub filter manager hands out 0xdeadbeaf; the test double
    // (driver/testing/fltmgr) a real pointer: the Wine tests read this line.
    log(
        Level::Info,
        format_args!("filter registered (handle {:#x})", sys::filter_handle()),
    );
    sensor::set_flag(sensor_core::proto::FLAG_FILTER_REGISTERED);
    // On Windows the filter manager installs DriverUnload; Wine's stub
    // FltRegisterFilter does not.
    driver.ensure_unload();

    content::configure(registry_path);
    blocksafe::configure();
    content::load_at_start();

    if let Err(s) = driver.create_control_device() {
        log(Level::Error, format_args!("control device failed: {s:#x}"));
        sys::unregister_filter();
        sensor::release_all_content();
        return s;
    }
    if !sys::register_bugcheck_callback() {
        log(
            Level::Warning,
            format_args!("bug-check reason callback not registered"),
        );
    }
    match sys::start_filtering() {
        Ok(()) => sensor::set_flag(sensor_core::proto::FLAG_FILTERING),
        Err(s) => {
            log(
                Level::Error,
                format_args!("FltStartFiltering failed: {s:#x}"),
            );
            sys::deregister_bugcheck_callback();
            sys::delete_control_device();
            sys::unregister_filter();
            sensor::release_all_content();
            return s;
        }
    }
    content::start_proven_timer();
    content::start_rescan_thread();
    STARTED.store(true, Ordering::Release);
    log(Level::Info, format_args!("started"));
    sys::STATUS_SUCCESS
}

/// Undoes [`driver_entry`] in reverse order. Runs once, from the filter
/// manager's unload callback or (under Wine) from DriverUnload.
fn teardown() {
    if TORN_DOWN.swap(true, Ordering::AcqRel) {
        return;
    }
    log(Level::Info, format_args!("unloading"));
    // The rescan thread first: a rescan may (re)start the proven timer.
    sys::stop_rescan_thread();
    sys::stop_timer();
    sys::unregister_filter();
    sys::wait_rundown();
    // No callback pushes any more: complete every pended reader with what
    // the ring still holds before the device goes.
    sys::pending::close();
    sys::delete_control_device();
    sys::deregister_bugcheck_callback();
    // A clean unload proves the active content.
    if STARTED.load(Ordering::Acquire) {
        content::mark_proven("clean unload");
    }
    sensor::release_all_content();
    if drives::too_long() != 0 {
        log(
            Level::Warning,
            format_args!(
                "{} image paths matched in NT form (DOS form longer than the buffer)",
                drives::too_long()
            ),
        );
    }
    let c = sensor::status().counters;
    log(
        Level::Info,
        format_args!(
            "callbacks {}, evaluated {}, denied {} (unchecked: {} denied, {} allowed), work waits {}, exhausted {}, images located {} queried {} missing {}",
            c.callbacks,
            c.evaluated,
            c.denied,
            c.unchecked_denied,
            c.unchecked_allowed,
            c.work_waits,
            c.work_exhausted,
            c.image_located,
            c.image_queried,
            c.image_missing
        ),
    );
    let (ctx, proc_, none) = sensor::sid_counts();
    let (pended, woken, cancelled, cleaned, full) = sys::pending::counts();
    log(
        Level::Info,
        format_args!(
            "events: SID from context {ctx}, from process {proc_}, none {none}; waits pended {pended}, woken {woken}, cancelled {cancelled}, cleaned up {cleaned}, full {full}"
        ),
    );
    log(
        Level::Info,
        format_args!(
            "unloaded; pool allocations outstanding: {}",
            sys::pool_live()
        ),
    );
}
