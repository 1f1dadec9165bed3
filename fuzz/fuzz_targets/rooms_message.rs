//! rooms' frame parser, decimal parser and JSON echo helpers: no panic, minified JSON stays JSON.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::rooms_message(data));
