//! JWT parse and verify (raw and re-signed tokens): no panic, accepted tokens carry both claims.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::jwt(data));
