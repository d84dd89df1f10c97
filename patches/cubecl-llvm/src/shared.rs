//! The `shared` items of the real crate that `cubecl-cuda` names.

pub mod lowered_features {
    //! Narrowing a device's advertised features to what the LLVM backend lowers.

    use cubecl_core::ir::DeviceProperties;

    /// The GPU target a device's features are narrowed for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum GpuTarget {
        Nvptx,
    }

    /// `cubecl-cuda` calls this only when its LLVM backend is selected, which sweep's build (the
    /// `cpp` feature) never does; with no LLVM here that backend compiles nothing, so there is nothing
    /// to narrow the features to and they are left as they are.
    pub fn restrict_features(_props: &mut DeviceProperties, _target: GpuTarget) {}
}
