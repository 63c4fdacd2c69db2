//! The set of templates a worker can render: the built-in products plus, optionally, a folder of
//! custom templates (`MERCHGEN_TEMPLATES`), each a sub-folder (or the folder itself) holding a
//! `manifest.json` and its layer images. This is the only file of the mockup module that reads
//! files, and it does so once, at load time.

use super::builtin;
use super::manifest::{TemplateError, ValidManifest};
use super::template::{Layers, Prepared, Source, Template};
use super::validate;
use image::DynamicImage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The manifest's file name inside a template folder.
pub(crate) const MANIFEST_FILE: &str = "manifest.json";

/// Templates by product name.
#[derive(Debug)]
pub struct MockupLibrary {
    templates: BTreeMap<String, Template>,
}

impl MockupLibrary {
    /// The six built-in products. Cheap: their layers are drawn on first use.
    pub fn builtin() -> Self {
        let templates = builtin::templates()
            .into_iter()
            .map(|t| (t.product().to_owned(), t))
            .collect();
        MockupLibrary { templates }
    }

    /// Built-ins plus the templates under `custom_dir`; a custom template replaces a built-in of
    /// the same product name. Every manifest and layer is read and checked here.
    pub fn load(custom_dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut lib = MockupLibrary::builtin();
        let Some(dir) = custom_dir else {
            return Ok(lib);
        };
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for manifest in manifest_paths(dir)? {
            let template = load_template(&manifest)?;
            let product = template.product().to_owned();
            if let Some(other) = seen.insert(product.clone(), manifest.clone()) {
                return Err(TemplateError::Duplicate {
                    manifest,
                    product,
                    other,
                });
            }
            lib.templates.insert(product, template);
        }
        Ok(lib)
    }

    /// Draw (or resample) every template's layers for mockups of longest side `size` now,
    /// one product after another (each drawing uses every core), instead of on first use. A
    /// worker calls this on a background thread while its model loads (see
    /// docs/benchmarks.md); a job that needs a product not drawn yet draws it itself, and one
    /// that needs the product being drawn waits only for that one.
    ///
    /// Call it (and [`MockupLibrary::warm_products`]) from a thread outside rayon's pool: a
    /// layer drawn inside a pool task could, while its own parallel loops wait, pick up a
    /// sibling task that needs the same layers and re-enter their one-time initialisation.
    pub fn warm(&self, size: Option<u32>) {
        for t in self.templates.values() {
            t.prepared(size);
        }
    }

    /// Draw the layers of just these (product, longest side) pairs now, one after another;
    /// unknown products are left for the job to reject with its own error.
    pub(crate) fn warm_products(&self, wanted: &[(String, Option<u32>)]) {
        for (product, size) in wanted {
            if let Some(t) = self.templates.get(product) {
                t.prepared(*size);
            }
        }
    }

    /// Product names, sorted.
    pub fn products(&self) -> Vec<&str> {
        self.templates.keys().map(String::as_str).collect()
    }

    /// The template of a product.
    pub fn template(&self, product: &str) -> Option<&Template> {
        self.templates.get(product)
    }
}

/// `dir/manifest.json` if present, then `dir/*/manifest.json` in name order.
fn manifest_paths(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let io = |source| TemplateError::Io {
        manifest: dir.to_owned(),
        source,
    };
    let mut found = Vec::new();
    let top = dir.join(MANIFEST_FILE);
    if top.is_file() {
        found.push(top);
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect::<Result<_, _>>()?;
    subdirs.sort();
    found.extend(
        subdirs
            .into_iter()
            .map(|d| d.join(MANIFEST_FILE))
            .filter(|m| m.is_file()),
    );
    Ok(found)
}

/// Read, check and decode one template from its manifest file.
pub(crate) fn load_template(manifest: &Path) -> Result<Template, TemplateError> {
    let text = std::fs::read_to_string(manifest).map_err(|source| TemplateError::Io {
        manifest: manifest.to_owned(),
        source,
    })?;
    let valid = validate::parse(&text, manifest)?;
    let layers = load_layers(&valid, manifest)?;
    let prepared = Prepared::new(layers, valid.mapping, valid.effects.displacement_px);
    Ok(Template::new(valid, Source::Loaded(Arc::new(prepared))))
}

fn load_layers(m: &ValidManifest, manifest: &Path) -> Result<Layers, TemplateError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let read = |layer: &'static str, name: &str| -> Result<DynamicImage, TemplateError> {
        let file = dir.join(name);
        let err = |reason: String| TemplateError::Layer {
            manifest: manifest.to_owned(),
            layer,
            file: file.clone(),
            reason,
        };
        let img = image::open(&file).map_err(|e| err(e.to_string()))?;
        let (w, h) = (img.width(), img.height());
        if (w, h) != m.canvas {
            let (cw, ch) = m.canvas;
            return Err(err(format!(
                "the image is {w}x{h}, the canvas is {cw}x{ch}"
            )));
        }
        Ok(img)
    };
    let optional = |layer: &'static str, name: &Option<String>| {
        name.as_deref().map(|n| read(layer, n)).transpose()
    };
    let l = &m.layers;
    let gray = |i: Option<DynamicImage>| i.map(|i| i.to_luma8());
    Ok(Layers {
        base: read("base", &l.base)?.to_rgba8(),
        tint: gray(optional("tint", &l.tint)?),
        mask: gray(optional("mask", &l.mask)?),
        shading: gray(optional("shading", &l.shading)?),
        highlight: gray(optional("highlight", &l.highlight)?),
        displacement: optional("displacement", &l.displacement)?.map(|i| two_channels(&i)),
        overlay: optional("overlay", &l.overlay)?.map(|i| i.to_rgba8()),
    })
}

/// Red and green of a displacement map (a grey map gives the same shift on both axes).
fn two_channels(img: &DynamicImage) -> Vec<u8> {
    let rgb = img.to_rgb8();
    rgb.pixels().flat_map(|p| [p.0[0], p.0[1]]).collect()
}
