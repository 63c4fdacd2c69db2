//! Fuzz event detection and job parsing: any bytes must give jobs or a clean `JobError`, never a
//! panic, and every error must name a field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use merchgen::job::{parse, validate, GenerationDefaults, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let defaults = GenerationDefaults::default();
    match parse::parse_json(data).and_then(parse::detect) {
        Ok((_, deliveries)) => {
            for d in deliveries {
                let result = parse::job_from_value(d.body)
                    .and_then(|spec| validate::validate(spec, "fuzz", &limits, &defaults));
                if let Err(e) = result {
                    assert!(e.field.is_some() || !e.message.is_empty());
                }
            }
        }
        Err(e) => assert!(e.field.is_some()),
    }
});
