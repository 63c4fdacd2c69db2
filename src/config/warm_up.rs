//! What a worker warms up at start-up: the engine's warm-up pass (`MERCHGEN_WARMUP`) and the
//! mockup layers it draws while the model loads (`MERCHGEN_MOCKUP_WARMUP`).

/// Which mockup layers a worker draws at start-up (`MERCHGEN_MOCKUP_WARMUP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockupWarmup {
    /// Every product at its canvas size.
    All,
    /// These (product, longest side) pairs; empty for `none`.
    Only(Vec<(String, Option<u32>)>),
}

impl MockupWarmup {
    /// Parse the setting; the error names what is wrong.
    pub fn parse(text: &str) -> Result<MockupWarmup, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "all" | "" => return Ok(MockupWarmup::All),
            "none" => return Ok(MockupWarmup::Only(Vec::new())),
            _ => {}
        }
        let mut pairs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (product, size) = match item.split_once('@') {
                Some((product, size)) => {
                    let size: u32 = size.trim().parse().map_err(|_| {
                        format!("MERCHGEN_MOCKUP_WARMUP: {item:?}: the size after @ must be a whole number of pixels")
                    })?;
                    if !(16..=crate::mockup::MAX_SIZE).contains(&size) {
                        return Err(format!(
                            "MERCHGEN_MOCKUP_WARMUP: {item:?}: the size must be within 16..={}",
                            crate::mockup::MAX_SIZE
                        ));
                    }
                    (product.trim(), Some(size))
                }
                None => (item, None),
            };
            pairs.push((product.to_owned(), size));
        }
        Ok(MockupWarmup::Only(pairs))
    }
}

/// When the engine runs its warm-up pass after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WarmUp {
    /// On a GPU (where the first kernels compile and allocate), not on the CPU.
    Auto,
    On,
    Off,
}

impl WarmUp {
    pub(crate) fn runs_on(self, device: &candle_core::Device) -> bool {
        match self {
            WarmUp::Auto => !device.is_cpu(),
            WarmUp::On => true,
            WarmUp::Off => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mockup_warmup_reads_all_none_and_products_with_sizes() {
        assert_eq!(MockupWarmup::parse("all"), Ok(MockupWarmup::All));
        assert_eq!(
            MockupWarmup::parse(" None "),
            Ok(MockupWarmup::Only(vec![]))
        );
        assert_eq!(
            MockupWarmup::parse("tshirt, mug@1200"),
            Ok(MockupWarmup::Only(vec![
                ("tshirt".to_owned(), None),
                ("mug".to_owned(), Some(1200))
            ]))
        );
        let err = MockupWarmup::parse("mug@big").unwrap_err();
        assert!(
            err.contains("MERCHGEN_MOCKUP_WARMUP") && err.contains("mug@big"),
            "{err}"
        );
        assert!(MockupWarmup::parse("mug@8").unwrap_err().contains("16..="));
    }
}
