//! A small GGUF *writer* for tests: builds files byte by byte so the reader can be checked on
//! well-formed files it has never seen (every value type, nested arrays, versions 2 and 3, custom
//! alignment) and on deliberately broken ones (lying counts, bad type ids, data past the end).
//!
//! Layout written (all little-endian), as the GGUF spec describes it:
//!   magic "GGUF", version u32, tensor count u64, metadata count u64,
//!   metadata: key (u64 length + bytes), value type u32, value,
//!   tensor infos: name, n_dims u32, dims u64 * n_dims, type u32, offset u64 (relative to data),
//!   zero padding up to the alignment, then the tensor data (no padding without tensors).
//!
//! The well-formed path (`kv`, `tensor`) computes sizes and offsets itself; the raw path
//! (`kv_raw`, `tensor_raw`, the count overrides) writes whatever the test asks for.

use torchlight::gguf::{Array, ScalarType, Value};
use torchlight::quant::GgmlType;

/// GGUF metadata value type ids.
pub mod value_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// A length-prefixed GGUF string.
pub fn string_bytes(s: impl AsRef<[u8]>) -> Vec<u8> {
    let s = s.as_ref();
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// The type id of `v` as GGUF writes it.
pub fn type_id(v: &Value) -> u32 {
    use value_type::*;
    match v {
        Value::U8(_) => U8,
        Value::I8(_) => I8,
        Value::U16(_) => U16,
        Value::I16(_) => I16,
        Value::U32(_) => U32,
        Value::I32(_) => I32,
        Value::F32(_) => F32,
        Value::Bool(_) => BOOL,
        Value::String(_) => STRING,
        Value::Array(_) | Value::Skipped { .. } => ARRAY,
        Value::U64(_) => U64,
        Value::I64(_) => I64,
        Value::F64(_) => F64,
    }
}

/// The bytes of `v` without its type id.
pub fn value_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::U8(x) => x.to_le_bytes().to_vec(),
        Value::I8(x) => x.to_le_bytes().to_vec(),
        Value::U16(x) => x.to_le_bytes().to_vec(),
        Value::I16(x) => x.to_le_bytes().to_vec(),
        Value::U32(x) => x.to_le_bytes().to_vec(),
        Value::I32(x) => x.to_le_bytes().to_vec(),
        Value::F32(x) => x.to_le_bytes().to_vec(),
        Value::Bool(x) => vec![*x as u8],
        Value::String(s) => string_bytes(s),
        Value::U64(x) => x.to_le_bytes().to_vec(),
        Value::I64(x) => x.to_le_bytes().to_vec(),
        Value::F64(x) => x.to_le_bytes().to_vec(),
        Value::Array(a) => array_bytes(a),
        Value::Skipped { .. } => panic!("a skipped array has no items to write"),
    }
}

fn array_bytes(array: &Array) -> Vec<u8> {
    let (elem, items) = match array {
        Array::Scalars { ty, bytes } => (ty.id(), bytes.clone()),
        Array::Strings(strings) => (value_type::STRING, strings.iter().flat_map(string_bytes).collect()),
        Array::Arrays(arrays) => (value_type::ARRAY, arrays.iter().flat_map(array_bytes).collect()),
    };
    let mut out = elem.to_le_bytes().to_vec();
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    out.extend(items);
    out
}

/// `items` as the reader holds them: an array of their type, which the first item gives (an
/// empty list is an empty array of u8). Mixed types are a test bug.
pub fn array(items: Vec<Value>) -> Value {
    let elem = items.first().map_or(value_type::U8, type_id);
    assert!(items.iter().all(|v| type_id(v) == elem), "a GGUF array holds one element type");
    Value::Array(match elem {
        value_type::STRING => Array::Strings(items.iter().filter_map(Value::as_str).collect()),
        value_type::ARRAY => Array::Arrays(items.iter().filter_map(|v| v.as_array().cloned()).collect()),
        id => Array::Scalars {
            ty: ScalarType::from_id(id).expect("a scalar type"),
            bytes: items.iter().flat_map(value_bytes).collect(),
        },
    })
}

struct TensorEntry {
    name: Vec<u8>,
    dims: Vec<u64>,
    type_id: u32,
    /// Relative to the data section; `None`: the next aligned offset after the previous tensor.
    offset: Option<u64>,
    /// Bytes of data this tensor owns in the data section.
    data_len: u64,
}

