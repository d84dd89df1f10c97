//! A [`crate::device::Device`] (`--device cpu|cuda:N|wgpu[:N]`) -> a burn device, chosen
//! explicitly (never `Device::default()`, which picks CUDA whenever it is compiled in, GPU or not). A
//! backend that is not compiled in, or a device that is not there, is an error that says so, found by
//! a probe before training starts.

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};

use crate::device::compiled_devices;

/// The burn device `device` names, checked to work.
pub fn open_device(device: crate::device::Device) -> Result<Device> {
    let burn_device = match device {
        crate::device::Device::Cpu => Device::flex(),
        crate::device::Device::Cuda(index) => cuda(index)?,
        crate::device::Device::Wgpu(index) => wgpu(index)?,
    };
    probe(&burn_device, &device.to_string())?;
    Ok(burn_device)
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}
#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device> {
    bail!(
        "this build of sweep has no CUDA support: rebuild with `cargo build --release --features cuda` (supported here: {})",
        compiled_devices()
    )
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Result<Device> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(index.map_or(DeviceKind::DefaultDevice, DeviceKind::DiscreteGpu)))
}
#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> Result<Device> {
    bail!(
        "this build of sweep has no wgpu support: rebuild with `cargo build --release --features wgpu` (supported here: {})",
        compiled_devices()
    )
}

/// Runs one tiny operation; a backend that cannot start panics inside burn, which is caught here
/// and turned into an error naming the device.
fn probe(device: &Device, name: &str) -> Result<()> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let device_clone = device.clone();
    let result = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &device_clone);
        t.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous);
    match result {
        Ok(3.0) => Ok(()),
        Ok(v) => bail!("device `{name}` computed 1 + 2 = {v}: it is not working"),
        Err(panic) => {
            let msg = crate::data::panic_message(panic.as_ref());
            // wgpu:N asks for the N-th *discrete* GPU, so an integrated or software adapter
            // (lavapipe, say) fails there with an opaque channel error.
            let hint = if name.starts_with("wgpu:") {
                " (`wgpu:N` is the N-th discrete GPU; `--device wgpu` takes wgpu's default adapter, integrated and software ones included)"
            } else {
                ""
            };
            bail!("device `{name}` is not available: {msg}{hint}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Unknown names and bad indices never get here: `crate::device` rejects them when parsing.
    #[test]
    fn cpu_works_and_missing_backends_are_clear_errors() {
        open_device(crate::device::Device::Cpu).unwrap();
        if !cfg!(feature = "cuda") {
            let err = open_device(crate::device::Device::Cuda(0)).unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
