//! Sequential reads of a GGUF header through a window over its source. Every length is checked
//! against what is left of the file, and every byte the header keeps in memory against a budget,
//! before anything is allocated for it: a header is a list of lengths and counts that anyone
//! can write, and a file's size says little (a sparse file of a terabyte takes no disk).

use std::mem::size_of;

use super::value::{Array, ScalarType, Strings};
use super::{ByteSource, GgufError, Value};

/// The header is read through a window of this size, so parsing does few small reads.
const WINDOW: usize = 1 << 16;
/// Longest single string: chat templates and vocab entries are far shorter; a length beyond
/// this is a corrupt or hostile file, refused before allocating it.
const MAX_STRING: u64 = 16 << 20;
/// Real files nest arrays one level deep at most; a deeper nest is an attack on the stack.
const MAX_ARRAY_DEPTH: u32 = 4;

/// Bytes of metadata and tensor table one header may keep in memory. The vocabulary is nearly
/// all of it, at about 24 bytes a token with its type and score, and as much again for a
/// byte-level BPE's merges (Gemma 3's 262,144 tokens take 6 MiB): this holds vocabularies of
/// five million tokens with all four arrays, while no header can make a browser tab (4 GiB of
/// wasm memory at most) or a phone run out of memory before the model's size is even known.
const HELD_LIMIT: u64 = 256 << 20;
/// Bytes one array outside `tokenizer.*` may keep. There the metadata is names, tags and
/// per-layer numbers, a few kilobytes, and Torchlight reads no array; a longer one is stepped
/// over and recorded as `Value::Skipped`.
const OTHER_ARRAY_LIMIT: u64 = 1 << 20;
/// Array items read or stepped over one at a time (strings and inner arrays) in one header:
/// this bounds a header's parsing time (under half a second) as `HELD_LIMIT` bounds its memory,
/// with room for the texts and merges of the largest vocabulary `HELD_LIMIT` holds.
const ITEM_LIMIT: u64 = 1 << 24;

/// A metadata entry's own bytes in memory besides its key's text and its value's contents.
const ENTRY_BYTES: u64 = (size_of::<String>() + size_of::<Value>()) as u64;

/// An array's item type, as far as reading it goes.
enum ItemType {
    Scalar(ScalarType),
    String,
    Array,
}

pub(super) struct Cursor<'a> {
    source: &'a mut dyn ByteSource,
    pub pos: u64,
    window: Vec<u8>,
    window_start: u64,
    /// Bytes the header keeps in memory so far, against `HELD_LIMIT`.
    held: u64,
    /// Array items visited one at a time so far, against `ITEM_LIMIT`.
    items: u64,
}

impl<'a> Cursor<'a> {
    pub fn new(source: &'a mut dyn ByteSource) -> Self {
        Self { source, pos: 0, window: Vec::new(), window_start: 0, held: 0, items: 0 }
    }

    pub fn len(&self) -> u64 {
        self.source.len()
    }

    fn remaining(&self) -> u64 {
        self.len().saturating_sub(self.pos)
    }

    fn fill(&mut self, what: &str, buf: &mut [u8]) -> Result<(), GgufError> {
        let len = self.len();
        let end = self.pos + buf.len() as u64;
        if end > len {
            return Err(GgufError::Truncated { what: what.to_string(), needed: end, len });
        }
        let win_end = self.window_start + self.window.len() as u64;
        if self.pos >= self.window_start && end <= win_end {
            let at = (self.pos - self.window_start) as usize;
            buf.copy_from_slice(&self.window[at..at + buf.len()]);
        } else if buf.len() >= WINDOW {
            // A long array straight into its own buffer: the window never grows to its size.
            self.read_at(what, buf)?;
        } else {
            let mut window = std::mem::take(&mut self.window);
            window.resize((WINDOW as u64).min(len - self.pos) as usize, 0);
            let read = self.read_at(what, &mut window);
            self.window = window;
            self.window_start = self.pos;
            if let Err(e) = read {
                // Nothing valid is in the window now.
                self.window.clear();
                return Err(e);
            }
            buf.copy_from_slice(&self.window[..buf.len()]);
        }
        self.pos = end;
        Ok(())
    }

