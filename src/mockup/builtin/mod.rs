//! The six built-in products, drawn by code (no image files): t-shirt, hoodie, mug, poster,
//! phone case and tote bag. Each product file gives its manifest (validated like any custom
//! one) and a function that draws its layers at any size.
//!
//! Cold cost: the layers are drawn on first use of a product at a size and then cached by the
//! template (see `template.rs`). Drawing was measured against decoding the same layers from
//! embedded PNGs and chosen because it costs about the same, keeps tens of megabytes of images
//! out of the repository and binary, and draws small sizes (previews, tests) directly instead
//! of resampling 2000-pixel layers; figures are in docs/benchmarks-mockups.md.

mod garment;
mod hoodie;
mod kit;
mod mug;
mod phone_case;
mod poster;
mod scene;
mod tote_bag;
mod tshirt;

use super::manifest::{validate, ManifestSpec};
use super::template::{Layers, Source, Template};
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
