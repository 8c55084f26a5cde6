//! [`Precision`]: the arithmetic an embedding model's encoder runs in, named in pipeline
//! files, manifests and model ids.

/// The arithmetic of the encoder's linear layers on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout: the same numbers as sentence-transformers.
    #[default]
    F32,
    /// Weights and layer inputs rounded to bfloat16, products summed in f32
    /// ([`crate::bf16`]): on AVX-512 BF16 about twice the products per cycle, within 1e-3
    /// of the f32 vectors' direction. Attention and normalisation stay f32.
    Bf16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The name a pipeline file uses (`f32`, `fp32`, `bf16`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" | "fp32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    /// A model id with this precision: the files' id for f32, `+bf16` after it otherwise, so
    /// that vectors of one precision are never taken for the other's.
    pub fn model_id(self, files_id: &str) -> String {
        match self {
            Precision::F32 => files_id.to_string(),
            p => format!("{files_id}+{}", p.as_str()),
        }
    }
}
