//! A GGUF file read through a memory map. The header is parsed from the mapped bytes; tensors
//! are visited in the order they lie in the file, so the disk reads sequentially, and each is
//! copied once: on a GPU from its mapped pages to the device, on the CPU by one `pread` into the
//! tensor's own storage (`host.rs`); no zeroed buffer, no second copy. While one tensor is
//! copied the kernel already reads the next ones (`MADV_WILLNEED`), and the pages of tensors
//! already built are handed back (`MADV_DONTNEED`), so mapped pages never pile up in the
//! process's resident memory: the peak is the tensors themselves plus the read-ahead window.

use anyhow::{bail, Context, Result};
use candle_core::quantized::{ggml_file, gguf_file, QTensor};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// How far ahead of the tensor being built the kernel is asked to read.
const READ_AHEAD: usize = 64 << 20;
/// Pages are handed back in whole pages of this size (a larger real page only means a page at a
/// boundary is read twice; the mapping is read-only, so nothing can be lost).
const PAGE: usize = 4096;

/// A mapped GGUF and its parsed header.
pub struct MappedGguf {
    file: std::fs::File,
    map: memmap2::Mmap,
    content: gguf_file::Content,
    path: PathBuf,
}

/// Where one tensor's bytes lie in the map.
struct Span {
    name: String,
    start: usize,
    len: usize,
}

impl MappedGguf {
    /// Map `path` and parse its header.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        #[allow(unsafe_code)]
        // SAFETY: model files are read-only inputs that nothing modifies while merchgen maps
        // them (the same contract as candle's memory-mapped safetensors).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        let content = gguf_file::Content::read(&mut std::io::Cursor::new(&map[..]))
            .with_context(|| format!("reading the GGUF header of {}", path.display()))?;
        Ok(MappedGguf {
            file,
            map,
            content,
            path: path.to_owned(),
        })
    }

    pub fn content(&self) -> &gguf_file::Content {
        &self.content
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every tensor's byte range, in file order, checked against the file's size.
    fn spans(&self) -> Result<Vec<Span>> {
        let base = self.content.tensor_data_offset as usize;
        let mut spans = Vec::with_capacity(self.content.tensor_infos.len());
        for (name, info) in &self.content.tensor_infos {
            let elems = info.shape.elem_count();
            let block = info.ggml_dtype.block_size();
            if elems % block != 0 {
                bail!(
                    "{}: tensor {name} has {elems} elements, not a multiple of its block size {block}",
                    self.path.display()
                );
            }
            let len = elems / block * info.ggml_dtype.type_size();
            let start = base
                .checked_add(info.offset as usize)
                .filter(|s| s.checked_add(len).is_some_and(|end| end <= self.map.len()))
                .with_context(|| {
                    format!(
                        "{}: tensor {name} ({len} bytes at data offset {}) runs past the end of the file ({} bytes): truncated?",
                        self.path.display(),
                        info.offset,
                        self.map.len()
                    )
                })?;
            spans.push(Span {
                name: name.clone(),
                start,
                len,
            });
        }
        spans.sort_by_key(|s| s.start);
        Ok(spans)
    }

    /// Build every tensor on `device`, in file order, and hand each to `each` with its name.
    pub fn for_each_tensor(
        &self,
        device: &Device,
        mut each: impl FnMut(&str, QTensor) -> Result<()>,
    ) -> Result<()> {
        let spans = self.spans()?;
        self.advise(memmap2::Advice::Sequential, 0, self.map.len());
        let mut read_ahead_to = 0usize;
        let mut released_to = 0usize;
        for (i, span) in spans.iter().enumerate() {
            // Keep the kernel reading up to READ_AHEAD past the end of this tensor.
            let want = (span.start + span.len + READ_AHEAD).min(self.map.len());
            if want > read_ahead_to {
                let from = read_ahead_to.max(span.start);
                self.advise(memmap2::Advice::WillNeed, from, want - from);
                read_ahead_to = want;
            }
            let info = &self.content.tensor_infos[&span.name];
            let tensor = self
                .build(span, info, device)
                .with_context(|| format!("{}: tensor {}", self.path.display(), span.name))?;
            each(&span.name, tensor)?;
            // Hand back the whole pages before the next tensor's first byte.
            let next = spans.get(i + 1).map_or(self.map.len(), |s| s.start);
            let until = next / PAGE * PAGE;
            if until > released_to {
                self.release(released_to, until - released_to);
                released_to = until;
            }
        }
        Ok(())
    }

    /// One tensor from its mapped bytes; bytes that are not aligned for the block type (a GGUF
    /// with an odd `general.alignment`) are copied into an aligned buffer first.
    fn build(&self, span: &Span, info: &gguf_file::TensorInfo, device: &Device) -> Result<QTensor> {
        let dims = info.shape.dims().to_vec();
        if device.is_cpu() {
            let at = super::host::Stored {
                offset: span.start as u64,
                len: span.len,
                dtype: info.ggml_dtype,
                dims,
            };
            return super::host::read_tensor(&self.file, at);
        }
        let bytes = &self.map[span.start..span.start + span.len];
        // Every GGML block type is at most 8-byte aligned (f32/f16 scales and u8 quants).
        if (bytes.as_ptr() as usize).is_multiple_of(8) {
            return Ok(ggml_file::qtensor_from_ggml(
                info.ggml_dtype,
                bytes,
                dims,
                device,
            )?);
        }
        let mut aligned = vec![0u64; span.len.div_ceil(8)];
        let aligned_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut aligned);
        aligned_bytes[..span.len].copy_from_slice(bytes);
        Ok(ggml_file::qtensor_from_ggml(
            info.ggml_dtype,
            &aligned_bytes[..span.len],
            dims,
            device,
        )?)
    }

    fn advise(&self, advice: memmap2::Advice, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        // Advice only changes how fast pages arrive; a refusal is not an error.
        if let Err(e) = self.map.advise_range(advice, offset, len) {
            tracing::debug!(path = %self.path.display(), error = %e, "madvise refused");
        }
    }

    /// Drop `[offset, offset + len)` from this process's resident pages (they stay in the page
    /// cache and fault in again from the file if touched).
    fn release(&self, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: the map is a read-only shared file mapping and no slice of the range is alive
        // (each tensor's bytes were copied out before this call). MADV_DONTNEED on such a mapping
        // only unmaps the pages from this process; touching them again reads the file again.
        let result = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
        };
        if let Err(e) = result {
            tracing::debug!(path = %self.path.display(), error = %e, "madvise(DONTNEED) refused");
        }
    }
}
