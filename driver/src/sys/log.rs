//! Logging: `DbgPrintEx` lines with the driver's prefix.

use super::*;

/// `DbgPrintEx` levels used with `DPFLTR_IHVDRIVER_ID`.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Trace = 2,
    Info = 3,
}

struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl core::fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // Keep one byte for the NUL; drop the rest; never emit '%'.
            if self.len + 1 >= self.buf.len() {
                break;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = if b == b'%' || b == 0 { b'?' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Prints one line to the kernel debugger (`DPFLTR_IHVDRIVER_ID`, `level`).
/// Callable at IRQL <= DIRQL; formats into a 256-byte stack buffer. Not
/// inlined, so that buffer is on the stack only while a line is printed.
#[inline(never)]
pub fn log(level: Level, args: core::fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = core::fmt::write(&mut line, format_args!("PipeSensor: {args}\n"));
    // SAFETY: the format is a NUL-terminated literal with one %s, and its
    // argument is a NUL-terminated buffer without '%' (LineBuf keeps the last
    // byte 0 and replaces '%').
    unsafe {
        DbgPrintEx(
            DPFLTR_IHVDRIVER_ID,
            level as u32,
            c"%s".as_ptr().cast(),
            line.buf.as_ptr(),
        );
    }
}
