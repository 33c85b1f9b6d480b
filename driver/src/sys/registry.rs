//! Registry access (the service key).

use super::*;

/// An open registry key (kernel handle).
pub struct RegKey(HANDLE);

impl RegKey {
    /// Opens `path` (a full NT registry path, e.g. the service key) for read+write.
    pub fn open(path: &[u16]) -> Result<RegKey, NTSTATUS> {
        let w = Wide::<512>::from_units(path);
        let name = w.unicode();
        let oa = object_attributes(&name);
        let mut h: HANDLE = null_mut();
        // SAFETY: PASSIVE_LEVEL; all pointers are to live locals.
        let s = unsafe { ZwOpenKey(&mut h, KEY_READ | KEY_WRITE, &oa) };
        if nt_success(s) {
            Ok(RegKey(h))
        } else {
            Err(s)
        }
    }

    fn query(&self, name: &str, out: &mut [u8]) -> Result<(u32, usize), NTSTATUS> {
        let w = Wide::<64>::new(name);
        let us = w.unicode();
        // KEY_VALUE_PARTIAL_INFORMATION header (12 bytes) + up to 1 KiB of data.
        let mut info = [0u64; 130];
        let mut got = 0u32;
        // SAFETY: PASSIVE_LEVEL; info is a live, 8-aligned local of the stated length.
        let s = unsafe {
            ZwQueryValueKey(
                self.0,
                &us,
                KEY_VALUE_PARTIAL_INFORMATION_CLASS,
                info.as_mut_ptr().cast(),
                1040,
                &mut got,
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        let bytes: &[u8] = bytemuck_u64(&info);
        let ty = u32::from_le_bytes(
            bytes
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        );
        let len = u32::from_le_bytes(
            bytes
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        ) as usize;
        let data = bytes.get(12..12 + len).ok_or(STATUS_BUFFER_OVERFLOW)?;
        let n = data.len().min(out.len());
        if let (Some(d), Some(s)) = (out.get_mut(..n), data.get(..n)) {
            d.copy_from_slice(s);
        }
        Ok((ty, data.len()))
    }

    /// A REG_DWORD value.
    pub fn dword(&self, name: &str) -> Option<u32> {
        let mut b = [0u8; 4];
        match self.query(name, &mut b) {
            Ok((REG_DWORD, 4)) => Some(u32::from_le_bytes(b)),
            _ => None,
        }
    }

    /// A REG_BINARY value copied into `out`; returns its full length.
    pub fn binary(&self, name: &str, out: &mut [u8]) -> Option<usize> {
        match self.query(name, out) {
            Ok((REG_BINARY, n)) => Some(n),
            _ => None,
        }
    }

    /// A REG_SZ / REG_EXPAND_SZ value as UTF-16 (without the NUL) into `out`.
    pub fn string<'o>(&self, name: &str, out: &'o mut [u16]) -> Option<&'o [u16]> {
        let mut b = [0u8; 1024];
        let (ty, n) = self.query(name, &mut b).ok()?;
        if ty != REG_SZ && ty != REG_EXPAND_SZ {
            return None;
        }
        let units = n.min(b.len()) / 2;
        let mut k = 0usize;
        for (i, c) in b.chunks_exact(2).take(units).enumerate() {
            let u = u16::from_le_bytes([c[0], c[1]]);
            if u == 0 {
                break;
            }
            *out.get_mut(i)? = u;
            k = i + 1;
        }
        out.get(..k)
    }

    fn set(&self, name: &str, ty: u32, data: &[u8]) -> Result<(), NTSTATUS> {
        let w = Wide::<64>::new(name);
        let us = w.unicode();
        // SAFETY: PASSIVE_LEVEL; data and us are live for the call.
        let s =
            unsafe { ZwSetValueKey(self.0, &us, 0, ty, data.as_ptr().cast(), data.len() as u32) };
        if nt_success(s) {
            // SAFETY: PASSIVE_LEVEL; flushing our own open key.
            unsafe { ZwFlushKey(self.0) };
            Ok(())
        } else {
            Err(s)
        }
    }
    /// Writes (and flushes) a REG_BINARY value.
    pub fn set_binary(&self, name: &str, data: &[u8]) -> Result<(), NTSTATUS> {
        self.set(name, REG_BINARY, data)
    }
    /// Writes (and flushes) a REG_DWORD value.
    pub fn set_dword(&self, name: &str, v: u32) -> Result<(), NTSTATUS> {
        self.set(name, REG_DWORD, &v.to_le_bytes())
    }
}

impl Drop for RegKey {
    fn drop(&mut self) {
        // SAFETY: closing the kernel handle we opened, once.
        unsafe { ZwClose(self.0) };
    }
}

fn bytemuck_u64(v: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and u8 has alignment 1; same memory, same lifetime.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), core::mem::size_of_val(v)) }
}

pub(super) fn object_attributes(name: &UNICODE_STRING) -> OBJECT_ATTRIBUTES {
    OBJECT_ATTRIBUTES {
        Length: core::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: null_mut(),
        ObjectName: name,
        Attributes: OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: null_mut(),
        SecurityQualityOfService: null_mut(),
    }
}
