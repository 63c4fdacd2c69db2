//! Device selection (`MERCHGEN_DEVICE=auto|cpu|cuda:N`) and the dtype each weight mode computes in.

use candle_core::{DType, Device};

/// Why a device could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeviceError {
    #[error("unknown device '{0}': use auto, cpu or cuda:N")]
    Unknown(String),
    #[error("cannot open {0}: {1} (was merchgen built with --features cuda?)")]
    Open(String, candle_core::Error),
}

/// Open the device named by `spec`. `auto` takes CUDA device 0 when this build has CUDA and a
/// GPU answers, otherwise the CPU.
pub(crate) fn open(spec: &str) -> Result<Device, DeviceError> {
    match spec {
        "auto" => Ok(if candle_core::utils::cuda_is_available() {
            Device::new_cuda(0).unwrap_or(Device::Cpu)
        } else {
            Device::Cpu
        }),
        "cpu" => Ok(Device::Cpu),
        other => {
            let ordinal = other
                .strip_prefix("cuda:")
                .or_else(|| (other == "cuda").then_some("0"))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| DeviceError::Unknown(other.to_owned()))?;
            Device::new_cuda(ordinal).map_err(|e| DeviceError::Open(other.to_owned(), e))
        }
    }
}

/// A short name such as `cpu` or `cuda:0` for outcomes and logs.
pub(crate) fn name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_owned(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The dtype dense (dequantized) weights use: bf16 on a GPU for fast matmuls, f32 on the CPU,
/// where bf16 matmuls are slow.
pub(crate) fn dense_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_cpu_and_reject_garbage() {
        assert!(open("cpu").unwrap().is_cpu());
        assert!(matches!(open("tpu:0"), Err(DeviceError::Unknown(_))));
        assert_eq!(name(&Device::Cpu), "cpu");
    }
}
