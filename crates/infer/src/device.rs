use candle_core::Device;

/// Pick the device once per process. With the `cuda` feature and `prefer_gpu`, GPU 0 when
/// one is visible; otherwise the CPU.
pub fn choose_device(prefer_gpu: bool) -> Result<Device, crate::InferError> {
    #[cfg(feature = "cuda")]
    if prefer_gpu {
        return Ok(Device::cuda_if_available(0)?);
    }
    let _ = prefer_gpu;
    Ok(Device::Cpu)
}
