//! libFuzzer entry for the `plan` target; see `kiln_fuzz_harness::plan`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::plan(data));
