//! Arbitrary op sequences against each app state machine: no panic, effects name live sockets, frames well formed.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::app_ops(data));
