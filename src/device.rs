//! The device a run trains on, as the command line names it: `cpu`, `cuda:N`, `wgpu` (wgpu's default
//! adapter) or `wgpu:N` (its N-th discrete GPU).
//!
//! [`Device`] is parsed once, where the command line is read (clap uses its `FromStr`), and travels
//! typed from there: to the executors, which give each `sweep exec` child its `--device` by printing
//! it back (`Display` is the inverse of parsing), and to `crate::train::device`, which turns it into
//! a burn device and checks that this build and this machine have it. Parsing needs no backend, so
//! the runner can take devices without importing the trainer.

use std::fmt;
use std::str::FromStr;

/// A device to train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU (burn's flex backend; `flex` is another name for it).
    Cpu,
    /// The N-th CUDA GPU this process may use (`cuda` alone is `cuda:0`).
    Cuda(usize),
    /// `None`: wgpu's default adapter, integrated and software ones included; `Some(N)`: the N-th
    /// discrete GPU.
    Wgpu(Option<usize>),
}

/// The devices this build can use, for error messages.
pub fn compiled_devices() -> &'static str {
    match (cfg!(feature = "cuda"), cfg!(feature = "wgpu")) {
        (true, true) => "cpu, cuda:N, wgpu[:N]",
        (true, false) => "cpu, cuda:N",
        (false, true) => "cpu, wgpu[:N]",
        (false, false) => "cpu (build with --features cuda or --features wgpu for a GPU)",
    }
}

impl Device {
    /// `Ok` when this build has the backend of the device; otherwise an error saying how to get one.
    pub fn built_in(self) -> Result<(), BadDevice> {
        let (built, feature) = match self {
            Device::Cpu => (true, ""),
            Device::Cuda(_) => (cfg!(feature = "cuda"), "cuda"),
            Device::Wgpu(_) => (cfg!(feature = "wgpu"), "wgpu"),
        };
        if built {
            return Ok(());
        }
        Err(BadDevice(format!(
            "device `{self}`: this build of sweep has no {feature} support: rebuild with `cargo build --release --features {feature}` (supported here: {})",
            compiled_devices()
        )))
    }
}

/// A device name that is not one.
#[derive(Debug, PartialEq, Eq)]
pub struct BadDevice(String);

impl fmt::Display for BadDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadDevice {}

impl FromStr for Device {
    type Err = BadDevice;

    fn from_str(name: &str) -> Result<Device, BadDevice> {
        let (kind, index) = match name.split_once(':') {
            Some((k, i)) => {
                let i: usize =
                    i.parse().map_err(|_| BadDevice(format!("device `{name}`: `{i}` is not a device index")))?;
                (k, Some(i))
            }
            None => (name, None),
        };
        match (kind, index) {
            ("cpu" | "flex", None) => Ok(Device::Cpu),
            ("cuda", i) => Ok(Device::Cuda(i.unwrap_or(0))),
            ("wgpu", i) => Ok(Device::Wgpu(i)),
            _ => Err(BadDevice(format!("unknown device `{name}`: this build supports {}", compiled_devices()))),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            Device::Wgpu(None) => write!(f, "wgpu"),
            Device::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (name, device) in [
            ("cpu", Device::Cpu),
            ("cuda:0", Device::Cuda(0)),
            ("cuda:3", Device::Cuda(3)),
            ("wgpu", Device::Wgpu(None)),
            ("wgpu:1", Device::Wgpu(Some(1))),
        ] {
            assert_eq!(name.parse::<Device>(), Ok(device), "{name}");
            assert_eq!(device.to_string(), name);
        }
        assert_eq!("flex".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
    }

    #[test]
    fn unknown_devices_and_bad_indices_are_clear_errors() {
        let err = "tpu:0".parse::<Device>().unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu:0`") && err.contains("cpu"), "{err}");
        let err = "cuda:x".parse::<Device>().unwrap_err().to_string();
        assert!(err.contains("not a device index"), "{err}");
        for bad in ["gpu0", "cpu:0", "wgpu:-1", ""] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
    }
}
