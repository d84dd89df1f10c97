//! Loading torchvision checkpoints (`.pth`/`.pt` PyTorch pickles or `.safetensors`) into the
//! backbones, with errors that name every missing or misshaped key.
//!
//! The backbones are built so that torchvision's keys need no remapping (see
//! [`super::backbone::vgg`] and [`super::backbone::resnet`]); what differs is handled by
//! burn-store: `PyTorchToBurnAdapter` transposes linear weights (PyTorch `[out, in]`, burn
//! `[in, out]`) and maps batch-norm `weight`/`bias` to burn's `gamma`/`beta`;
//! `skip_enum_variants` drops the enum variant segment burn puts in list-entry paths
//! (`features.0.Conv.weight` is matched by `features.0.weight`). `PytorchStore` renumbers
//! indices contiguously by default (`features.5` would become `features.2`), which would break
//! the torchvision numbering the backbones keep, so it is switched off. A [`KeyRemapper`] strips
//! an optional key prefix (`module.` from `DataParallel`, `backbone.` from a detection model).
//!
//! Loading is all-or-nothing: tensors are applied to a clone of the backbone, which replaces it
//! only when every parameter of the backbone was found with the right shape. Keys of the file
//! that the backbone does not use (torchvision's `num_batches_tracked`, or the classifier when
//! `num_classes = 0`) are not an error; [`LoadReport::unused`] lists them.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

/// Where the state dict sits in the file and how its keys are prefixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// For `.pth` files whose state dict is nested, e.g. `Some("state_dict")` or `Some("model")`.
    pub top_level_key: Option<String>,
    /// A literal prefix removed from every key before matching, e.g. `module.`.
    pub strip_prefix: Option<String>,
}

/// What a successful load did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors of the backbone that were set from the file.
    pub loaded: usize,
    /// Keys of the file that the backbone has no use for, sorted.
    pub unused: Vec<String>,
}

/// A tensor whose shape in the file differs from the backbone's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misshaped {
    /// torchvision key.
    pub key: String,
    /// Shape the backbone needs, in PyTorch layout.
    pub expected: Vec<usize>,
    /// Shape in the file.
    pub found: Vec<usize>,
}

/// Why torchvision weights could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightError {
    /// The model has no backbone to load into.
    NoBackbone,
    /// The extension is neither `.pth`/`.pt`/`.bin` nor `.safetensors`.
    UnknownFormat(PathBuf),
    /// The file could not be read or parsed.
    Read {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// The file was read but does not fit the backbone; nothing was loaded.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// torchvision keys the backbone needs and the file lacks, sorted.
        missing: Vec<String>,
        /// Keys present with the wrong shape.
        misshaped: Vec<Misshaped>,
        /// Other per-tensor failures (dtype, unreadable data).
        other: Vec<String>,
        /// A likely cause, when one is recognisable.
        hint: Option<String>,
    },
}

