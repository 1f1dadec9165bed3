//! signal's Join/Leave decoder and connection-path parser: no panic, over-long keys skipped.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::signal_message(data));
