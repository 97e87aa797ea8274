#![no_main]
//! See `berth_fuzz_targets::seccomp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_fuzz_targets::seccomp(data));
