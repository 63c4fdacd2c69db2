//! The six built-in products, drawn by code (no image files): t-shirt, hoodie, mug, poster,
//! phone case and tote bag. Each product file gives its manifest (validated like any custom
//! one) and a function that draws its layers at any size.
//!
//! Layers are drawn lazily, on first use of a product at an output size, and cached by the
//! template (`template.rs`); `MockupLibrary::warm` draws them ahead of time. The alternative,
//! committed PNGs decoded at start-up, was measured (figures in
//! docs/benchmarks-mockups.md): decoding is several times cheaper than drawing at 2000 px, but
//! the six products' layers weigh about 18 MB as PNG (the fabric grain does not compress), every
//! other output size would resample 2000-pixel layers, and a GPU worker hides the drawing
//! entirely by warming on a background thread while its model loads. Drawing it is.

mod garment;
mod hoodie;
mod kit;
mod mug;
mod path;
mod phone_case;
mod poster;
mod scene;
mod tote_bag;
mod tshirt;

use super::manifest::ManifestSpec;
use super::template::{Layers, Source, Template};
use super::validate::validate;
use std::path::Path;

/// A built-in product: its manifest and its drawing function.
struct Product {
    name: &'static str,
    spec: fn() -> ManifestSpec,
    draw: fn(u32) -> Layers,
}

const PRODUCTS: &[Product] = &[
    Product {
        name: "tshirt",
        spec: tshirt::spec,
        draw: tshirt::draw,
    },
    Product {
        name: "hoodie",
        spec: hoodie::spec,
        draw: hoodie::draw,
    },
    Product {
        name: "mug",
        spec: mug::spec,
        draw: mug::draw,
    },
    Product {
        name: "poster",
        spec: poster::spec,
        draw: poster::draw,
    },
    Product {
        name: "phone_case",
        spec: phone_case::spec,
        draw: phone_case::draw,
    },
    Product {
        name: "tote_bag",
        spec: tote_bag::spec,
        draw: tote_bag::draw,
    },
];

/// Every built-in template.
pub(crate) fn templates() -> Vec<Template> {
    PRODUCTS
        .iter()
        .map(|p| {
            let name = format!("builtin:{}", p.name);
            let valid = validate((p.spec)(), Path::new(&name))
                .expect("built-in manifests are valid (pinned by a test)");
            Template::new(valid, Source::Builtin(p.draw))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_are_valid_and_named_after_their_product() {
        for p in PRODUCTS {
            let valid = validate((p.spec)(), Path::new(p.name)).unwrap();
            assert_eq!(valid.product, p.name);
            let names: Vec<&str> = valid.colors.iter().map(|(n, _)| n.as_str()).collect();
            assert!(names.contains(&"white") && names.contains(&"black") && names.len() >= 3);
        }
    }
}
