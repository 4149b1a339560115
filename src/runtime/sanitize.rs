//! Tells ThreadSanitizer about coroutine stack switches.
//!
//! Sanitizer builds set `--cfg coronet_sanitize="address"` or `="thread"` in RUSTFLAGS and build
//! with `--features sanitize`, which turns on corosensei's `sanitizer` feature (Cargo.toml says
//! why it is a feature). That feature announces every stack
//! switch corosensei makes with AddressSanitizer's fiber API, right around its assembly:
//! `__sanitizer_start_switch_fiber(&fake, bottom, size)` before, and
//! `__sanitizer_finish_switch_fiber(fake, &bottom_old, &size_old)` after, on the new stack.
//! Under ASan that is all that is needed, and this module is empty.
//!
//! ThreadSanitizer has no such functions; its fiber API is `__tsan_create_fiber` /
//! `__tsan_switch_to_fiber`. Under `coronet_sanitize = "thread"` this module defines the two
//! ASan entry points (and `__asan_unpoison_memory_region`, a no-op) on top of TSan's API, so
//! that corosensei's hooks drive TSan's fibers:
//!
//! - each coroutine stack (keyed by its bottom address, per thread) gets a TSan fiber, made
//!   the first time a coroutine on it is resumed and kept for the stack's later coroutines
//!   (a coroutine never changes threads, so reusing a fiber only adds happens-before edges
//!   that the thread's program order has anyway);
//! - the "stack bounds" corosensei keeps for the way back are not bounds here: `bottom` holds
//!   the fiber switched away from and `size` says whether it is a coroutine (RESUMED) or the
//!   one that resumed it (PARENT); `fake` tells `finish` which side it runs on.
//!
//! TSan keeps a shadow call stack per fiber, pushed and popped by every instrumented
//! function's entry and exit. A frame entered on one fiber and left on another unbalances
//! both, and the worker's fiber would run off the bottom of its shadow stack after enough
//! switches. Those frames are known (debug profile, no inlining): `start` itself and
//! corosensei's `SanitizerFiber::start_switch` around it (entered before, left after the
//! switch), and `arch::switch_and_link`, which the resumer enters after its `start` and
//! leaves after the coroutine switched back; a coroutine's first entry also enters
//! `coroutine_func`, which never returns. The `__tsan_func_entry/exit` calls below even them
//! out. They count frames of an unoptimised build: run sanitizer builds in the dev profile.
#![allow(non_snake_case)]

// The frame counts above hold only without optimisation; an optimised TSan build would
// corrupt TSan's shadow stacks (crashes, or reports with the wrong call stacks).
#[cfg(all(
    any(coronet_sanitize = "address", coronet_sanitize = "thread"),
    not(feature = "sanitize")
))]
compile_error!("a coronet_sanitize build needs `--features sanitize` (Cargo.toml says why)");

#[cfg(all(coronet_sanitize = "thread", not(debug_assertions)))]
compile_error!("coronet_sanitize = \"thread\" needs the dev profile (see runtime/sanitize.rs)");

#[cfg(coronet_sanitize = "thread")]
mod tsan {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::ffi::{c_uint, c_void};
    use std::ptr;

    extern "C" {
        fn __tsan_get_current_fiber() -> *mut c_void;
        fn __tsan_create_fiber(flags: c_uint) -> *mut c_void;
        fn __tsan_switch_to_fiber(fiber: *mut c_void, flags: c_uint);
        fn __tsan_set_fiber_name(fiber: *mut c_void, name: *const u8);
        fn __tsan_func_entry(pc: *const c_void);
        fn __tsan_func_exit();
    }

    /// `size` of a "bound" that is a coroutine's fiber (the resumer's way in).
    const RESUMED: usize = 1;
    /// `size` of a "bound" that is the resumer's fiber (the coroutine's way back).
    const PARENT: usize = 2;
    /// `fake` of a resumer: it comes back from `switch_and_link` on its own fiber.
    const FROM_RESUMER: usize = 1;
    /// `fake` of a coroutine that suspended: it comes back inside `Yielder::suspend`.
    const FROM_COROUTINE: usize = 2;

    thread_local! {
        static FIBERS: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
        /// The fiber the last switch on this thread left.
        static LEFT: Cell<*mut c_void> = const { Cell::new(ptr::null_mut()) };
    }

    fn fiber_of_stack(bottom: usize) -> *mut c_void {
        FIBERS.with(|f| {
            *f.borrow_mut().entry(bottom).or_insert_with(|| {
                // SAFETY: calls into the TSan runtime, which a `coronet_sanitize = "thread"`
                // build links (-Zsanitizer=thread); the name is a NUL-terminated literal.
                unsafe {
                    let fiber = __tsan_create_fiber(0);
                    __tsan_set_fiber_name(fiber, c"coroutine".as_ptr().cast());
                    fiber as usize
                }
            })
        }) as *mut c_void
    }

    fn pc() -> *const c_void {
        __sanitizer_start_switch_fiber as *const c_void
    }

    #[no_mangle]
    pub unsafe extern "C" fn __sanitizer_start_switch_fiber(
        fake_stack_save: *mut *mut c_void,
        bottom: *const c_void,
        size: usize,
    ) {
        let (target, from) = match size {
            PARENT => (bottom as *mut c_void, FROM_COROUTINE),
            RESUMED => (bottom as *mut c_void, FROM_RESUMER),
            _ => (fiber_of_stack(bottom as usize), FROM_RESUMER), // first resume: real bounds
        };
        if !fake_stack_save.is_null() {
            // SAFETY: non-null, it is corosensei's pointer to a local of its own that lives
            // across the switch, made for this function to write.
            unsafe { *fake_stack_save = from as *mut c_void };
        }
        // SAFETY: calls into the TSan runtime; `target` is a live fiber (made by
        // `fiber_of_stack` and never destroyed, or the one a `finish` recorded as left).
        unsafe {
            LEFT.set(__tsan_get_current_fiber());
            // this function's and `SanitizerFiber::start_switch`'s frames: entered here...
            __tsan_func_exit();
            __tsan_func_exit();
            __tsan_switch_to_fiber(target, 0);
            // ...and left on the new fiber
            __tsan_func_entry(pc());
            __tsan_func_entry(pc());
        }
    }

    #[no_mangle]
    pub unsafe extern "C" fn __sanitizer_finish_switch_fiber(
        fake_stack_save: *mut c_void,
        bottom_old: *mut *const c_void,
        size_old: *mut usize,
    ) {
        let left = LEFT.get();
        // SAFETY: calls into the TSan runtime (which keeps the shadow stacks); the two out
        // pointers, when non-null, are corosensei's locals made for this function to fill.
        unsafe {
            let kind = match fake_stack_save as usize {
                FROM_RESUMER => {
                    // `switch_and_link` was entered on the coroutine's fiber, left on ours
                    __tsan_func_entry(pc());
                    RESUMED
                }
                FROM_COROUTINE => {
                    // the resumer's `switch_and_link` frame is on our fiber
                    __tsan_func_exit();
                    PARENT
                }
                _ => {
                    // first entry (`coroutine_func`): that frame, and `coroutine_func`, which
                    // never returns
                    __tsan_func_exit();
                    __tsan_func_exit();
                    PARENT
                }
            };
            if !bottom_old.is_null() {
                *bottom_old = left;
                *size_old = kind;
            }
        }
    }

    #[no_mangle]
    pub extern "C" fn __asan_unpoison_memory_region(_addr: *const c_void, _size: usize) {}
}
