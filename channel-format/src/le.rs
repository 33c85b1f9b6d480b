//! Little-endian fixed-width values and typed field descriptors.
//!
//! A [`Field<T>`] says where a value of type `T` sits inside a fixed record;
//! the record tables (`record.rs`) define one per field. Reading or writing
//! through a descriptor cannot use the wrong width, and both return `None`
//! instead of panicking when the slice is too short.

use core::marker::PhantomData;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
    impl<const N: usize> Sealed for [u8; N] {}
}

/// A value stored little-endian in a fixed number of bytes: `u8`, `u16`,
/// `u32`, `u64`, or a byte array (reserved bytes, keys, magic).
pub trait Le: Copy + sealed::Sealed {
    /// How many bytes it occupies.
    const SIZE: usize;
    /// Reads it from the first [`Le::SIZE`] bytes of `b`; `None` when `b` is
    /// shorter. Never panics.
    fn read_le(b: &[u8]) -> Option<Self>;
    /// Writes it into the first [`Le::SIZE`] bytes of `b`; `None` (nothing
    /// written) when `b` is shorter. Never panics.
    fn write_le(self, b: &mut [u8]) -> Option<()>;
}

macro_rules! le_int {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[inline(always)]
            fn read_le(b: &[u8]) -> Option<Self> {
                b.first_chunk::<{ core::mem::size_of::<$t>() }>()
                    .map(|a| <$t>::from_le_bytes(*a))
            }
            #[inline(always)]
            fn write_le(self, b: &mut [u8]) -> Option<()> {
                let a = b.first_chunk_mut::<{ core::mem::size_of::<$t>() }>()?;
                *a = self.to_le_bytes();
                Some(())
            }
        }
    )*};
}
le_int!(u8, u16, u32, u64);

impl<const N: usize> Le for [u8; N] {
    const SIZE: usize = N;
    #[inline(always)]
    fn read_le(b: &[u8]) -> Option<Self> {
        b.first_chunk::<N>().copied()
    }
    #[inline(always)]
    fn write_le(self, b: &mut [u8]) -> Option<()> {
        *b.first_chunk_mut::<N>()? = self;
        Some(())
    }
}

/// Where a field of type `T` sits in its record: a byte offset from the
/// record's start, with the width given by `T`. The record tables define
/// one constant per field (`rule::ATOMS_START`, `header::TOTAL_LEN`, ...);
/// nothing outside this crate spells an offset.
pub struct Field<T> {
    offset: usize,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Field<T> {}
impl<T> PartialEq for Field<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
    }
}
impl<T> Eq for Field<T> {}
impl<T> core::fmt::Debug for Field<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Field@{}", self.offset)
    }
}

impl<T: Le> Field<T> {
    /// A field at `offset`. Only the record tables call this.
    pub(crate) const fn new(offset: usize) -> Self {
        Field {
            offset,
            ty: PhantomData,
        }
    }
    /// Its byte offset in the record.
    #[inline(always)]
    pub const fn offset(self) -> usize {
        self.offset
    }
    /// Its byte offset as a `u32` (records are far smaller than 4 GiB).
    #[inline(always)]
    pub const fn offset_u32(self) -> u32 {
        self.offset as u32
    }
    /// Its width in bytes.
    #[inline(always)]
    pub const fn len(self) -> usize {
        T::SIZE
    }
    /// Whether it is zero bytes wide (never, for the record tables).
    #[inline(always)]
    pub const fn is_empty(self) -> bool {
        T::SIZE == 0
    }
    /// The offset just past it.
    #[inline(always)]
    pub const fn end(self) -> usize {
        self.offset.wrapping_add(T::SIZE)
    }
    /// Reads the field from `record` (the record's bytes, from its start);
    /// `None` when `record` ends before the field does. Never panics.
    #[inline(always)]
    pub fn get(self, record: &[u8]) -> Option<T> {
        T::read_le(record.get(self.offset..)?)
    }
    /// Writes the field into `record`; `None` (nothing written) when
    /// `record` ends before the field does. Never panics.
    #[inline(always)]
    pub fn set(self, record: &mut [u8], value: T) -> Option<()> {
        value.write_le(record.get_mut(self.offset..)?)
    }
    /// Reads, changes and writes back the field (`None` as for [`Field::get`]).
    pub fn update(self, record: &mut [u8], f: impl FnOnce(T) -> T) -> Option<()> {
        let v = self.get(record)?;
        self.set(record, f(v))
    }
}
