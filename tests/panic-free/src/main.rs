//! The panic-free proof: a `no_std`, `no_main` binary for
//! `x86_64-unknown-none` that calls `channel_parser::parse` and the matcher
//! (`evaluate`, `for_each_match`; regex atoms run the format-2 DFAs the
//! parser reads in place, its own code) on opaque input. Its `#[panic_handler]` calls `__pipe_sensor_panic_path_survived`,
//! a function that exists nowhere: if any panic path is still reachable after
//! optimisation (release, LTO, `panic = "abort"`), the link fails with an
//! undefined-symbol error naming it. If the binary links, no panic is
//! reachable from these entry points for any input.
//!
//! Inputs come through `core::hint::black_box`, so the optimiser knows
//! nothing about them and cannot fold checks away on the basis of constants.
#![no_std]
#![no_main]

use channel_parser::{parse, Capabilities};
use core::hint::black_box;

extern "C" {
    /// Deliberately undefined.
    fn __pipe_sensor_panic_path_survived() -> !;
}

#[cfg(not(feature = "locate"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: never executed when the proof holds; if a panic path survives,
    // this reference makes the link fail, which is the point.
    unsafe { __pipe_sensor_panic_path_survived() }
}

/// `--features locate`: a handler that links, so that the call sites of the
/// panic functions can be listed from the binary (scripts/panic-free.sh
/// --locate prints them with their inlined source locations).
#[cfg(feature = "locate")]
#[panic_handler]
#[inline(never)]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Opaque storage standing in for the driver's pool buffer.
static FILE: [u8; 4096] = [0; 4096];
static NAME: [u16; 256] = [0; 256];
static IMAGE: [u16; 256] = [0; 256];

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let len = black_box(FILE.len());
    let file: &[u8] = black_box(&FILE[..]);
    let file = file.get(..len).unwrap_or(&[]);
    let mut result = 0u32;
    #[cfg(feature = "inject-panic")]
    {
        // An index the optimiser cannot prove in bounds.
        result = result.wrapping_add(u32::from(file[black_box(len)]));
    }
    match parse(file, &Capabilities::SENSOR) {
        Ok(cf) => {
            result = result.wrapping_add(cf.rule_count());
            #[cfg(all(feature = "match", not(feature = "parse-only")))]
            {
                use channel_parser::{Event, EventKind, Scratch, Text};
                let name: &[u16] = black_box(&NAME[..]);
                let image: &[u16] = black_box(&IMAGE[..]);
                let utf8: &str = black_box("\\postex_1234");
                let mut scratch = Scratch::new();
                let ev = Event {
                    pipe_name: Text::Utf16(name),
                    image: Some(Text::Utf16(image)),
                    pid: black_box(4),
                    kind: EventKind::Create,
                    user: None,
                };
                let v = cf.evaluate(&ev, &mut scratch);
                result = result.wrapping_add(v.matched);
                if let Some(best) = v.best {
                    result = result.wrapping_add(best.id());
                    result = result.wrapping_add(best.name().len() as u32);
                }
                let ev8 = Event {
                    pipe_name: Text::Utf8(utf8),
                    image: None,
                    pid: 0,
                    kind: EventKind::Connect,
                    // A user: the User slot's scan and comparisons are in
                    // the proof too.
                    user: Some(Text::Utf8(black_box("S-1-5-18"))),
                };
                cf.for_each_match(&ev8, &mut scratch, |r| {
                    result = result.wrapping_add(r.index());
                    core::ops::ControlFlow::Continue(())
                });
            }
        }
        Err(e) => {
            result = result.wrapping_add(e.offset().unwrap_or(0));
        }
    }
    black_box(result);
    loop {
        core::hint::spin_loop();
    }
}
