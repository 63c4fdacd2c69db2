//! `merchgen net`: run one network's raw forward pass on tensors from a file (parity runs with
//! independent reference implementations; not part of any job path).

use crate::cli::NetFamily;
use std::path::Path;

/// Run the raw network and write its output; exit code 0 or 1.
pub fn run(family: NetFamily, weights: &Path, input: &Path, output: &Path) -> i32 {
    let result = match family {
        NetFamily::Matting => crate::engine::matting::dump_raw(weights, input, output),
        NetFamily::Upscale => crate::engine::upscale::dump_raw(weights, input, output),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("merchgen net: {e:#}");
            1
        }
    }
}
