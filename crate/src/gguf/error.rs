use thiserror::Error;

/// Everything that can be wrong with a GGUF file, in words a person can act on.
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("not a GGUF file: it starts with {found:?}, a GGUF file starts with \"GGUF\"")]
    NotGguf { found: String },
    #[error("GGUF version {0} is not supported (Torchlight reads versions 2 and 3, little-endian)")]
    UnsupportedVersion(u32),
    #[error("truncated file: {what} needs bytes up to offset {needed}, but the file has only {len}")]
    Truncated { what: String, needed: u64, len: u64 },
    #[error("{what}: a length of {claimed} cannot fit in the {remaining} bytes left in the file (the file is truncated or corrupt)")]
    LengthTooLarge { what: String, claimed: u64, remaining: u64 },
    #[error("metadata {key}: unknown value type id {id}")]
    UnknownValueType { key: String, id: u32 },
    #[error("tensor {name}: unknown tensor type id {id}")]
    UnknownTensorType { name: String, id: u32 },
    #[error("tensor {name}: its data [{start}, {end}) lies outside the file ({len} bytes): the file is truncated or corrupt")]
    TensorOutOfRange { name: String, start: u64, end: u64, len: u64 },
    #[error("metadata key {0} is missing")]
    MissingKey(String),
    #[error("metadata {key}: expected {expected}, found {found}")]
    WrongType { key: String, expected: &'static str, found: &'static str },
    #[error("{what}: the header would keep more than {limit} bytes in memory, far more than any model's metadata and tensor table need (the file is corrupt or hostile)")]
    HeaderTooLarge { what: String, limit: u64 },
    #[error("metadata {key}: the header's arrays have more than {limit} strings and inner arrays, far more than any vocabulary (the file is corrupt or hostile)")]
    TooManyItems { key: String, limit: u64 },
    #[error("malformed GGUF: {0}")]
    Malformed(String),
    #[error("cannot read the model file: {0}")]
    Io(#[from] std::io::Error),
}