impl fmt::Display for WeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        match self {
            WeightError::NoBackbone => write!(f, "the model has no backbone to load weights into"),
            WeightError::UnknownFormat(p) => {
                write!(f, "{}: unknown weight format (expected .pth, .pt, .bin or .safetensors)", p.display())
            }
            WeightError::Read { path, message } => {
                write!(f, "cannot read weights {}: {message}", path.display())
            }
            WeightError::Mismatch { path, missing, misshaped, other, hint } => {
                write!(f, "weights {} do not fit the backbone", path.display())?;
                if !missing.is_empty() {
                    write!(f, "\n  {} key(s) missing from the file:", missing.len())?;
                    for k in missing.iter().take(SHOWN) {
                        write!(f, "\n    {k}")?;
                    }
                    if missing.len() > SHOWN {
                        write!(f, "\n    ... and {} more", missing.len() - SHOWN)?;
                    }
                }
                if !misshaped.is_empty() {
                    write!(f, "\n  {} key(s) with the wrong shape:", misshaped.len())?;
                    for m in misshaped.iter().take(SHOWN) {
                        write!(f, "\n    {}: file has {:?}, backbone needs {:?}", m.key, m.found, m.expected)?;
                    }
                    if misshaped.len() > SHOWN {
                        write!(f, "\n    ... and {} more", misshaped.len() - SHOWN)?;
                    }
                }
                for o in other.iter().take(SHOWN) {
                    write!(f, "\n  {o}")?;
                }
                if let Some(h) = hint {
                    write!(f, "\n  hint: {h}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for WeightError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pytorch,
    Safetensors,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "pth" | "pt" | "bin" => Some(Format::Pytorch),
        "safetensors" => Some(Format::Safetensors),
        _ => None,
    }
}

/// Escapes regex metacharacters so a literal prefix can go into a [`KeyRemapper`] pattern.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// burn parameter name to torchvision's (batch norm `gamma`/`beta` are `weight`/`bias`).
fn torchvision_key(burn_path: &str) -> String {
    match burn_path.rsplit_once('.') {
        Some((head, "gamma")) => format!("{head}.weight"),
        Some((head, "beta")) => format!("{head}.bias"),
        _ => burn_path.to_string(),
    }
}

/// Loads a torchvision checkpoint into `module` (a backbone whose paths are torchvision keys);
/// all-or-nothing. See the module docs.
pub(crate) fn load_torchvision<M: Module>(
    module: &mut M,
    path: &Path,
    options: &LoadOptions,
) -> Result<LoadReport, WeightError> {
    let read_err = |message: String| WeightError::Read { path: path.to_path_buf(), message };
    let format = format_of(path).ok_or_else(|| WeightError::UnknownFormat(path.to_path_buf()))?;
    let remapper = match &options.strip_prefix {
        Some(p) if !p.is_empty() => Some(
            KeyRemapper::new()
                .add_pattern(format!("^{}", regex_escape(p)), "")
                .map_err(|e| read_err(format!("bad prefix {p:?}: {e}")))?,
        ),
        _ => None,
    };
    let tensors: Vec<_> = match format {
        Format::Pytorch => {
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            if let Some(k) = &options.top_level_key {
                store = store.with_top_level_key(k.clone());
            }
            if let Some(r) = remapper {
                store = store.remap(r);
            }
            let all = store.get_all_tensors().map_err(|e| read_err(e.to_string()))?;
            all.values().cloned().collect()
        }
        Format::Safetensors => {
            let mut store = SafetensorsStore::from_file(path).map_indices_contiguous(false);
            if let Some(r) = remapper {
                store = store.remap(r);
            }
            let all = store.get_all_tensors().map_err(|e| read_err(e.to_string()))?;
            all.values().cloned().collect()
        }
    };

    // PyTorch layout and names to burn's, then any float dtype (f16/bf16 checkpoints) to f32.
    let adapter: Box<dyn ModuleAdapter> = Box::new(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)));
    let mut candidate = module.clone();
    let result = candidate.apply(tensors, None, Some(adapter), true);

    let missing: Vec<String> = result.missing.iter().map(|(p, _)| torchvision_key(p)).collect();
    let mut misshaped = Vec::new();
    let mut other = Vec::new();
    for e in &result.errors {
        match e {
            ApplyError::ShapeMismatch { path, expected, found } => {
                let (mut expected, mut found) = (expected.to_vec(), found.to_vec());
                // Only linear weights are 2-D here; show them in PyTorch's [out, in] layout.
                if expected.len() == 2 && found.len() == 2 {
                    expected.reverse();
                    found.reverse();
                }
                misshaped.push(Misshaped { key: torchvision_key(path), expected, found });
            }
            other_error => other.push(other_error.to_string()),
        }
    }
    if missing.is_empty() && misshaped.is_empty() && other.is_empty() {
        *module = candidate;
        return Ok(LoadReport { loaded: result.applied.len(), unused: result.unused });
    }
    let hint = if result.applied.is_empty() && !result.unused.is_empty() {
        Some(format!(
            "no key matched; the file's keys look like `{}` (torchvision's are like \
             `conv1.weight` or `features.0.weight`): set a prefix to strip, or check the \
             architecture",
            result.unused[0]
        ))
    } else {
        first_conv_hint(&misshaped)
    };
    Err(WeightError::Mismatch { path: path.to_path_buf(), missing, misshaped, other, hint })
}

