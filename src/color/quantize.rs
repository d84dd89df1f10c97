//! Chroma quantization for classification.
