//! GGUF weights without copies on the way: `map` reads a memory-mapped GGUF tensor by tensor in
//! file order (each tensor built straight from the mapped bytes, the next ones read ahead, the
//! consumed pages handed back); `qvars` holds the quantized tensors by name for the models that
//! keep them quantized (merchgen's quantized FLUX transformer and T5 encoder).

pub(crate) mod host;
pub(crate) mod map;
pub(crate) mod qvars;

pub use map::MappedGguf;
pub use qvars::QVars;
