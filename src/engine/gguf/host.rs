//! Quantized tensors in host memory, read from the file straight into the block vector candle's
//! CPU kernels use: one `pread` per tensor into the vector's uninitialised capacity, so each byte
//! is copied once (page cache to tensor) and each page of the tensor is faulted in once. candle's
//! own reader zero-fills a buffer, reads into it and copies that into a second vector; copying
//! from the memory map instead measured slower still on a virtual disk (file-page faults).

use anyhow::Result;
use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, BlockQ8_1,
};
use candle_core::quantized::{GgmlDType, GgmlType, QStorage, QTensor};
use std::fs::File;
use std::mem::MaybeUninit;

/// Where a tensor's bytes are and what they hold.
pub(crate) struct Stored {
    pub(crate) offset: u64,
    pub len: usize,
    pub dtype: GgmlDType,
    pub dims: Vec<usize>,
}

/// The CPU tensor `at` describes, read from `file`.
pub(crate) fn read_tensor(file: &File, at: Stored) -> Result<QTensor> {
    match at.dtype {
        GgmlDType::F32 => read::<f32>(file, at),
        GgmlDType::F16 => read::<half::f16>(file, at),
        GgmlDType::BF16 => read::<half::bf16>(file, at),
        GgmlDType::Q4_0 => read::<BlockQ4_0>(file, at),
        GgmlDType::Q4_1 => read::<BlockQ4_1>(file, at),
        GgmlDType::Q5_0 => read::<BlockQ5_0>(file, at),
        GgmlDType::Q5_1 => read::<BlockQ5_1>(file, at),
        GgmlDType::Q8_0 => read::<BlockQ8_0>(file, at),
        GgmlDType::Q8_1 => read::<BlockQ8_1>(file, at),
        GgmlDType::Q2K => read::<BlockQ2K>(file, at),
        GgmlDType::Q3K => read::<BlockQ3K>(file, at),
        GgmlDType::Q4K => read::<BlockQ4K>(file, at),
        GgmlDType::Q5K => read::<BlockQ5K>(file, at),
        GgmlDType::Q6K => read::<BlockQ6K>(file, at),
        GgmlDType::Q8K => read::<BlockQ8K>(file, at),
    }
}

/// The bytes `at` describes, read from `file` as a vector of blocks `T`.
fn read<T: GgmlType + Send + Sync + 'static>(file: &File, at: Stored) -> Result<QTensor> {
    let Stored {
        offset, len, dims, ..
    } = at;
    let size = std::mem::size_of::<T>();
    anyhow::ensure!(
        len.is_multiple_of(size),
        "{len} bytes are not a whole number of {size}-byte blocks"
    );
    let n = len / size;
    let mut blocks: Vec<T> = Vec::with_capacity(n);
    let spare = blocks.spare_capacity_mut();
    #[allow(unsafe_code)]
    // SAFETY: the spare capacity of `n` blocks is `len` bytes of one allocation; viewing it as
    // possibly uninitialised bytes asks nothing of their contents.
    let mut room: &mut [MaybeUninit<u8>] =
        unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast(), len) };
    let mut position = offset;
    while !room.is_empty() {
        let (done, rest) = rustix::io::pread(file, room, position)?;
        anyhow::ensure!(!done.is_empty(), "the file ends {} bytes early", rest.len());
        position += done.len() as u64;
        room = rest;
    }
    #[allow(unsafe_code)]
    // SAFETY: all `len` bytes were written by `pread` above. GGML blocks are plain data (f16/f32
    // scales and u8 quants, `repr(C)`), so any bytes are a valid block, and the file holds exactly
    // the blocks in that layout (candle's own GGUF reader reinterprets them the same way).
    unsafe {
        blocks.set_len(n)
    };
    Ok(QTensor::new(QStorage::Cpu(Box::new(blocks)), dims)?)
}
