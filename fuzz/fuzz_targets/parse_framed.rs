#![no_main]
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|data: &[u8]| -> Corpus {
    if pipe_sensor_fuzz::parse_framed(data) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
