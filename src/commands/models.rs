//! `merchgen models list|verify|fetch|tiny`: fill or check the cached volume.

use crate::cli::ModelsAction;
use crate::config::Config;
use crate::engine::files::net_presets::{self, NetRole};
use crate::engine::files::{hub, integrity, presets};
use crate::engine::{matting, tiny, upscale};
use std::path::{Path, PathBuf};

pub fn run(config: &Config, action: &ModelsAction) -> i32 {
    let hub_settings = config.hub_settings();
    match action {
        ModelsAction::List => {
            println!("cache: {}", hub_settings.cache_dir.display());
            for p in presets::all() {
                let state = match hub::resolve(p.name, &hub_settings.offline(), false) {
                    Ok(m) => format!("cached, {:.2} GB", m.total_bytes() as f64 / 1e9),
                    Err(_) => "not cached".to_owned(),
                };
                println!("{:<20} {:<14} {}", p.name, state, p.description);
            }
            list_finishing_presets(&hub_settings);
            0
        }
        ModelsAction::Verify | ModelsAction::Fetch => {
            let download = matches!(action, ModelsAction::Fetch);
            if let Some(net) = net_presets::find(&config.model) {
                // `--model <finishing preset>`: that one file only.
                return match net_presets::resolve(net.name, net.role, &hub_settings, download)
                    .map_err(|e| e.to_string())
                    .and_then(|path| verify_net(&path, net.role))
                {
                    Ok(summary) => {
                        println!("{summary}");
                        0
                    }
                    Err(e) => {
                        eprintln!("merchgen models: {e}");
                        1
                    }
                };
            }
            let mut code = match hub::resolve(&config.model, &hub_settings, download)
                .and_then(|m| verify(&m))
            {
                Ok(summary) => {
                    println!("{summary}");
                    0
                }
                Err(e) => {
                    eprintln!("merchgen models: {e}");
                    1
                }
            };
            for (setting, role) in finishing_models(config) {
                match net_presets::resolve(setting, role, &hub_settings, download)
                    .map_err(|e| e.to_string())
                    .and_then(|path| verify_net(&path, role))
                {
                    Ok(summary) => println!("{summary}"),
                    Err(e) => {
                        eprintln!("merchgen models: {e}");
                        code = 1;
                    }
                }
            }
            code
        }
        ModelsAction::Tiny { out, seed, layout } => match tiny::write(out, *seed, *layout)
            .and_then(|dir| write_tiny_finishers(&dir, *seed).map(|files| (dir, files)))
        {
            Ok((dir, files)) => {
                println!(
                    "tiny model written to {} (its images are noise)",
                    dir.display()
                );
                for f in files {
                    println!("tiny finishing model: {}", f.display());
                }
                0
            }
            Err(e) => {
                eprintln!("merchgen models tiny: {e:#}");
                1
            }
        },
    }
}

/// Read every file's header (GGUF, safetensors, JSON, tokenizer) without loading weights.
fn verify(model: &hub::ResolvedModel) -> Result<String, hub::ModelError> {
    use crate::engine::files::manifest::Role;
    let bad = |role: Role, e: String| hub::ModelError::Manifest {
        path: model.path(role).display().to_string(),
        reason: e,
    };
    for role in Role::ALL {
        let path = model.path(role);
        let check = match role {
            Role::Transformer | Role::T5 | Role::Vae | Role::Clip => {
                crate::engine::flux::loader::check_weights(path).map_err(|e| format!("{e:#}"))
            }
            Role::ClipConfig | Role::T5Config => std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<serde_json::Value>(&b)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            Role::ClipTokenizer | Role::T5Tokenizer => tokenizers::Tokenizer::from_file(path)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        check.map_err(|e| bad(role, e))?;
    }
    let mut hashed = 0;
    let mut commits = std::collections::BTreeSet::new();
    for role in Role::ALL {
        let path = model.path(role);
        let checked = integrity_check(path).map_err(|e| bad(role, e))?;
        hashed += usize::from(checked.matches.is_some());
        commits.extend(checked.commit);
    }
    Ok(format!(
        "{}: every file present and readable, {:.2} GB ({}); {hashed} of {} files match the hub's SHA-256 / git hashes{}",
        model.manifest.name,
        model.total_bytes() as f64 / 1e9,
        model.source,
        Role::ALL.len(),
        if commits.is_empty() {
            String::new()
        } else {
            format!(", from hub commit {}", commits.into_iter().collect::<Vec<_>>().join(", "))
        }
    ))
}

/// Hash a file and compare with the hub's metadata kept at fetch time (see
/// `engine::files::integrity`); a mismatch is an error saying how to repair it.
fn integrity_check(path: &Path) -> Result<integrity::Checked, String> {
    let checked = integrity::check(path).map_err(|e| format!("cannot read it: {e}"))?;
    if checked.matches == Some(false) {
        let want = match &checked.expected {
            integrity::Expected::Sha256(h) => format!("SHA-256 {h}"),
            integrity::Expected::GitBlobSha1(h) => format!("git blob {h}"),
            integrity::Expected::Unknown => String::new(),
        };
        return Err(format!(
            "its content ({} bytes, SHA-256 {}) is not what the hub published ({want}): the file is corrupt or was replaced; delete it and run `merchgen models fetch`",
            checked.bytes, checked.sha256
        ));
    }
    Ok(checked)
}

/// The configured finishing models (matting, x4 and x2 upscalers), for `fetch` and `verify`.
fn finishing_models(config: &Config) -> [(&str, NetRole); 3] {
    [
        (config.matting_model.as_str(), NetRole::Matting),
        (config.upscale_model.as_str(), NetRole::Upscale),
        (config.upscale_x2_model.as_str(), NetRole::Upscale),
    ]
}

fn list_finishing_presets(hub_settings: &hub::HubSettings) {
    let offline = hub_settings.offline();
    println!("finishing models (MERCHGEN_MATTING_MODEL, MERCHGEN_UPSCALE_MODEL, MERCHGEN_UPSCALE_X2_MODEL):");
    for p in net_presets::ALL {
        let state = match net_presets::resolve(p.name, p.role, &offline, false) {
            Ok(path) => format!(
                "cached, {:.0} MB",
                std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
            ),
            Err(_) => "not cached".to_owned(),
        };
        println!(
            "{:<20} {:<14} {} [{}/{}; licence: {}]",
            p.name, state, p.description, p.file.repo, p.file.path, p.licence
        );
    }
}

/// Load a finishing model on the CPU to prove it is one.
fn verify_net(path: &Path, role: NetRole) -> Result<String, String> {
    let device = candle_core::Device::Cpu;
    let what = match role {
        NetRole::Matting => {
            matting::Matting::load(path, &device).map(|m| format!("matting model ({})", m.arch()))
        }
        NetRole::Upscale => upscale::Upscaler::load(path, &device)
            .map(|u| format!("x{} upscaler ({})", u.scale(), u.arch())),
    }
    .map_err(|e| format!("{}: {e:#}", path.display()))?;
    let checked = integrity_check(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let what = match checked.matches {
        Some(true) => format!("{what}, matches the hub's SHA-256"),
        _ => what,
    };
    let bytes = checked.bytes;
    Ok(format!(
        "{}: {what}, {:.1} MB, loads",
        path.display(),
        bytes as f64 / 1e6
    ))
}

/// Tiny random-weight matting and upscaling models beside the tiny FLUX.
fn write_tiny_finishers(dir: &Path, seed: u64) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = matting::write_tiny(&dir.join("matting"), seed)?;
    files.extend(upscale::write_tiny(&dir.join("upscale"), seed)?);
    Ok(files)
}
