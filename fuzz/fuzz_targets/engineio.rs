//! The Engine.IO packet and polling payload decoders: no panic on any frame or body.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::engineio(data));
