//! sweep's stand-in for `cubecl-llvm` 0.11.3 (see this crate's Cargo.toml for why it exists and when
//! it can go).
//!
//! It has exactly the items `cubecl-cuda` 0.11.3 names: [`nvptx::ptx_version::PtxVersion`] (the real
//! file, unchanged), [`shared::lowered_features`], and the compiler types of the LLVM backend. With
//! `cubecl-cuda`'s `cpp` feature on, as sweep builds it, kernels go through NVRTC and none of these
//! compiles anything; if the LLVM backend is selected anyway, [`PlironCompiler`] answers every kernel
//! with an error saying it is not built in, never a wrong kernel.

use cubecl_core::Compiler;
use cubecl_core::environment::backtrace::BackTrace;
use cubecl_core::ir::amd::GfxArch;
use cubecl_core::ir::nvidia::SmArch;
use cubecl_core::prelude::KernelDefinition;
use cubecl_runtime::compiler::CompilationError;
use cubecl_runtime::kernel::BufferIOAttr;

pub mod nvptx {
    //! The NVPTX items `cubecl-cuda` names.
    pub mod ptx_version;
}
pub mod shared;

use nvptx::ptx_version::PtxVersion;

/// The targets of the real crate that `cubecl-cuda` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    #[default]
    Cpu,
    Nvptx,
}

/// The LLVM backend's compiler, here without LLVM.
#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    pub target: LlvmTarget,
}

/// The options the real compiler takes, with the fields `cubecl-cuda` sets.
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    pub arch: Option<GfxArch>,
    pub sm_arch: Option<SmArch>,
    pub ptx_version: Option<PtxVersion>,
    pub grid_constants: bool,
}

/// A compiled NVPTX module, as the real crate lays it out (`cubecl-cuda` reads these fields).
#[derive(Clone, Debug)]
pub struct NvptxModule {
    /// NUL-terminated PTX assembly.
    pub ptx: Vec<core::ffi::c_char>,
    /// Kernel entry point symbol.
    pub entrypoint: String,
    /// IR for logging and cache keys.
    pub ir: String,
    /// Shared memory required per launch, in bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes in binding order.
    pub io: Vec<BufferIOAttr>,
}

/// What the real compiler produces. Never produced here; `Cpu` stands for the real crate's CPU JIT
/// engine, so that a match on `NvptxCode` alone stays non-exhaustive as it is against the real crate.
#[derive(Clone, Debug)]
pub enum PlironArtifact {
    Cpu,
    NvptxCode(NvptxModule),
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlironArtifact::Cpu => f.write_str("(no CPU artifact: LLVM is not built in)"),
            PlironArtifact::NvptxCode(module) => f.write_str(&module.ir),
        }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;

    fn compile(
        &mut self,
        _kernel: KernelDefinition,
        _options: &PlironOptions,
    ) -> Result<PlironArtifact, CompilationError> {
        Err(CompilationError::Generic {
            reason: "cubecl's LLVM backend is not built into this program (sweep replaces \
                     cubecl-llvm with a stand-in so that it builds offline); its CUDA kernels are \
                     compiled by NVRTC, which cubecl-cuda's `cpp` feature selects"
                .to_string(),
            backtrace: BackTrace::capture(),
        })
    }

    fn extension(&self) -> &'static str {
        match self.target {
            LlvmTarget::Cpu => "plir",
            LlvmTarget::Nvptx => "ll",
        }
    }

    fn lang_tag(&self) -> &'static str {
        match self.target {
            LlvmTarget::Cpu => "mlir",
            LlvmTarget::Nvptx => "llvm",
        }
    }
}
