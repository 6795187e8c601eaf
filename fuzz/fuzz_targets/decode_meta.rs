#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| textstore_fuzz::format::meta(data));
