//! libFuzzer entry for the `patch` target; see `kiln_fuzz_harness::patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::patch(data));
