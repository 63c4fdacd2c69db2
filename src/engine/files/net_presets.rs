//! Presets of the single-file models that finish a design: matting (background removal) and
//! super-resolution upscaling. Each names its hub repository, file and licence; files are found
//! in (or fetched into) the same Hugging Face cache as FLUX's. A setting may also name a local
//! file (`.pth` or `.safetensors`) instead of a preset. Never loads weights.

use crate::engine::files::hub::{self, HubSettings, ModelError};
use crate::engine::files::presets::HubFile;
use std::path::{Path, PathBuf};

/// What a finishing model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetRole {
    Matting,
    Upscale,
}

impl NetRole {}

/// One single-file model on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetPreset {
    pub name: &'static str,
    pub(crate) role: NetRole,
    pub file: HubFile,
    /// SPDX identifier or the licence's own name.
    pub(crate) licence: &'static str,
    pub(crate) description: &'static str,
}

const fn net(
    name: &'static str,
    role: NetRole,
    repo: &'static str,
    revision: &'static str,
    path: &'static str,
    licence: &'static str,
    description: &'static str,
) -> NetPreset {
    NetPreset {
        name,
        role,
        file: HubFile {
            repo,
            revision,
            path,
        },
        licence,
        description,
    }
}

/// Repositories whose commits merchgen cannot name yet follow their `main` branch; `models verify`
/// still checks each cached file against the content hash the hub stored it under.
const UNPINNED: &str = "main";

/// Default matting model.
pub(crate) const DEFAULT_MATTING: &str = "isnet-general-use";
/// Default x4 upscaler.
pub(crate) const DEFAULT_UPSCALE_X4: &str = "realesrgan-x4plus";
/// Default x2 upscaler.
pub(crate) const DEFAULT_UPSCALE_X2: &str = "realesrgan-x2plus";

/// Every finishing-model preset.
pub(crate) const ALL: &[NetPreset] = &[
    net(
        "isnet-general-use",
        NetRole::Matting,
        "SkalskiP/isnet-general-use",
        UNPINNED,
        "isnet-general-use.pth",
        "Apache-2.0",
        "IS-Net (DIS) general-use background remover, 1024 px (176 MB)",
    ),
    net(
        "u2net",
        NetRole::Matting,
        "netradrishti/u2net-saliency",
        "7f1d3b18bcf55a010ec4526087978d89bccd3097",
        "models/u2net.pth",
        "Apache-2.0",
        "U²-Net salient-object model, 320 px (176 MB)",
    ),
    net(
        "u2netp",
        NetRole::Matting,
        "netradrishti/u2net-saliency",
        "c723f1a701ee5d3240a28bb5a1d57b9e713698c5",
        "models/u2netp.pth",
        "Apache-2.0",
        "U²-NetP, the small U²-Net, 320 px (4.7 MB)",
    ),
    net(
        "rmbg-1.4",
        NetRole::Matting,
        "briaai/RMBG-1.4",
        UNPINNED,
        "model.safetensors",
        "bria-rmbg-1.4 (non-commercial; BRIA sells commercial licences)",
        "BRIA RMBG-1.4 (IS-Net architecture), 1024 px (176 MB); licensed users only",
    ),
    net(
        "realesrgan-x4plus",
        NetRole::Upscale,
        "2kpr/Real-ESRGAN",
        UNPINNED,
        "RealESRGAN_x4plus.pth",
        "BSD-3-Clause",
        "Real-ESRGAN x4plus, RRDBNet 23 blocks (67 MB)",
    ),
    net(
        "realesrgan-x2plus",
        NetRole::Upscale,
        "2kpr/Real-ESRGAN",
        UNPINNED,
        "RealESRGAN_x2plus.pth",
        "BSD-3-Clause",
        "Real-ESRGAN x2plus, RRDBNet 23 blocks (67 MB)",
    ),
    net(
        "realesr-general-x4v3",
        NetRole::Upscale,
        "jhj0517/realesr-general-x4v3",
        UNPINNED,
        "realesr-general-x4v3.pth",
        "BSD-3-Clause",
        "Real-ESRGAN general x4v3, compact SRVGG net, fast (4.9 MB)",
    ),
];

/// The preset of that name.
pub(crate) fn find(name: &str) -> Option<&'static NetPreset> {
    ALL.iter().find(|p| p.name == name)
}

/// Resolve a setting (a preset name or a local weights file) to a file on disk. With
/// `download`, a preset missing from the cache is fetched unless offline; otherwise the error
/// names the file and the `merchgen models fetch` command.
pub(crate) fn resolve(
    setting: &str,
    role: NetRole,
    hub_settings: &HubSettings,
    download: bool,
) -> Result<PathBuf, ModelError> {
    let path = Path::new(setting);
    if path.is_file() {
        return Ok(path.to_owned());
    }
    match find(setting) {
        Some(p) if p.role == role => hub::locate_file(&p.file, p.name, hub_settings, download),
        _ if looks_like_path(setting) => Err(ModelError::Missing {
            file: setting.to_owned(),
            where_: String::new(),
            fetch_hint: format!("merchgen models fetch --model {}", default_for(role)),
        }),
        _ => {
            let names: Vec<&str> = ALL
                .iter()
                .filter(|p| p.role == role)
                .map(|p| p.name)
                .collect();
            Err(ModelError::Unknown(setting.to_owned(), names.join(", ")))
        }
    }
}

fn default_for(role: NetRole) -> &'static str {
    match role {
        NetRole::Matting => DEFAULT_MATTING,
        NetRole::Upscale => DEFAULT_UPSCALE_X4,
    }
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".pth") || s.ends_with(".safetensors")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_missing_preset_offline_names_file_and_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let msg = resolve(
            "u2net",
            NetRole::Matting,
            &HubSettings::offline_at(dir.path()),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("u2net.pth"), "{msg}");
        assert!(msg.contains("merchgen models fetch --model u2net"), "{msg}");
    }

    #[test]
    fn resolve_wrong_role_lists_presets_of_the_role() {
        let dir = tempfile::tempdir().unwrap();
        let msg = resolve(
            "u2net",
            NetRole::Upscale,
            &HubSettings::offline_at(dir.path()),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("realesrgan-x4plus"), "{msg}");
    }

    #[test]
    fn resolve_local_file_is_taken_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.pth");
        std::fs::write(&file, b"x").unwrap();
        let got = resolve(
            file.to_str().unwrap(),
            NetRole::Upscale,
            &HubSettings::offline_at(dir.path()),
            false,
        );
        assert_eq!(got.unwrap(), file);
    }

    #[test]
    fn defaults_are_presets_of_their_role() {
        assert_eq!(find(DEFAULT_MATTING).unwrap().role, NetRole::Matting);
        assert_eq!(find(DEFAULT_UPSCALE_X4).unwrap().role, NetRole::Upscale);
        assert_eq!(find(DEFAULT_UPSCALE_X2).unwrap().role, NetRole::Upscale);
    }
}
