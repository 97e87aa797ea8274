#![no_main]
//! See `berth_fuzz_targets::log_opts`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::log_opts(data));