/// Recognises the usual reasons a torchvision checkpoint does not fit from the first conv.
fn first_conv_hint(misshaped: &[Misshaped]) -> Option<String> {
    let m = misshaped.iter().find(|m| m.key == "conv1.weight" || m.key == "features.0.weight")?;
    if m.expected.len() != 4 || m.found.len() != 4 {
        return None;
    }
    if m.expected[0] != m.found[0] {
        Some("the channel counts differ: torchvision weights need backbone_width = 1.0".into())
    } else if m.expected[1] != m.found[1] {
        Some(format!(
            "the file's first conv takes {} input channel(s), the backbone's {}: torchvision \
             weights need backbone_input = ImagenetRgb",
            m.found[1], m.expected[1]
        ))
    } else if m.expected[2] != m.found[2] {
        Some(format!(
            "the file's stem is {0}x{0}, the backbone's {1}x{1}: the CIFAR-style ResNet-18 \
             (image_size < 64) cannot take ImageNet weights",
            m.found[2], m.expected[2]
        ))
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Hand-written checkpoint writers, so tests can produce torchvision-shaped files without
    //! PyTorch or the `safetensors`/`zip` crates as direct dependencies:
    //! - safetensors: 8-byte little-endian header length, JSON header padded to 8 bytes, raw
    //!   little-endian data;
    //! - `.pth` as `torch.save` writes it since PyTorch 1.6: an uncompressed zip holding
    //!   `archive/data.pkl` (a protocol-2 pickle of an `OrderedDict` of
    //!   `torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False,
    //!   OrderedDict())`), one `archive/data/<key>` entry per storage, `archive/byteorder` and
    //!   `archive/version`.

    use std::io::Write;
    use std::path::Path;

    /// One tensor for [`write_safetensors`].
    pub enum Data {
        /// f32 values.
        F32(Vec<f32>),
        /// i64 values (torchvision's `num_batches_tracked`).
        I64(Vec<i64>),
    }

    /// Writes `tensors` (name, shape, data) as a safetensors file.
    pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Data)]) {
        let mut header = String::from("{");
        let mut offset = 0usize;
        for (i, (name, shape, data)) in tensors.iter().enumerate() {
            let (dtype, len) = match data {
                Data::F32(v) => ("F32", v.len() * 4),
                Data::I64(v) => ("I64", v.len() * 8),
            };
            if i > 0 {
                header.push(',');
            }
            header.push_str(&format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
                offset + len
            ));
            offset += len;
        }
        header.push('}');
        while !header.len().is_multiple_of(8) {
            header.push(' ');
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
        f.write_all(header.as_bytes()).unwrap();
        for (_, _, data) in tensors {
            match data {
                Data::F32(v) => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    f.write_all(&bytes).unwrap();
                }
                Data::I64(v) => {
                    for x in v {
                        f.write_all(&x.to_le_bytes()).unwrap();
                    }
                }
            }
        }
        f.flush().unwrap();
    }

    /// Writes `tensors` (name, shape, data) as a PyTorch zip checkpoint of a plain state dict.
    pub fn write_pth(path: &Path, tensors: &[(String, Vec<usize>, Data)]) {
        let mut pkl = vec![0x80, 2];
        let global = |o: &mut Vec<u8>, module: &str, name: &str| {
            o.push(b'c');
            o.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        };
        let text = |o: &mut Vec<u8>, s: &str| {
            o.push(b'X');
            o.extend_from_slice(&(s.len() as u32).to_le_bytes());
            o.extend_from_slice(s.as_bytes());
        };
        let int = |o: &mut Vec<u8>, v: usize| {
            o.push(b'J');
            o.extend_from_slice(&(v as i32).to_le_bytes());
        };
        let tuple = |o: &mut Vec<u8>, vs: &[usize]| {
            o.push(b'(');
            for &v in vs {
                int(o, v);
            }
            o.push(b't');
        };
        global(&mut pkl, "collections", "OrderedDict");
        pkl.extend_from_slice(b")R(");
        let mut entries: Vec<(String, Vec<u8>)> = vec![("archive/byteorder".into(), b"little".to_vec())];
        for (i, (name, shape, data)) in tensors.iter().enumerate() {
            let (storage, bytes): (&str, Vec<u8>) = match data {
                Data::F32(v) => ("FloatStorage", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Data::I64(v) => ("LongStorage", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            let numel = shape.iter().product::<usize>();
            let mut strides = vec![1; shape.len()];
            for d in (0..shape.len().saturating_sub(1)).rev() {
                strides[d] = strides[d + 1] * shape[d + 1];
            }
            text(&mut pkl, name);
            global(&mut pkl, "torch._utils", "_rebuild_tensor_v2");
            pkl.extend_from_slice(b"((");
            text(&mut pkl, "storage");
            global(&mut pkl, "torch", storage);
            text(&mut pkl, &i.to_string());
            text(&mut pkl, "cpu");
            int(&mut pkl, numel);
            pkl.extend_from_slice(b"tQ");
            int(&mut pkl, 0);
            tuple(&mut pkl, shape);
            tuple(&mut pkl, &strides);
            pkl.push(0x89); // requires_grad = False
            global(&mut pkl, "collections", "OrderedDict");
            pkl.extend_from_slice(b")Rt"); // backward hooks; end of args
            pkl.push(b'R');
            entries.push((format!("archive/data/{i}"), bytes));
        }
        pkl.extend_from_slice(b"u.");
        entries.insert(0, ("archive/data.pkl".into(), pkl));
        entries.push(("archive/version".into(), b"3\n".to_vec()));
        write_stored_zip(path, &entries);
    }

    /// An uncompressed zip archive (no zip64: entries and archive under 4 GiB).
    fn write_stored_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
        let mut table = [0u32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *t = c;
        }
        let crc32 = |data: &[u8]| !data.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8));
        let mut out = Vec::new();
        let mut central = Vec::new();
        // version needed 2.0, no flags, stored, time 00:00, date 1980-01-01
        let common = |o: &mut Vec<u8>, crc: u32, len: u32, name: &str| {
            for v in [20u16, 0, 0, 0, 0x21] {
                o.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, len, len] {
                o.extend_from_slice(&v.to_le_bytes());
            }
            o.extend_from_slice(&(name.len() as u16).to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        };
        for (name, data) in entries {
            let (crc, len, offset) = (crc32(data), data.len() as u32, out.len() as u32);
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            common(&mut out, crc, len, name);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes()); // made by
            common(&mut central, crc, len, name);
            for v in [0u16, 0, 0] {
                central.extend_from_slice(&v.to_le_bytes()); // comment, disk, internal attrs
            }
            central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        std::fs::write(path, out).unwrap();
    }
}

