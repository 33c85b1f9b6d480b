//! Object manager: symbolic links.

use super::*;

/// The target of the symbolic link `name` (e.g. `\??\C:`) into `out`.
/// PASSIVE_LEVEL.
///
/// # Errors
/// `ZwOpenSymbolicLinkObject`'s status (STATUS_OBJECT_NAME_NOT_FOUND when
/// there is no such link) or `ZwQuerySymbolicLinkObject`'s
/// (STATUS_BUFFER_TOO_SMALL when the target does not fit `out`).
pub fn query_symbolic_link<'o>(name: &str, out: &'o mut [u16]) -> Result<&'o [u16], NTSTATUS> {
    let w = Wide::<64>::new(name);
    let un = w.unicode();
    let oa = object_attributes(&un);
    let mut h: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; every pointer is to a live local (layouts of
    // OBJECT_ATTRIBUTES and UNICODE_STRING checked in layout.rs).
    let s = unsafe { ZwOpenSymbolicLinkObject(&mut h, SYMBOLIC_LINK_QUERY, &oa) };
    if !nt_success(s) {
        return Err(s);
    }
    let h = KHandle(h);
    // MaximumLength in bytes, even, at most what `out` holds.
    let max_bytes = out.len().saturating_mul(2).min(0xFFFE) as u16;
    let mut target = UNICODE_STRING {
        Length: 0,
        MaximumLength: max_bytes,
        Buffer: out.as_mut_ptr(),
    };
    let mut returned = 0u32;
    // SAFETY: PASSIVE_LEVEL; h is our open link handle; target describes
    // `out` (MaximumLength <= its size in bytes), alive for the call.
    let s = unsafe { ZwQuerySymbolicLinkObject(h.0, &mut target, &mut returned) };
    drop(h);
    if !nt_success(s) {
        return Err(s);
    }
    let units = usize::from(target.Length.min(max_bytes)) / 2;
    out.get(..units).ok_or(STATUS_BUFFER_TOO_SMALL)
}
