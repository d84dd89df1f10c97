//! A [`crate::device::Device`] (`--device cpu|cuda:N|wgpu[:N]`) -> a burn device, chosen
//! explicitly (never `Device::default()`, which picks CUDA whenever it is compiled in, GPU or not). A
//! backend that is not compiled in, or a device that is not there, is an error that says so, found by
//! a probe before training starts.

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};

/// The burn device `device` names, checked to work.
pub fn open_device(device: crate::device::Device) -> Result<Device> {
    device.built_in()?;
    let burn_device = match device {
        crate::device::Device::Cpu => Device::flex(),
        crate::device::Device::Cuda(index) => cuda(index),
        crate::device::Device::Wgpu(index) => wgpu(index),
    };
    probe(&burn_device, device)?;
    Ok(burn_device)
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Device {
    Device::cuda(index)
}
#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Device {
    unreachable!("open_device checks that the backend is built in first")
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Device {
    use burn::tensor::DeviceKind;
    Device::wgpu(index.map_or(DeviceKind::DefaultDevice, DeviceKind::DiscreteGpu))
}
#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> Device {
    unreachable!("open_device checks that the backend is built in first")
}

/// Points cubecl's persistent caches (autotune results; compiled kernels, which it keeps only when
/// asked to) at `dir` ([`crate::store::layout::kernel_cache_dir`]), so that the runs of a results
/// folder compile and tune each kernel once. Must run before a GPU device is first used: cubecl reads
/// its configuration once per process. The rest of a `cubecl.toml` or `CUBECL_*` variables still
/// applies. A build without a GPU backend has no cubecl and nothing to do.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub fn use_kernel_caches(dir: &std::path::Path) {
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    // cubecl creates the folder when it first writes there.
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.environment.path = CacheConfig::Directory(dir.to_path_buf());
    config.compilation.cache = true;
    if !CubeClRuntimeConfig::try_set(config) {
        eprintln!("warning: cubecl was configured before sweep could point its caches at {}", dir.display());
    }
}
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
pub fn use_kernel_caches(_dir: &std::path::Path) {}

/// Runs one tiny operation; a backend that cannot start panics inside burn, which is caught here
/// and turned into an error naming the device and what it needs.
fn probe(device: &Device, device_name: crate::device::Device) -> Result<()> {
    let name = device_name.to_string();
    let device_clone = device.clone();
    let result = first_panic(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &device_clone);
        t.sum().into_scalar::<f32>()
    });
    match result {
        Ok(3.0) => Ok(()),
        Ok(v) => bail!("device `{name}` computed 1 + 2 = {v}: it is not working"),
        Err(msg) => bail!("device `{name}` is not available: {msg}{}", unavailable_hint(device_name)),
    }
}

/// `f()`, or the message of the first panic while it ran, on any thread: a backend's device thread
/// may panic with the cause, and this thread then only with a closed channel ("RecvError"), which
/// says nothing. Nothing is printed meanwhile.
fn first_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    let first = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let previous = std::panic::take_hook();
    let sink = first.clone();
    std::panic::set_hook(Box::new(move |info| {
        let mut first = sink.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| crate::data::panic_message(info.payload()));
    }));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(previous);
    result.map_err(|panic| {
        let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
        first.unwrap_or_else(|| crate::data::panic_message(panic.as_ref()))
    })
}

/// What a device that did not start needs, for its error.
fn unavailable_hint(device: crate::device::Device) -> &'static str {
    match device {
        crate::device::Device::Cpu => "",
        // cudarc loads the driver and NVRTC at run time and panics when one is missing.
        crate::device::Device::Cuda(_) => {
            " (CUDA needs an NVIDIA GPU with its driver, libcuda.so.1, and NVRTC, libnvrtc.so of a CUDA 12 or 13 \
             install, on the library path: e.g. LD_LIBRARY_PATH=/usr/local/cuda/lib64; `nvidia-smi` shows the GPUs; \
             without one, train with --device cpu)"
        }
        // wgpu:N asks for the N-th *discrete* GPU, so an integrated or software adapter
        // (lavapipe, say) fails there with an opaque channel error.
        crate::device::Device::Wgpu(Some(_)) => {
            " (`wgpu:N` is the N-th discrete GPU; `--device wgpu` takes wgpu's default adapter, integrated and software ones included)"
        }
        crate::device::Device::Wgpu(None) => {
            " (wgpu needs a Vulkan, Metal or DX12 driver; Mesa's lavapipe is a software one)"
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

    #[test]
    fn the_first_panic_is_the_message_even_on_another_thread() {
        let err = first_panic(|| {
            let worker = std::thread::spawn(|| panic!("libcuda.so.1 not found"));
            let _ = worker.join();
            panic!("RecvError")
        });
        assert_eq!(err.unwrap_err(), "libcuda.so.1 not found");
        assert_eq!(first_panic(|| 3), Ok(3));
        assert_eq!(first_panic(|| -> u8 { panic!("only one") }).unwrap_err(), "only one");
    }

    #[test]
    fn a_device_that_does_not_start_says_what_it_needs() {
        let hint = unavailable_hint(crate::device::Device::Cuda(0));
        assert!(
            hint.contains("libnvrtc.so") && hint.contains("libcuda.so.1") && hint.contains("--device cpu"),
            "{hint}"
        );
        assert!(unavailable_hint(crate::device::Device::Wgpu(Some(0))).contains("discrete GPU"));
        assert_eq!(unavailable_hint(crate::device::Device::Cpu), "");
    }
}
