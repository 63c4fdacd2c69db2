//! Model files: where they are (`hub`: the Hugging Face cache, folders, manifests; `diffusers`:
//! diffusers folders; both return a `resolved` model), what each preset is made of (`presets`
//! for FLUX, `net_presets` for the finishing models), what a model folder declares
//! (`manifest`), whether a cached file is the published one (`integrity`), the jobs' LoRA files
//! on the volume (`lora_cache`), safetensors files and shards (`safetensors`), and PyTorch
//! `.pth` writing (`torch_pth`). Nothing here decides how weights are used on a device.

pub(crate) mod diffusers;
pub mod hub;
pub(crate) mod integrity;
pub mod lora_cache;
pub mod manifest;
pub(crate) mod net_presets;
pub(crate) mod presets;
pub(crate) mod resolved;
pub(crate) mod safetensors;
pub(crate) mod torch_pth;
