//! `--device cpu|cuda:N|wgpu[:N]` -> a burn device, chosen explicitly (never `Device::default()`,
//! which picks CUDA whenever it is compiled in, GPU or not). A backend that is not compiled in, or a
//! device that is not there, is an error that says so, found by a probe before training starts.

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};

/// The devices this build can use, for error messages.
pub fn compiled_devices() -> &'static str {
    match (cfg!(feature = "cuda"), cfg!(feature = "wgpu")) {
        (true, true) => "cpu, cuda:N, wgpu[:N]",
        (true, false) => "cpu, cuda:N",
        (false, true) => "cpu, wgpu[:N]",
        (false, false) => "cpu (build with --features cuda or --features wgpu for a GPU)",
    }
}

/// Parses a device name and checks that the device works.
pub fn parse_device(name: &str) -> Result<Device> {
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => {
            let i: usize = i.parse().with_context(|| format!("device `{name}`: `{i}` is not a device index"))?;
            (k, Some(i))
        }
        None => (name, None),
    };
    let device = match kind {
        "cpu" | "flex" if index.is_none() => Device::flex(),
        "cuda" => cuda(index.unwrap_or(0))?,
        "wgpu" => wgpu(index)?,
        _ => bail!("unknown device `{name}`: this build supports {}", compiled_devices()),
    };
    probe(&device, name)?;
    Ok(device)
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
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
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

    #[test]
    fn cpu_works_and_unknown_or_missing_backends_are_clear_errors() {
        parse_device("cpu").unwrap();
        let err = parse_device("tpu:0").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu:0`") && err.contains("cpu"), "{err}");
        let err = parse_device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("not a device index"), "{err}");
        if !cfg!(feature = "cuda") {
            let err = parse_device("cuda:0").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
