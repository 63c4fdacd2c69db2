//! The output key layout (`{id}/images/…`, `{id}/mockups/…`, `{id}/print/…`,
//! `{id}/result.json`), relative to a sink's prefix, and the check every sink applies to a key
//! before using it. Pure string work: no I/O.

use super::sink::OutputError;

/// `{job_id}/images/{i}.{ext}`
pub fn image(job_id: &str, index: u32, ext: &str) -> String {
    format!("{job_id}/images/{index}.{ext}")
}

/// `{job_id}/mockups/{product}-{color}.{ext}`
pub fn mockup(job_id: &str, product: &str, color: &str, ext: &str) -> String {
    format!("{job_id}/mockups/{product}-{color}.{ext}")
}

/// `{job_id}/print/{product}.{ext}`: the print-ready file of one product (one per product,
/// whatever the colours).
pub fn print_file(job_id: &str, product: &str, ext: &str) -> String {
    format!("{job_id}/print/{product}.{ext}")
}

/// The mockup of variation `image` of a job with several images:
/// `{job_id}/mockups/{image}/{product}-{color}.{ext}`; a one-image job keeps [`mockup`]'s keys.
pub(crate) fn variation_mockup(
    job_id: &str,
    image: u32,
    product: &str,
    color: &str,
    ext: &str,
) -> String {
    format!("{job_id}/mockups/{image}/{product}-{color}.{ext}")
}

/// The print file of variation `image` of a job with several images:
/// `{job_id}/print/{image}/{product}.{ext}`; a one-image job keeps [`print_file`]'s keys.
pub(crate) fn variation_print_file(job_id: &str, image: u32, product: &str, ext: &str) -> String {
    format!("{job_id}/print/{image}/{product}.{ext}")
}

/// A print-shop deliverable of variation `image`: `{job_id}/print/{image}/{kind}/{file}`, where
/// `kind` is `vector`, `sticker` or `separations` (a folder, so it never meets a product's
/// print file `{job_id}/print/{image}/{product}.png`). Every job's deliverables carry the
/// variation index, one image or several.
pub(crate) fn deliverable(job_id: &str, image: u32, kind: &str, file: &str) -> String {
    format!("{job_id}/print/{image}/{kind}/{file}")
}

/// `{job_id}/result.json`, written last and read first (idempotency).
pub fn result(job_id: &str) -> String {
    format!("{job_id}/result.json")
}

/// Join a sink's prefix and a relative key (`prefix/key`, or `key` when the prefix is empty).
pub fn join(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}/{key}")
    }
}

/// Refuse keys that could escape the sink's prefix or folder: empty, absolute, empty or dot
/// segments, backslashes, control characters.
pub fn check(key: &str) -> Result<(), OutputError> {
    let bad_segment = |s: &str| s.is_empty() || s == "." || s == "..";
    let ok = !key.is_empty()
        && key.len() <= 900
        && !key.contains('\\')
        && !key.chars().any(char::is_control)
        && !key.split('/').any(bad_segment);
    if ok {
        Ok(())
    } else {
        Err(OutputError::InvalidKey(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_design_layout() {
        assert_eq!(image("j1", 0, "png"), "j1/images/0.png");
        assert_eq!(
            mockup("j1", "mug", "white", "jpg"),
            "j1/mockups/mug-white.jpg"
        );
        assert_eq!(print_file("j1", "tshirt", "png"), "j1/print/tshirt.png");
        assert_eq!(
            variation_mockup("j1", 2, "mug", "white", "jpg"),
            "j1/mockups/2/mug-white.jpg"
        );
        assert_eq!(
            variation_print_file("j1", 1, "tshirt", "png"),
            "j1/print/1/tshirt.png"
        );
        assert_eq!(
            deliverable("j1", 0, "sticker", "sticker.pdf"),
            "j1/print/0/sticker/sticker.pdf"
        );
        assert_eq!(result("j1"), "j1/result.json");
    }

    #[test]
    fn join_handles_empty_and_slashed_prefixes() {
        assert_eq!(join("", "a/b"), "a/b");
        assert_eq!(join("/p/q/", "a"), "p/q/a");
    }

    #[test]
    fn check_refuses_escaping_keys() {
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a\\b", "a/\n", "a/"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check("job-1/images/0.png").is_ok());
    }
}
