//! Peak memory over a benchmark. On a GPU: device memory in use (total minus free, as the driver
//! reports it) sampled every millisecond on a side thread, less what was in use at the start (the
//! CUDA context, other processes). On the CPU: the process's peak resident set (VmHWM), reset at
//! the start where the kernel allows it, less the resident set at the start (what earlier work
//! left allocated).

use candle_core::Device;
use serde::Serialize;

/// What `PeakMemory::finish` reports.
#[derive(Debug, Clone, Serialize)]
pub(super) struct MemoryReport {
    /// Peak bytes the benchmark itself used: device memory on a GPU, resident memory on the CPU.
    pub peak_memory_bytes: u64,
    /// `cuda_mem_get_info` or `vmhwm` (`vmhwm_since_start` when the peak could be reset).
    pub peak_memory_source: &'static str,
    /// The process's peak resident host memory (VmHWM).
    pub(crate) peak_host_rss_bytes: Option<u64>,
    /// Device memory in use before loading (context, other processes), on a GPU.
    pub(crate) device_baseline_bytes: Option<u64>,
    pub(crate) device_total_bytes: Option<u64>,
}

/// A running peak-memory measurement.
pub(super) struct PeakMemory {
    hwm_reset: bool,
    rss_start: u64,
    #[cfg(feature = "cuda")]
    cuda: Option<cuda::Sampler>,
}

impl PeakMemory {
    /// Start measuring on `device`.
    pub(super) fn start(device: &Device) -> Self {
        // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        #[cfg(not(feature = "cuda"))]
        let _ = device;
        PeakMemory {
            hwm_reset,
            rss_start: crate::engine::memory::resident_bytes().unwrap_or(0),
            #[cfg(feature = "cuda")]
            cuda: cuda::Sampler::start(device),
        }
    }

    /// Stop and report.
    pub(super) fn finish(self) -> MemoryReport {
        let host = vm_hwm();
        let source = if self.hwm_reset {
            "vmhwm_since_start"
        } else {
            "vmhwm"
        };
        let cpu = MemoryReport {
            peak_memory_bytes: host.unwrap_or(0).saturating_sub(self.rss_start),
            peak_memory_source: source,
            peak_host_rss_bytes: host,
            device_baseline_bytes: None,
            device_total_bytes: None,
        };
        #[cfg(feature = "cuda")]
        if let Some(sampler) = self.cuda {
            let (peak, baseline, total) = sampler.finish();
            return MemoryReport {
                peak_memory_bytes: peak.saturating_sub(baseline),
                peak_memory_source: "cuda_mem_get_info",
                device_baseline_bytes: Some(baseline),
                device_total_bytes: Some(total),
                ..cpu
            };
        }
        cpu
    }
}

/// Peak resident set size of this process (VmHWM).
fn vm_hwm() -> Option<u64> {
    crate::engine::memory::peak_resident_bytes()
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::Device;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// Samples device memory in use until stopped.
    pub(crate) struct Sampler {
        stop: Arc<AtomicBool>,
        thread: JoinHandle<u64>,
        baseline: u64,
        total: u64,
    }

    impl Sampler {
        pub fn start(device: &Device) -> Option<Self> {
            let Device::Cuda(dev) = device else {
                return None;
            };
            let ctx = dev.cuda_stream().context().clone();
            // mem_get_info binds the context to the calling thread, so the side thread may ask too.
            let (free, total) = ctx.mem_get_info().ok()?;
            let baseline = (total - free) as u64;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::spawn(move || {
                let mut peak = baseline;
                while !flag.load(Ordering::Relaxed) {
                    if let Ok((free, total)) = ctx.mem_get_info() {
                        peak = peak.max((total - free) as u64);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                peak
            });
            Some(Sampler {
                stop,
                thread,
                baseline,
                total: total as u64,
            })
        }

        /// (peak in use, in use at the start, total), in bytes.
        pub fn finish(self) -> (u64, u64, u64) {
            self.stop.store(true, Ordering::Relaxed);
            let peak = self.thread.join().unwrap_or(self.baseline);
            (peak, self.baseline, self.total)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_on_cpu_reports_resident_memory() {
        let m = PeakMemory::start(&Device::Cpu);
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let r = m.finish();
        assert!(r.peak_memory_bytes >= 64 << 20, "{r:?}");
        assert!(r.peak_memory_source.starts_with("vmhwm"));
    }
}
