//! pester's raw JSON and Socket.IO argument decoders: no panic on any client text.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::pester_json(data));
