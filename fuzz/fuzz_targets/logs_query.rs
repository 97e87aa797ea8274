#![no_main]
//! See `berth_fuzz_targets::logs_query`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::logs_query(data));
