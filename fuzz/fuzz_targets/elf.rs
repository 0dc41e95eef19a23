//! libFuzzer entry for the `elf` target; see `kiln_fuzz_harness::elf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::elf(data));