    fn read_at(&mut self, what: &str, buf: &mut [u8]) -> Result<(), GgufError> {
        let len = self.len();
        self.source.read_at(self.pos, buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                GgufError::Truncated { what: what.to_string(), needed: self.pos + buf.len() as u64, len }
            } else {
                GgufError::Io(e)
            }
        })
    }

    pub fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.fill(what, &mut b)?;
        Ok(b)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// A count of items each at least `min_item_bytes` long, refused if the file cannot hold them.
    pub fn count(&mut self, what: &str, min_item_bytes: u64) -> Result<u64, GgufError> {
        let n = self.u64(what)?;
        let remaining = self.remaining();
        if n.saturating_mul(min_item_bytes) > remaining {
            return Err(GgufError::LengthTooLarge { what: what.to_string(), claimed: n, remaining });
        }
        Ok(n)
    }

    /// Counts `bytes` more kept in memory, refusing the header past `HELD_LIMIT`; `what` names
    /// what was being read.
    pub fn hold(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Result<(), GgufError> {
        self.held = self.held.saturating_add(bytes);
        if self.held > HELD_LIMIT {
            return Err(GgufError::HeaderTooLarge { what: what(), limit: HELD_LIMIT });
        }
        Ok(())
    }

    /// A string, kept: its bytes count against `HELD_LIMIT`.
    pub fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.string_len(what)?;
        self.hold(n, || what.to_string())?;
        let mut buf = vec![0u8; n as usize];
        self.fill(what, &mut buf)?;
        String::from_utf8(buf).map_err(|_| not_utf8(what))
    }

    fn string_len(&mut self, what: &str) -> Result<u64, GgufError> {
        let n = self.count(what, 1)?;
        if n > MAX_STRING {
            return Err(GgufError::Malformed(format!("{what} claims a string of {n} bytes, more than the {MAX_STRING} bytes any key needs")));
        }
        Ok(n)
    }

    /// A metadata entry's key, kept with the entry's own bytes.
    pub fn key(&mut self) -> Result<String, GgufError> {
        let key = self.string("a metadata key")?;
        self.hold(ENTRY_BYTES, || key.clone())?;
        Ok(key)
    }

    /// The value of metadata `key`, whose type id has just been read.
    pub fn value(&mut self, key: &str, type_id: u32) -> Result<Value, GgufError> {
        match type_id {
            8 => Ok(Value::String(self.string(key)?)),
            9 => self.top_array(key),
            id => {
                let ty = ScalarType::from_id(id).ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), id })?;
                let bytes: [u8; 8] = self.bytes_of(key, ty.size())?;
                ty.decode(&bytes).ok_or_else(|| GgufError::Malformed(format!("metadata {key}: bool byte is {}", bytes[0])))
            }
        }
    }

    /// The first `size` (at most 8) bytes at the cursor, zero-padded to 8.
    fn bytes_of(&mut self, what: &str, size: usize) -> Result<[u8; 8], GgufError> {
        let mut b = [0u8; 8];
        self.fill(what, &mut b[..size])?;
        Ok(b)
    }

    /// An array that is a whole metadata value. A vocabulary's (`tokenizer.*`) may keep as much
    /// as the header's budget has left; any other is kept up to `OTHER_ARRAY_LIMIT` bytes, or
    /// else stepped over.
    fn top_array(&mut self, key: &str) -> Result<Value, GgufError> {
        let start = self.pos;
        let vocabulary = key.starts_with("tokenizer.");
        let room = HELD_LIMIT.saturating_sub(self.held);
        let allowance = if vocabulary { room } else { room.min(OTHER_ARRAY_LIMIT) };
        let mut left = allowance;
        if let Some(array) = self.array(key, 0, &mut left)? {
            self.held += allowance - left;
            return Ok(Value::Array(array));
        }
        if vocabulary {
            return Err(GgufError::HeaderTooLarge { what: key.to_string(), limit: HELD_LIMIT });
        }
        self.pos = start;
        Ok(Value::Skipped { items: self.skip_array(key, 0)? })
    }

    /// The element type and count of the array at the cursor, the count checked against the
    /// bytes left in the file.
    fn array_head(&mut self, key: &str, depth: u32) -> Result<(ItemType, u64), GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::Malformed(format!("metadata {key}: arrays nested too deep")));
        }
        let items = match self.u32(key)? {
            8 => ItemType::String,
            9 => ItemType::Array,
            id => ItemType::Scalar(ScalarType::from_id(id).ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), id })?),
        };
        let min_bytes = match items {
            ItemType::Scalar(ty) => ty.size() as u64,
            // A string's length, and an inner array's element type and count.
            ItemType::String => 8,
            ItemType::Array => 12,
        };
        let n = self.count(key, min_bytes)?;
        Ok((items, n))
    }

    /// The array at the cursor, or `None`, with nothing more allocated, as soon as it would
    /// keep more than `left` bytes in memory. `left` shrinks by what it keeps.
    fn array(&mut self, key: &str, depth: u32, left: &mut u64) -> Result<Option<Array>, GgufError> {
        let (items, n) = self.array_head(key, depth)?;
        // Fixed-size items are taken whole; strings and inner arrays one by one, each counted.
        let array = match items {
            ItemType::Scalar(ty) => {
                // `count` has checked that the file holds them, so this cannot overflow.
                let len = n * ty.size() as u64;
                if !take(left, len) {
                    return Ok(None);
                }
                let mut bytes = vec![0u8; len as usize];
                self.fill(key, &mut bytes)?;
                if ty == ScalarType::Bool && bytes.iter().any(|&b| b > 1) {
                    return Err(GgufError::Malformed(format!("metadata {key}: a bool byte is not 0 or 1")));
                }
                Array::Scalars { ty, bytes }
            }
            ItemType::String => {
                if !take(left, n.saturating_mul(size_of::<usize>() as u64)) {
                    return Ok(None);
                }
                let mut strings = Strings::with_capacity(n as usize);
                let mut buf = Vec::new();
                for _ in 0..n {
                    self.visit(key)?;
                    let len = self.string_len(key)?;
                    if !take(left, len) {
                        return Ok(None);
                    }
                    buf.resize(len as usize, 0);
                    self.fill(key, &mut buf)?;
                    strings.push(std::str::from_utf8(&buf).map_err(|_| not_utf8(key))?);
                }
                Array::Strings(strings)
            }
            ItemType::Array => {
                if !take(left, n.saturating_mul(size_of::<Array>() as u64)) {
                    return Ok(None);
                }
                let mut arrays = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    self.visit(key)?;
                    match self.array(key, depth + 1, left)? {
                        Some(array) => arrays.push(array),
                        None => return Ok(None),
                    }
                }
                Array::Arrays(arrays)
            }
        };
        Ok(Some(array))
    }

    /// Steps over the array at the cursor, fixed-size items in one stride, keeping nothing;
    /// returns how many items it has.
    fn skip_array(&mut self, key: &str, depth: u32) -> Result<u64, GgufError> {
        let (items, n) = self.array_head(key, depth)?;
        match items {
            // `count` has checked that the file holds them.
            ItemType::Scalar(ty) => self.pos += n * ty.size() as u64,
            ItemType::String => {
                for _ in 0..n {
                    self.visit(key)?;
                    self.pos += self.count(key, 1)?;
                }
            }
            ItemType::Array => {
                for _ in 0..n {
                    self.visit(key)?;
                    self.skip_array(key, depth + 1)?;
                }
            }
        }
        Ok(n)
    }

    /// Counts one more array item visited one at a time.
    fn visit(&mut self, key: &str) -> Result<(), GgufError> {
        self.items += 1;
        if self.items > ITEM_LIMIT {
            return Err(GgufError::TooManyItems { key: key.to_string(), limit: ITEM_LIMIT });
        }
        Ok(())
    }
}

/// Takes `bytes` out of `left`, if it has them.
fn take(left: &mut u64, bytes: u64) -> bool {
    match left.checked_sub(bytes) {
        Some(rest) => {
            *left = rest;
            true
        }
        None => false,
    }
}

fn not_utf8(what: &str) -> GgufError {
    GgufError::Malformed(format!("{what} is not valid UTF-8"))
}