#[cfg(test)]
mod tests {
    //! Loading files with torchvision's key names and shapes, written by the tests themselves
    //! from tables kept independent of the model code. ResNet-18 is tested at full size
    //! (11.7M parameters, a 47 MB file); VGG-16 at full size for its conv part (14.7M, 59 MB) and
    //! with the whole classifier at width 1/8 (the full classifier alone is 124M parameters, a
    //! 0.5 GB file, which the parameter-count test covers by shape instead).

    use super::test_support::{Data, write_pth, write_safetensors};
    use super::*;
    use crate::model::{Backbone, BackboneConfig, BackboneInput, BackboneNet, BackboneVariant, Resnet18, Vgg16};
    use burn::tensor::{Device, Tensor};

    type Key = (String, Vec<usize>);

    /// torchvision `resnet18` state dict keys and shapes (with `num_batches_tracked` as `[]`);
    /// `w` scales the widths as `backbone_width` does.
    fn resnet18_keys(w: f32, num_classes: usize) -> Vec<Key> {
        let s = |c: usize| ((c as f32 * w).round() as usize).max(1);
        let mut k: Vec<Key> = vec![("conv1.weight".into(), vec![s(64), 3, 7, 7])];
        let bn = |k: &mut Vec<Key>, p: &str, c: usize| {
            for s in ["weight", "bias", "running_mean", "running_var"] {
                k.push((format!("{p}.{s}"), vec![c]));
            }
            k.push((format!("{p}.num_batches_tracked"), vec![]));
        };
        bn(&mut k, "bn1", s(64));
        let mut cin = s(64);
        for (l, c) in [(1, s(64)), (2, s(128)), (3, s(256)), (4, s(512))] {
            for b in 0..2 {
                let p = format!("layer{l}.{b}");
                let block_in = if b == 0 { cin } else { c };
                k.push((format!("{p}.conv1.weight"), vec![c, block_in, 3, 3]));
                bn(&mut k, &format!("{p}.bn1"), c);
                k.push((format!("{p}.conv2.weight"), vec![c, c, 3, 3]));
                bn(&mut k, &format!("{p}.bn2"), c);
                if b == 0 && l > 1 {
                    k.push((format!("{p}.downsample.0.weight"), vec![c, cin, 1, 1]));
                    bn(&mut k, &format!("{p}.downsample.1"), c);
                }
            }
            cin = c;
        }
        if num_classes > 0 {
            k.push(("fc.weight".into(), vec![num_classes, s(512)]));
            k.push(("fc.bias".into(), vec![num_classes]));
        }
        k
    }

