#![no_main]
//! See `berth_fuzz_targets::security_opts`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::security_opts(data));
