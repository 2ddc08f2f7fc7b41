/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
    /// An array the reader stepped over without keeping it, too long for what its key is for
    /// (see `cursor::OTHER_ARRAY_LIMIT`): only its length is known.
    Skipped { items: u64 },
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Skipped { .. } => "an array too long to keep",
        }
    }

    /// Any non-negative integer, whatever width the writer chose for it.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// The value types of a fixed size: all but strings and arrays. The discriminants are the
/// GGUF type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ScalarType {
    /// `None` for strings (8), arrays (9) and ids GGUF does not define.
    pub fn from_id(id: u32) -> Option<Self> {
        use ScalarType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    /// Bytes one value takes in the file, and in an [`Array`].
    pub fn size(self) -> usize {
        use ScalarType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
        }
    }

    /// The value whose little-endian encoding starts `bytes`; `None` when `bytes` is shorter
    /// than `size()`, or for a bool byte other than 0 or 1.
    pub fn decode(self, bytes: &[u8]) -> Option<Value> {
        fn le<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
            bytes.get(..N)?.try_into().ok()
        }
        Some(match self {
            ScalarType::U8 => Value::U8(*bytes.first()?),
            ScalarType::I8 => Value::I8(i8::from_le_bytes(le(bytes)?)),
            ScalarType::U16 => Value::U16(u16::from_le_bytes(le(bytes)?)),
            ScalarType::I16 => Value::I16(i16::from_le_bytes(le(bytes)?)),
            ScalarType::U32 => Value::U32(u32::from_le_bytes(le(bytes)?)),
            ScalarType::I32 => Value::I32(i32::from_le_bytes(le(bytes)?)),
            ScalarType::F32 => Value::F32(f32::from_le_bytes(le(bytes)?)),
            ScalarType::Bool => match *bytes.first()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return None,
            },
            ScalarType::U64 => Value::U64(u64::from_le_bytes(le(bytes)?)),
            ScalarType::I64 => Value::I64(i64::from_le_bytes(le(bytes)?)),
            ScalarType::F64 => Value::F64(f64::from_le_bytes(le(bytes)?)),
        })
    }
}

/// A metadata array, held as compactly as its items allow: numbers as the file stores them (a
/// vocabulary's scores take 4 bytes a token, not the 32 of a `Value` each), strings in one
/// buffer. Each array knows its item type, even when empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// Little-endian values of one type, `ty.size()` bytes each.
    Scalars { ty: ScalarType, bytes: Vec<u8> },
    Strings(Strings),
    /// Arrays of arrays, each inner one with its own item type, as GGUF allows.
    Arrays(Vec<Array>),
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::Scalars { ty, bytes } => bytes.len() / ty.size(),
            Array::Strings(s) => s.len(),
            Array::Arrays(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> Option<Item<'_>> {
        (index < self.len()).then_some(Item { array: self, index })
    }

    pub fn iter(&self) -> impl Iterator<Item = Item<'_>> {
        (0..self.len()).map(|index| Item { array: self, index })
    }

    /// The items' type, for messages.
    pub fn item_type_name(&self) -> &'static str {
        match self {
            // Zero bytes are a value of every scalar type.
            Array::Scalars { ty, .. } => ty.decode(&[0; 8]).map_or("?", |v| v.type_name()),
            Array::Strings(_) => "string",
            Array::Arrays(_) => "array",
        }
    }
}

/// One item of an [`Array`], read in place.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    array: &'a Array,
    index: usize,
}

impl<'a> Item<'a> {
    /// A number or bool, as a `Value`; `None` for a string or an array.
    pub fn scalar(self) -> Option<Value> {
        match self.array {
            Array::Scalars { ty, bytes } => ty.decode(bytes.get(self.index * ty.size()..)?),
            _ => None,
        }
    }

    pub fn as_i64(self) -> Option<i64> {
        self.scalar()?.as_i64()
    }

    pub fn as_f64(self) -> Option<f64> {
        self.scalar()?.as_f64()
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self.array {
            Array::Strings(s) => s.get(self.index),
            _ => None,
        }
    }

    pub fn as_array(self) -> Option<&'a Array> {
        match self.array {
            Array::Arrays(a) => a.get(self.index),
            _ => None,
        }
    }

    pub fn type_name(self) -> &'static str {
        self.array.item_type_name()
    }
}

/// Strings held back to back in one buffer, with where each ends: a vocabulary's hundreds of
/// thousands of short tokens without an allocation each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strings {
    text: String,
    ends: Vec<usize>,
}

impl Strings {
    pub fn with_capacity(items: usize) -> Self {
        Self { text: String::new(), ends: Vec::with_capacity(items) }
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).map_or(0, |i| self.ends[i]);
        self.text.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(items: I) -> Self {
        let mut strings = Strings::default();
        for s in items {
            strings.push(s.as_ref());
        }
        strings
    }
}
