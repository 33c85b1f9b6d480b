//! Files: read a file, list a directory.

use super::*;

pub(super) struct KHandle(pub(super) HANDLE);

impl Drop for KHandle {
    fn drop(&mut self) {
        // SAFETY: closing a kernel handle we opened, once.
        unsafe { ZwClose(self.0) };
    }
}

fn open(path: &[u16], access: u32, options: u32) -> Result<KHandle, NTSTATUS> {
    let w = Wide::<600>::from_units(path);
    let name = w.unicode();
    let oa = object_attributes(&name);
    let mut iosb = IO_STATUS_BLOCK {
        Anonymous: unsafe_zeroed_status(),
        Information: 0,
    };
    let mut h: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; every pointer is to a live local.
    let s = unsafe {
        ZwCreateFile(
            &mut h,
            access | SYNCHRONIZE,
            &oa,
            &mut iosb,
            ptr::null(),
            FILE_ATTRIBUTE_NORMAL,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            FILE_OPEN,
            options | FILE_SYNCHRONOUS_IO_NONALERT,
            ptr::null(),
            0,
        )
    };
    if nt_success(s) {
        Ok(KHandle(h))
    } else {
        Err(s)
    }
}

fn unsafe_zeroed_status() -> windows_sys::Win32::System::IO::IO_STATUS_BLOCK_0 {
    windows_sys::Win32::System::IO::IO_STATUS_BLOCK_0 { Status: 0 }
}

/// Reads a whole file into nonpaged pool. Fails with STATUS_FILE_TOO_LARGE
/// above `max_len`.
pub fn read_file(path: &[u16], max_len: usize) -> Result<PoolBuf, NTSTATUS> {
    let h = open(path, GENERIC_READ, FILE_NON_DIRECTORY_FILE)?;
    let mut info = FILE_STANDARD_INFORMATION::default();
    let mut iosb = IO_STATUS_BLOCK {
        Anonymous: unsafe_zeroed_status(),
        Information: 0,
    };
    // SAFETY: PASSIVE_LEVEL; info is a live local of the stated size.
    let s = unsafe {
        ZwQueryInformationFile(
            h.0,
            &mut iosb,
            (&mut info as *mut FILE_STANDARD_INFORMATION).cast(),
            core::mem::size_of::<FILE_STANDARD_INFORMATION>() as u32,
            FILE_STANDARD_INFORMATION_CLASS,
        )
    };
    if !nt_success(s) {
        return Err(s);
    }
    let len = usize::try_from(info.EndOfFile).map_err(|_| STATUS_FILE_TOO_LARGE)?;
    if len > max_len {
        return Err(STATUS_FILE_TOO_LARGE);
    }
    // A zero-length file still gets a (1-byte, unused) buffer so the parser
    // sees an empty slice and reports it.
    let mut buf = PoolBuf::zeroed(len.max(1)).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    let mut done = 0usize;
    while done < len {
        let dst = buf
            .as_mut_slice()
            .get_mut(done..len)
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let offset = done as i64;
        let mut iosb = IO_STATUS_BLOCK {
            Anonymous: unsafe_zeroed_status(),
            Information: 0,
        };
        // SAFETY: PASSIVE_LEVEL; dst is a live pool buffer of dst.len() bytes.
        let s = unsafe {
            ZwReadFile(
                h.0,
                null_mut(),
                ptr::null(),
                ptr::null(),
                &mut iosb,
                dst.as_mut_ptr().cast(),
                dst.len() as u32,
                &offset,
                ptr::null(),
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        if iosb.Information == 0 {
            break;
        }
        done += iosb.Information;
    }
    if done != len {
        return Err(STATUS_UNSUCCESSFUL);
    }
    if len == 0 {
        return PoolBuf::zeroed(1)
            .ok_or(STATUS_INSUFFICIENT_RESOURCES)
            .map(|mut b| {
                b.len = 0;
                b
            });
    }
    Ok(buf)
}

/// Calls `f` with the name of every entry of directory `path`. Not
/// inlined: its name buffer stays off the caller's stack afterwards.
#[inline(never)]
pub fn list_dir(path: &[u16], mut f: impl FnMut(&[u16])) -> Result<(), NTSTATUS> {
    let h = open(path, FILE_LIST_DIRECTORY, FILE_DIRECTORY_FILE)?;
    let mut buf = PoolBuf::zeroed(8192).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    let mut restart = 1u8;
    loop {
        let mut iosb = IO_STATUS_BLOCK {
            Anonymous: unsafe_zeroed_status(),
            Information: 0,
        };
        let b = buf.as_mut_slice();
        // SAFETY: PASSIVE_LEVEL; b is a live pool buffer of b.len() bytes (8-aligned).
        let s = unsafe {
            ZwQueryDirectoryFile(
                h.0,
                null_mut(),
                ptr::null(),
                ptr::null(),
                &mut iosb,
                b.as_mut_ptr().cast(),
                b.len() as u32,
                FILE_NAMES_INFORMATION_CLASS,
                0,
                ptr::null(),
                restart,
            )
        };
        restart = 0;
        if s == STATUS_NO_MORE_FILES {
            return Ok(());
        }
        if !nt_success(s) {
            return Err(s);
        }
        // Walk FILE_NAMES_INFORMATION records by reading fields from bytes.
        let data = buf.as_slice();
        let mut at = 0usize;
        loop {
            let rd = |o: usize| {
                data.get(at + o..at + o + 4)
                    .and_then(|x| x.try_into().ok())
                    .map(u32::from_le_bytes)
            };
            let (Some(next), Some(name_len)) = (rd(0), rd(8)) else {
                break;
            };
            let name = data
                .get(at + 12..at + 12 + name_len as usize)
                .unwrap_or(&[]);
            let mut units = [0u16; 256];
            let mut n = 0;
            for (u, c) in units.iter_mut().zip(name.chunks_exact(2)) {
                *u = u16::from_le_bytes([c[0], c[1]]);
                n += 1;
            }
            f(units.get(..n).unwrap_or(&[]));
            if next == 0 {
                break;
            }
            at += next as usize;
        }
    }
}
