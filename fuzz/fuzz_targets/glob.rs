#![no_main]
//! See `berth_fuzz_targets::glob`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::glob(data));
