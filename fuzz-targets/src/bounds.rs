//! Time and memory bounds for the replay harness: a global allocator that
//! counts, per thread, the bytes a call has live at its peak (libFuzzer has
//! `-rss_limit_mb`/`-malloc_limit_mb`; stable tests have this).
//!
//! A test binary opts in with
//! `#[global_allocator] static A: berth_fuzz_targets::bounds::Counting = Counting;`
//! and wraps each call in [`measure`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// Bytes allocated by this thread and not freed (frees of another
    /// thread's memory can take it below zero).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`measure`] began.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// The system allocator, counting.
pub struct Counting;

// SAFETY: every call is passed on to `System` unchanged; the counting only
// touches const-initialised thread-locals without destructors.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// What one call cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub time: Duration,
    /// The most bytes the call had allocated at once (0 unless [`Counting`]
    /// is the global allocator).
    pub peak_bytes: usize,
}

/// Runs `f` on this thread and measures it.
pub fn measure(f: impl FnOnce()) -> Cost {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let start = Instant::now();
    f();
    let time = start.elapsed();
    let peak = PEAK.with(Cell::get);
    Cost { time, peak_bytes: (peak - base).max(0) as usize }
}
