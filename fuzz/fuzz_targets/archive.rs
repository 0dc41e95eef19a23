//! libFuzzer entry for the `archive` target; see `kiln_fuzz_harness::archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::archive(data));