/// Where things ended up in a built file, as the writer laid them out.
#[derive(Debug, Clone)]
pub struct Layout {
    /// End of the last tensor info: the header proper, before the alignment padding.
    pub header_len: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// Per tensor, in order: (offset relative to the data section, bytes of data).
    pub tensors: Vec<(u64, u64)>,
}

pub struct GgufWriter {
    version: u32,
    alignment: u64,
    kvs: Vec<Vec<u8>>,
    tensors: Vec<TensorEntry>,
    tensor_count: Option<u64>,
    kv_count: Option<u64>,
}

impl GgufWriter {
    pub fn new(version: u32) -> Self {
        Self { version, alignment: 32, kvs: Vec::new(), tensors: Vec::new(), tensor_count: None, kv_count: None }
    }

    /// Writes `general.alignment` (as a u32, like llama.cpp) and lays the data out with it.
    pub fn alignment(mut self, alignment: u32) -> Self {
        self.alignment = alignment as u64;
        self.kv("general.alignment", Value::U32(alignment))
    }

    pub fn kv(self, key: &str, value: Value) -> Self {
        let id = type_id(&value);
        self.kv_raw(key, id, &value_bytes(&value))
    }

    /// A key-value pair with any key bytes, any type id and any payload.
    pub fn kv_raw(mut self, key: impl AsRef<[u8]>, type_id: u32, payload: &[u8]) -> Self {
        let mut out = string_bytes(key);
        out.extend_from_slice(&type_id.to_le_bytes());
        out.extend_from_slice(payload);
        self.kvs.push(out);
        self
    }

    /// A well-formed tensor: its size from the type's block layout, placed at the next aligned
    /// offset.
    pub fn tensor(mut self, name: &str, dims: &[u64], ty: GgmlType) -> Self {
        let n: u64 = dims.iter().product();
        let data_len = ty.bytes_for(n).expect("test tensor is a whole number of blocks");
        self.tensors.push(TensorEntry {
            name: name.as_bytes().to_vec(),
            dims: dims.to_vec(),
            type_id: ty.id(),
            offset: None,
            data_len,
        });
        self
    }

    /// A tensor info with any name, dims, type id and relative offset, owning `data_len` bytes of
    /// data (only real bytes in the file: the info may claim more).
    pub fn tensor_raw(mut self, name: impl AsRef<[u8]>, dims: &[u64], type_id: u32, offset: u64, data_len: u64) -> Self {
        self.tensors.push(TensorEntry {
            name: name.as_ref().to_vec(),
            dims: dims.to_vec(),
            type_id,
            offset: Some(offset),
            data_len,
        });
        self
    }

    /// Claims this many tensors in the header, whatever follows.
    pub fn tensor_count(mut self, n: u64) -> Self {
        self.tensor_count = Some(n);
        self
    }

    /// Claims this many key-value pairs in the header, whatever follows.
    pub fn kv_count(mut self, n: u64) -> Self {
        self.kv_count = Some(n);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.build_with_layout().0
    }

    pub fn build_with_layout(self) -> (Vec<u8>, Layout) {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.tensor_count.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            out.extend_from_slice(kv);
        }

        // Relative offsets first: each automatic one follows the previous tensor, aligned.
        let mut placed = Vec::new();
        let mut next = 0u64;
        for t in &self.tensors {
            let offset = t.offset.unwrap_or_else(|| next.next_multiple_of(self.alignment));
            next = offset.saturating_add(t.data_len);
            placed.push((offset, t.data_len));
        }

        for (t, &(offset, _)) in self.tensors.iter().zip(&placed) {
            out.extend(string_bytes(&t.name));
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        let header_len = out.len() as u64;
        let data_offset = header_len.next_multiple_of(self.alignment);
        // Padding only when tensor data follows: a file of metadata alone then ends right after
        // its last value, so tests can count exactly the bytes left after a lying length.
        if !self.tensors.is_empty() {
            out.resize(data_offset as usize, 0);
        }

        // Tensor data: a recognisable byte pattern per tensor, zeros in the gaps. Raw tensors
        // whose claimed range is absurd own no bytes, so the file stays small.
        for (i, &(offset, len)) in placed.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let start = (data_offset + offset) as usize;
            let end = start + len as usize;
            if out.len() < end {
                out.resize(end, 0);
            }
            for (j, b) in out[start..end].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(j as u8);
            }
        }
        (out, Layout { header_len, data_offset, tensors: placed })
    }
}