    /// torchvision `vgg16` keys; `w` scales the widths as `backbone_width` does.
    fn vgg16_keys(w: f32, num_classes: usize) -> Vec<Key> {
        let s = |c: usize| ((c as f32 * w).round() as usize).max(1);
        let convs = [
            (0, 64),
            (2, 64),
            (5, 128),
            (7, 128),
            (10, 256),
            (12, 256),
            (14, 256),
            (17, 512),
            (19, 512),
            (21, 512),
            (24, 512),
            (26, 512),
            (28, 512),
        ];
        let mut k = Vec::new();
        let mut cin = 3;
        for (i, c) in convs {
            k.push((format!("features.{i}.weight"), vec![s(c), cin, 3, 3]));
            k.push((format!("features.{i}.bias"), vec![s(c)]));
            cin = s(c);
        }
        if num_classes > 0 {
            let h = s(4096);
            for (i, o, inp) in [(0, h, cin * 49), (3, h, h), (6, num_classes, h)] {
                k.push((format!("classifier.{i}.weight"), vec![o, inp]));
                k.push((format!("classifier.{i}.bias"), vec![o]));
            }
        }
        k
    }

    /// Deterministic distinct values: tensor `t`, element `i`.
    fn value(t: usize, i: usize) -> f32 {
        let h = (t as u64 * 1_000_003 + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        (h % 20_000) as f32 / 10_000.0 - 1.0 + t as f32 * 1e-3
    }

    fn write(path: &Path, keys: &[Key]) {
        write_safetensors(path, &tensors(keys));
    }

    fn tensors(keys: &[Key]) -> Vec<(String, Vec<usize>, Data)> {
        keys.iter()
            .enumerate()
            .map(|(t, (name, shape))| {
                let n = shape.iter().product::<usize>();
                let data = if name.ends_with("num_batches_tracked") {
                    Data::I64(vec![7])
                } else if name.ends_with("running_var") {
                    Data::F32((0..n).map(|i| 1.0 + value(t, i).abs()).collect())
                } else {
                    Data::F32((0..n).map(|i| value(t, i)).collect())
                };
                (name.clone(), shape.clone(), data)
            })
            .collect()
    }

    fn index_of(keys: &[Key], name: &str) -> usize {
        keys.iter().position(|(k, _)| k == name).unwrap()
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn backbone(arch: Backbone, width: f32, variant: BackboneVariant, classes: usize) -> BackboneNet {
        BackboneConfig { arch, width, variant, input: BackboneInput::ImagenetRgb, num_classes: classes }
            .init(&Device::flex())
    }

    fn resnet(net: &BackboneNet) -> &Resnet18 {
        let BackboneNet::Resnet18(r) = net else { unreachable!("built as a ResNet-18") };
        r
    }

    fn vgg(net: &BackboneNet) -> &Vgg16 {
        let BackboneNet::Vgg16(v) = net else { unreachable!("built as a VGG-16") };
        v
    }

    #[test]
    fn resnet18_full_size_safetensors_loads_with_torchvision_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resnet18.safetensors");
        let keys = resnet18_keys(1.0, 1000);
        let params: usize = keys
            .iter()
            .filter(|(k, _)| !k.contains("running") && !k.contains("num_batches"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(params, 11_689_512, "the key table itself is torchvision's");
        write(&path, &keys);

        let mut net = backbone(Backbone::Resnet18, 1.0, BackboneVariant::Imagenet, 1000);
        let report = net.load_torchvision(&path, &LoadOptions::default()).unwrap();
        let unused: Vec<_> = report.unused.iter().filter(|k| !k.ends_with("num_batches_tracked")).collect();
        assert!(unused.is_empty(), "unused: {unused:?}");
        assert_eq!(report.loaded, keys.len() - report.unused.len());

        let r = resnet(&net);
        let t = index_of(&keys, "conv1.weight");
        assert_eq!(values(r.conv1.weight.val())[..5], (0..5).map(|i| value(t, i)).collect::<Vec<_>>()[..]);
        let t = index_of(&keys, "bn1.weight");
        assert_eq!(values(r.bn1.gamma.val()), (0..64).map(|i| value(t, i)).collect::<Vec<_>>());
        let t = index_of(&keys, "layer4.0.downsample.1.running_var");
        let ds = r.layer4[0].downsample.as_ref().unwrap();
        let crate::model::backbone::resnet::DownsampleLayer::Norm(bn) = &ds[1] else {
            panic!("downsample.1 is the batch norm")
        };
        assert_eq!(values(bn.running_var.value())[3], 1.0 + value(t, 3).abs());
        // fc.weight is [1000, 512] in the file and [512, 1000] in burn.
        let t = index_of(&keys, "fc.weight");
        let fc = values(r.fc.as_ref().unwrap().weight.val());
        let (row, col) = (17, 345); // torchvision fc.weight[row][col]
        assert_eq!(fc[col * 1000 + row], value(t, row * 512 + col));

        // The loaded net runs.
        let y = net.classify(Tensor::zeros([1, 1, 64, 64], &Device::flex()));
        assert_eq!(y.dims(), [1, 1000]);
    }

    #[test]
    fn vgg16_full_size_conv_part_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg16_features.safetensors");
        let keys = vgg16_keys(1.0, 0);
        write(&path, &keys);
        for variant in [BackboneVariant::Imagenet, BackboneVariant::Small] {
            let mut net = backbone(Backbone::Vgg16, 1.0, variant, 0);
            let report = net.load_torchvision(&path, &LoadOptions::default()).unwrap();
            assert_eq!((report.loaded, report.unused.len()), (26, 0));
            let v = vgg(&net);
            let crate::model::backbone::vgg::VggFeature::Conv(c) = &v.features[28] else {
                panic!("features.28 is a conv")
            };
            let t = index_of(&keys, "features.28.bias");
            assert_eq!(values(c.bias.as_ref().unwrap().val())[100], value(t, 100));
        }
    }

    #[test]
    fn vgg16_classifier_loads_transposed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg16_small.safetensors");
        let keys = vgg16_keys(0.125, 10);
        write(&path, &keys);
        let mut net = backbone(Backbone::Vgg16, 0.125, BackboneVariant::Imagenet, 10);
        let report = net.load_torchvision(&path, &LoadOptions::default()).unwrap();
        assert_eq!((report.loaded, report.unused.len()), (32, 0));
        let v = vgg(&net);
        let crate::model::backbone::vgg::VggClassifierLayer::Linear(l) = &v.classifier[3] else {
            panic!("classifier.3 is a linear")
        };
        let t = index_of(&keys, "classifier.3.weight");
        let w = values(l.weight.val()); // burn [in, out] = [512, 512]
        let (row, col) = (5, 300);
        assert_eq!(w[col * 512 + row], value(t, row * 512 + col));
        assert_eq!(net.classify(Tensor::zeros([2, 1, 64, 64], &Device::flex())).dims(), [2, 10]);
    }

    #[test]
    fn missing_and_misshaped_keys_are_named_and_nothing_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.safetensors");
        let mut keys = resnet18_keys(1.0, 1000);
        keys.retain(|(k, _)| k != "layer3.1.bn2.running_var" && k != "layer2.0.conv1.weight");
        for (k, s) in keys.iter_mut() {
            if k == "fc.weight" {
                *s = vec![1000, 256];
            }
        }
        write(&path, &keys);
        let mut net = backbone(Backbone::Resnet18, 1.0, BackboneVariant::Imagenet, 1000);
        let before = values(resnet(&net).conv1.weight.val());
        let err = net.load_torchvision(&path, &LoadOptions::default()).unwrap_err();
        let WeightError::Mismatch { missing, misshaped, .. } = &err else { panic!("{err}") };
        assert_eq!(missing, &["layer2.0.conv1.weight", "layer3.1.bn2.running_var"]);
        assert_eq!(
            misshaped,
            &[Misshaped { key: "fc.weight".into(), expected: vec![1000, 512], found: vec![1000, 256] }]
        );
        let text = err.to_string();
        for k in ["layer2.0.conv1.weight", "layer3.1.bn2.running_var", "fc.weight"] {
            assert!(text.contains(k), "{text}");
        }
        // All or nothing: conv1 was in the file but the backbone kept its own values.
        assert_eq!(values(resnet(&net).conv1.weight.val()), before);
    }

