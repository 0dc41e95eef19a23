//! libFuzzer entry for the `attrs` target; see `kiln_fuzz_harness::attrs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::attrs(data));
