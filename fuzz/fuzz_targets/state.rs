//! libFuzzer entry for the `state` target; see `kiln_fuzz_harness::state`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::state(data));
