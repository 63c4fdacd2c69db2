//! `merchgen models list|verify|fetch|tiny`: fill or check the cached volume.

use crate::cli::ModelsAction;
use crate::config::Config;
use crate::engine::{hub, presets, tiny};

pub fn run(config: &Config, action: &ModelsAction) -> i32 {
    let hub_settings = config.hub_settings();
    match action {
        ModelsAction::List => {
            println!("cache: {}", hub_settings.cache_dir.display());
            for p in presets::all() {
                let offline = hub::HubSettings {
                    offline: true,
                    ..hub_settings.clone()
                };
                let state = match hub::resolve(p.name, &offline, false) {
                    Ok(m) => format!("cached, {:.2} GB", m.total_bytes() as f64 / 1e9),
                    Err(_) => "not cached".to_owned(),
                };
                println!("{:<20} {:<14} {}", p.name, state, p.description);
            }
            0
        }
        ModelsAction::Verify | ModelsAction::Fetch => {
            let download = matches!(action, ModelsAction::Fetch);
            match hub::resolve(&config.model, &hub_settings, download).and_then(|m| verify(&m)) {
                Ok(summary) => {
                    println!("{summary}");
                    0
                }
                Err(e) => {
                    eprintln!("merchgen models: {e}");
                    1
                }
            }
        }
        ModelsAction::Tiny { out, seed, layout } => match tiny::write(out, *seed, *layout) {
            Ok(dir) => {
                println!(
                    "tiny model written to {} (its images are noise)",
                    dir.display()
                );
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
    use crate::engine::manifest::Role;
    let bad = |role: Role, e: String| hub::ModelError::Manifest {
        path: model.path(role).display().to_string(),
        reason: e,
    };
    for role in Role::ALL {
        let path = model.path(role);
        let check = match role {
            Role::Transformer | Role::T5 | Role::Vae | Role::Clip => {
                crate::engine::loader::check_weights(path).map_err(|e| format!("{e:#}"))
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
    Ok(format!(
        "{}: every file present and readable, {:.2} GB ({})",
        model.manifest.name,
        model.total_bytes() as f64 / 1e9,
        model.source
    ))
}
