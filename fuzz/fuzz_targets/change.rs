#![no_main]
//! See `berth_fuzz_targets::change`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::change(data));
