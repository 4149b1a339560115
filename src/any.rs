//! Type tests without specialization: which of a few known types a generic parameter is.
//!
//! Stable Rust has no specialization, and `TypeId::of` needs `'static`, which refuses the
//! borrowed types a caller may well pass (`&'a File`, `&'a str`). [`erased_type_id`] compares
//! types up to lifetimes, and [`view`] then treats the value as the type found. Used by
//! `io::copy` to find its kernel paths and by `Dialer::dial` to find a host name it may copy.

use std::any::TypeId;
use std::marker::PhantomData;

/// `TypeId::of::<T>()` with `T`'s lifetimes erased, for any `T` — `TypeId::of` itself
/// demands `T: 'static`, which would refuse `&'a File`.
pub(crate) fn erased_type_id<T: ?Sized>() -> TypeId {
    trait Probe {
        fn id(&self) -> TypeId
        where
            Self: 'static;
    }
    impl<T: ?Sized> Probe for PhantomData<T> {
        fn id(&self) -> TypeId
        where
            Self: 'static,
        {
            TypeId::of::<T>()
        }
    }
    let probe: &dyn Probe = &PhantomData::<T>;
    // SAFETY: only the trait object's lifetime bound changes; layout and vtable are the
    // same. Lifetimes do not exist once compiled, so the vtable's `id` is `TypeId::of` of
    // `T` with its lifetimes erased. Nothing is read through the widened bound: the
    // `PhantomData` holds no data and `id` touches none.
    let probe: &(dyn Probe + 'static) = unsafe { std::mem::transmute(probe) };
    probe.id()
}

/// Views `r` as a `T`.
///
/// # Safety
///
/// `R` must be `T` up to lifetimes (`erased_type_id` equal), and each lifetime of `T` must
/// be outlived by the matching one in `R`, in a position where `T` is covariant.
pub(crate) unsafe fn view<R: ?Sized, T>(r: &R) -> &T {
    // SAFETY: by the caller's promise `R` and `T` are one type with one layout, and the
    // lifetimes only shrink; the reference stays as valid as `r`.
    unsafe { &*(r as *const R).cast::<T>() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TcpStream;
    use std::fs::File;
    use std::io::Read;

    #[test]
    fn erased_type_ids_ignore_lifetimes_only() {
        fn id_of_ref<'a>(_: &'a File) -> TypeId {
            erased_type_id::<&'a File>()
        }
        let f = File::open("/dev/null").unwrap();
        assert_eq!(id_of_ref(&f), TypeId::of::<&'static File>());
        assert_eq!(erased_type_id::<File>(), TypeId::of::<File>());
        assert_ne!(erased_type_id::<File>(), erased_type_id::<&File>());
        assert_ne!(erased_type_id::<&File>(), erased_type_id::<&mut File>());
        assert_ne!(erased_type_id::<&File>(), erased_type_id::<&TcpStream>());
        assert_ne!(erased_type_id::<dyn Read>(), erased_type_id::<File>());
        // what `Dialer::dial` tells apart
        fn id_of_str<'a>(_: &'a str) -> TypeId {
            erased_type_id::<(&'a str, u16)>()
        }
        assert_eq!(id_of_str("x"), TypeId::of::<(&'static str, u16)>());
        assert_ne!(erased_type_id::<&str>(), erased_type_id::<&String>());
        assert_ne!(
            erased_type_id::<(&str, u16)>(),
            erased_type_id::<(&str, u32)>()
        );
    }
}
