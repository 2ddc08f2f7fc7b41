use std::collections::BTreeMap;

use super::cursor::Cursor;
use super::value::Array;
use super::{ByteSource, GgufError, Value};
use crate::quant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;
/// Tensor infos reserved ahead of reading them: a count passes the file-size check when each
/// could fit, but one in memory is larger than its smallest encoding, so the table grows as
/// they are actually read beyond this.
const RESERVE_LIMIT: u64 = 4096;

/// A parsed GGUF header: metadata, the tensor table, and where the tensor data lies.
#[derive(Debug)]
pub struct GgufFile {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    pub file_len: u64,
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (the contiguous dimension).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Absolute offset of the tensor's first byte in the file.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elems(&self) -> u64 {
        self.dims.iter().product()
    }
}

impl GgufFile {
    /// Parses and validates the header. Tensor data is not read, only checked to lie inside the
    /// file.
    pub fn read(source: &mut dyn ByteSource) -> Result<Self, GgufError> {
        let mut r = Cursor::new(source);
        let magic = r.bytes::<4>("the magic number")?;
        if &magic != MAGIC {
            return Err(GgufError::NotGguf { found: String::from_utf8_lossy(&magic).into_owned() });
        }
        let version = r.u32("the version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion(version));
        }
        // Every tensor info and key-value pair takes at least 8 bytes; a count beyond that is a lie.
        let tensor_count = r.count("the tensor count", 8)?;
        let kv_count = r.count("the metadata count", 8)?;

        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = r.key()?;
            let type_id = r.u32(&key)?;
            let value = r.value(&key, type_id)?;
            metadata.insert(key, value);
        }

        let mut raw_tensors = Vec::with_capacity(tensor_count.min(RESERVE_LIMIT) as usize);
        for _ in 0..tensor_count {
            let name = r.string("a tensor name")?;
            let n_dims = r.u32(&name)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(GgufError::Malformed(format!("tensor {name} has {n_dims} dimensions")));
            }
            r.hold((std::mem::size_of::<TensorInfo>() + 8 * n_dims as usize) as u64, || format!("tensor {name}"))?;
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&name)?);
            }
            let type_id = r.u32(&name)?;
            let rel_offset = r.u64(&name)?;
            raw_tensors.push((name, dims, type_id, rel_offset));
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => return Err(GgufError::Malformed(format!("general.alignment is {v:?}, not a power of two"))),
            },
        };
        let file_len = r.len();
        let data_offset = r.pos.next_multiple_of(alignment);

        let mut tensors = Vec::with_capacity(raw_tensors.len());
        for (name, dims, type_id, rel_offset) in raw_tensors {
            let ggml_type = GgmlType::from_id(type_id)
                .ok_or_else(|| GgufError::UnknownTensorType { name: name.clone(), id: type_id })?;
            let n_elems = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
            let n_bytes = n_elems
                .filter(|_| dims[0] % ggml_type.block_elems() as u64 == 0)
                .and_then(|n| ggml_type.bytes_for(n))
                .ok_or_else(|| {
                    GgufError::Malformed(format!(
                        "tensor {name}: shape {dims:?} is not a whole number of {ggml_type} blocks per row"
                    ))
                })?;
            if rel_offset % alignment != 0 {
                return Err(GgufError::Malformed(format!(
                    "tensor {name}: offset {rel_offset} is not a multiple of the alignment {alignment}"
                )));
            }
            let start = data_offset.checked_add(rel_offset);
            let end = start.and_then(|s| s.checked_add(n_bytes));
            match (start, end) {
                (Some(start), Some(end)) if end <= file_len => {
                    tensors.push(TensorInfo { name, dims, ggml_type, offset: start, n_bytes })
                }
                _ => {
                    return Err(GgufError::TensorOutOfRange {
                        name,
                        start: start.unwrap_or(u64::MAX),
                        end: end.unwrap_or(u64::MAX),
                        len: file_len,
                    })
                }
            }
        }

        Ok(Self { version, metadata, tensors, data_offset, file_len })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    fn wrong(key: &str, expected: &'static str, v: &Value) -> GgufError {
        GgufError::WrongType { key: key.to_string(), expected, found: v.type_name() }
    }

    pub fn u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| Self::wrong(key, "a non-negative integer", v))
    }

    pub fn usize(&self, key: &str) -> Result<usize, GgufError> {
        let n = self.u64(key)?;
        usize::try_from(n).map_err(|_| GgufError::Malformed(format!("{key} = {n} is too large")))
    }

    pub fn f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f64().map(|x| x as f32).ok_or_else(|| Self::wrong(key, "a number", v))
    }

    pub fn str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::wrong(key, "a string", v))
    }

    pub fn array(&self, key: &str) -> Result<&Array, GgufError> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| Self::wrong(key, "an array", v))
    }

    pub fn bool(&self, key: &str) -> Result<bool, GgufError> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| Self::wrong(key, "a bool", v))
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.str("general.architecture")
    }
}