    #[test]
    fn wrong_variant_or_input_gets_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resnet18.safetensors");
        write(&path, &resnet18_keys(1.0, 0));
        // CIFAR-style stem.
        let mut small = backbone(Backbone::Resnet18, 1.0, BackboneVariant::Small, 0);
        let err = small.load_torchvision(&path, &LoadOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("conv1.weight: file has [64, 3, 7, 7], backbone needs [64, 3, 3, 3]"),
            "{err}"
        );
        assert!(err.to_string().contains("CIFAR-style"), "{err}");
        // Gray input.
        let mut gray = BackboneConfig {
            arch: Backbone::Resnet18,
            width: 1.0,
            variant: BackboneVariant::Imagenet,
            input: BackboneInput::Gray,
            num_classes: 0,
        }
        .init(&Device::flex());
        let err = gray.load_torchvision(&path, &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("ImagenetRgb"), "{err}");
    }

    #[test]
    fn prefixed_keys_load_with_strip_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.safetensors");
        let keys: Vec<Key> = vgg16_keys(0.125, 0).into_iter().map(|(k, s)| (format!("module.{k}"), s)).collect();
        write(&path, &keys);
        let mut net = backbone(Backbone::Vgg16, 0.125, BackboneVariant::Small, 0);
        let err = net.load_torchvision(&path, &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no key matched"), "{err}");
        let options = LoadOptions { strip_prefix: Some("module.".into()), ..LoadOptions::default() };
        assert_eq!(net.load_torchvision(&path, &options).unwrap().loaded, 26);
    }

    #[test]
    fn pth_checkpoints_load_like_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let x = Tensor::random([1, 1, 64, 64], burn::tensor::Distribution::Default, &device);
        for (arch, keys) in [(Backbone::Vgg16, vgg16_keys(0.125, 10)), (Backbone::Resnet18, resnet18_keys(0.125, 10))] {
            let pth = dir.path().join(format!("{arch:?}.pth"));
            let st = dir.path().join(format!("{arch:?}.safetensors"));
            write_pth(&pth, &tensors(&keys));
            write(&st, &keys);
            let mut from_pth = backbone(arch, 0.125, BackboneVariant::Imagenet, 10);
            let mut from_st = backbone(arch, 0.125, BackboneVariant::Imagenet, 10);
            let report = from_pth.load_torchvision(&pth, &LoadOptions::default()).unwrap();
            from_st.load_torchvision(&st, &LoadOptions::default()).unwrap();
            let unused = report.unused.iter().filter(|k| !k.ends_with("num_batches_tracked"));
            assert_eq!(unused.count(), 0, "{arch:?}: {:?}", report.unused);
            assert_eq!(from_pth.classify(x.clone()).into_data(), from_st.classify(x.clone()).into_data(), "{arch:?}");
        }
        // The .pth path names missing keys too, with torchvision's sparse indices.
        let mut keys = vgg16_keys(0.125, 0);
        keys.retain(|(k, _)| k != "features.17.bias");
        let pth = dir.path().join("broken.pth");
        write_pth(&pth, &tensors(&keys));
        let mut net = backbone(Backbone::Vgg16, 0.125, BackboneVariant::Small, 0);
        let err = net.load_torchvision(&pth, &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(&err, WeightError::Mismatch { missing, misshaped, .. }
                if missing == &["features.17.bias"] && misshaped.is_empty()),
            "{err}"
        );
    }

    #[test]
    fn unreadable_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = backbone(Backbone::Resnet18, 0.125, BackboneVariant::Small, 0);
        let odd = dir.path().join("weights.h5");
        assert!(matches!(net.load_torchvision(&odd, &LoadOptions::default()), Err(WeightError::UnknownFormat(_))));
        for name in ["missing.safetensors", "missing.pth"] {
            let err = net.load_torchvision(dir.path().join(name), &LoadOptions::default()).unwrap_err();
            assert!(matches!(err, WeightError::Read { .. }), "{err}");
        }
        let garbage = dir.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"not a safetensors file").unwrap();
        let err = net.load_torchvision(&garbage, &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, WeightError::Read { .. }), "{err}");
    }
}
