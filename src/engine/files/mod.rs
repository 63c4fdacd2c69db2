//! Model files: where they are (`hub`: the Hugging Face cache, folders, manifests; `diffusers`:
//! diffusers folders), what each preset is made of (`presets` for FLUX, `net_presets` for the
//! finishing models), what a model folder declares (`manifest`), the jobs' LoRA files on the
//! volume (`lora_cache`), and PyTorch `.pth` writing (`torch_pth`). Nothing here loads weights
//! onto a device.

pub mod diffusers;
pub mod hub;
pub mod integrity;
pub mod lora_cache;
pub mod manifest;
pub mod net_presets;
pub mod presets;
pub mod torch_pth;
