//! GGUF: the model file format. Parses the header (metadata and tensor table) from any
//! [`ByteSource`], validating every length and offset against the file's size, and reads
//! nothing of the tensor data itself: callers stream that range by range. A header is
//! untrusted input: what it keeps in memory is bounded by what each key is for (see `cursor`).

mod cursor;
mod error;
mod reader;
mod source;
mod value;

pub use error::GgufError;
pub use reader::{GgufFile, TensorInfo};
pub use source::{ByteSource, SliceSource};
#[cfg(not(target_arch = "wasm32"))]
pub use source::FileSource;
pub use value::{Array, Item, ScalarType, Strings, Value};
