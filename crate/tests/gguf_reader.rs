//! The GGUF header reader: round trips through a test-only writer (every value type, nested
//! arrays, versions 2 and 3, custom alignment, several tensor types), the real SmolLM2 file
//! against what gguf-py reports, and hostile input: every kind of lie a header can tell must come
//! back as the right typed error, quickly, without a panic and without a huge allocation.

mod common;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::gguf_writer::{array, string_bytes, value_type, GgufWriter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use torchlight::gguf::{FileSource, GgufError, GgufFile, SliceSource, Value};
use torchlight::quant::GgmlType;

// ---------------------------------------------------------------------------------------------
// Allocation watch: a lying length must be refused before anything is allocated for it. The
// global allocator records the largest single request made by the current thread, so tests
// running in parallel do not see each other's allocations.

struct LargestAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations made while the thread is being torn down are not watched.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(|l| l.get()))
}

/// Generous: the small hostile files here are a few hundred bytes, and the reader's window is
/// capped by the file's length.
const SMALL_ALLOCATION: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Helpers

fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    GgufFile::read(&mut SliceSource::new(bytes))
}

/// Parses a hostile file, checking it neither allocates much nor succeeds, and returns the error.
fn parse_err(bytes: &[u8]) -> GgufError {
    let (result, largest) = largest_allocation_during(|| parse(bytes));
    assert!(largest <= SMALL_ALLOCATION, "a {}-byte file made a {largest}-byte allocation", bytes.len());
    match result {
        Ok(f) => panic!("expected an error, parsed {} keys and {} tensors", f.metadata.len(), f.tensors.len()),
        Err(e) => e,
    }
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// One key of every value type 0..=12, plus arrays: empty, flat of several types, and arrays of
/// arrays (of strings, of ints, of mixed inner types, which GGUF allows since each inner array
/// carries its own element type).
fn every_value_type() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(255)),
        ("t.i8", Value::I8(-128)),
        ("t.u16", Value::U16(65535)),
        ("t.i16", Value::I16(-32768)),
        ("t.u32", Value::U32(u32::MAX)),
        ("t.i32", Value::I32(i32::MIN)),
        ("t.f32", Value::F32(-1.5e-7)),
        ("t.bool.true", Value::Bool(true)),
        ("t.bool.false", Value::Bool(false)),
        ("t.string", s("héllo, wörld 🌍")),
        ("t.string.empty", s("")),
        ("t.array.u8", array(vec![Value::U8(0), Value::U8(1), Value::U8(255)])),
        ("t.array.empty", array(vec![])),
        ("t.array.string", array(vec![s("a"), s(""), s("ccc")])),
        ("t.array.i32", array(vec![Value::I32(-1), Value::I32(7)])),
        ("t.array.bool", array(vec![Value::Bool(true), Value::Bool(false)])),
        ("t.array.f64", array(vec![Value::F64(0.25), Value::F64(-1e300)])),
        (
            "t.array.array.string",
            array(vec![
                array(vec![s("x"), s("yy")]),
                array(vec![]),
                array(vec![s("zzz")]),
            ]),
        ),
        (
            "t.array.array.int",
            array(vec![
                array(vec![Value::U64(u64::MAX), Value::U64(0)]),
                array(vec![Value::I64(i64::MIN)]),
                array(vec![Value::U16(3), Value::U16(4), Value::U16(5)]),
            ]),
        ),
        (
            "t.array.array.array",
            array(vec![array(vec![array(vec![Value::I8(-3)])])]),
        ),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(std::f64::consts::PI)),
    ]
}

/// A small valid file with metadata and three tensors of different types and data: the base for
/// the truncation, prefix and fuzz tests.
fn small_file() -> (Vec<u8>, common::gguf_writer::Layout) {
    GgufWriter::new(3)
        .kv("general.architecture", s("llama"))
        .kv("general.name", s("tiny"))
        .kv("tiny.count", Value::U32(7))
        .kv("tiny.flag", Value::Bool(true))
        .kv("tiny.scale", Value::F32(0.5))
        .kv("tiny.words", array(vec![s("one"), s("two"), s("three")]))
        .kv("tiny.ids", array(vec![Value::I32(1), Value::I32(-2)]))
        .kv("tiny.nested", array(vec![array(vec![Value::U8(9)])]))
        .tensor("a.weight", &[4], GgmlType::F32)
        .tensor("b.weight", &[64, 2], GgmlType::Q4_0)
        .tensor("c.weight", &[256], GgmlType::Q6_K)
        .build_with_layout()
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_value_type_and_nested_arrays_round_trip_in_versions_2_and_3() {
    for version in [2, 3] {
        let mut writer = GgufWriter::new(version);
        for (key, value) in every_value_type() {
            writer = writer.kv(key, value);
        }
        let bytes = writer.build();
        let file = parse(&bytes).unwrap_or_else(|e| panic!("version {version}: {e}"));
        assert_eq!(file.version, version);
        let expected: BTreeMap<String, Value> =
            every_value_type().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(file.metadata, expected, "version {version}");
        assert!(file.tensors.is_empty());
        assert_eq!(file.file_len, bytes.len() as u64);
    }
}

#[test]
fn typed_getters_read_the_written_values() {
    let bytes = GgufWriter::new(3)
        .kv("general.architecture", s("llama"))
        .kv("n.u8", Value::U8(200))
        .kv("n.i32", Value::I32(-5))
        .kv("n.f64", Value::F64(2.5))
        .kv("n.bool", Value::Bool(true))
        .build();
    let file = parse(&bytes).unwrap();
    assert_eq!(file.architecture().unwrap(), "llama");
    assert_eq!(file.u64("n.u8").unwrap(), 200);
    assert_eq!(file.usize("n.u8").unwrap(), 200);
    assert_eq!(file.f32("n.f64").unwrap(), 2.5);
    assert!(file.bool("n.bool").unwrap());
    // A negative number is not a count, and a missing key is named.
    assert!(matches!(file.u64("n.i32"), Err(GgufError::WrongType { .. })));
    assert!(matches!(file.str("n.u8"), Err(GgufError::WrongType { .. })));
    assert!(matches!(file.u64("absent"), Err(GgufError::MissingKey(k)) if k == "absent"));
}

/// Tensor sizes by hand from ggml's block tables, not from `GgmlType::bytes_for`, so a wrong
/// table row would show up here.
#[test]
fn tensor_offsets_and_sizes_are_right_for_several_types() {
    let cases: &[(&str, &[u64], GgmlType, u64)] = &[
        ("f32", &[8, 3], GgmlType::F32, 8 * 3 * 4),
        ("empty", &[0, 4], GgmlType::F32, 0),
        ("f16", &[5], GgmlType::F16, 5 * 2),
        ("q4_0", &[64, 2], GgmlType::Q4_0, 4 * 18),
        ("q4_1", &[32], GgmlType::Q4_1, 20),
        ("q8_0", &[32, 2], GgmlType::Q8_0, 2 * 34),
        ("q4_k", &[256], GgmlType::Q4_K, 144),
        ("q5_k", &[256, 1, 2], GgmlType::Q5_K, 2 * 176),
        ("q6_k", &[512, 2], GgmlType::Q6_K, 4 * 210),
        ("bf16", &[3, 1, 1, 1], GgmlType::BF16, 6),
        ("i8", &[7], GgmlType::I8, 7),
        ("mxfp4", &[32], GgmlType::MXFP4, 17),
    ];
    for version in [2, 3] {
        let mut writer = GgufWriter::new(version).kv("general.architecture", s("llama"));
        for &(name, dims, ty, _) in cases {
            writer = writer.tensor(name, dims, ty);
        }
        let (bytes, layout) = writer.build_with_layout();
        let file = parse(&bytes).unwrap();
        assert_eq!(file.data_offset, layout.data_offset);
        assert_eq!(file.data_offset % 32, 0, "the default alignment is 32");
        assert_eq!(file.tensors.len(), cases.len());
        for ((t, &(name, dims, ty, n_bytes)), &(rel, _)) in file.tensors.iter().zip(cases).zip(&layout.tensors) {
            assert_eq!(t.name, name);
            assert_eq!(t.dims, dims, "{name}");
            assert_eq!(t.ggml_type, ty, "{name}");
            assert_eq!(t.n_bytes, n_bytes, "{name}");
            assert_eq!(t.n_elems(), dims.iter().product::<u64>(), "{name}");
            assert_eq!(t.offset, layout.data_offset + rel, "{name}");
            assert_eq!(t.offset % 32, 0, "{name}");
        }
        assert_eq!(file.tensor("q6_k").unwrap().n_bytes, 840);
        assert!(file.tensor("absent").is_none());
    }
}

#[test]
fn general_alignment_moves_the_data_offset_and_tensor_offsets() {
    for alignment in [1u32, 8, 64, 256, 4096] {
        let (bytes, layout) = GgufWriter::new(3)
            .alignment(alignment)
            .kv("general.architecture", s("llama"))
            .tensor("x", &[3], GgmlType::F32)
            .tensor("y", &[32], GgmlType::Q8_0)
            .tensor("z", &[1], GgmlType::F16)
            .build_with_layout();
        let file = parse(&bytes).unwrap();
        let a = alignment as u64;
        // The data starts at the first multiple of the alignment at or after the header's end.
        assert_eq!(file.data_offset, layout.header_len.next_multiple_of(a), "alignment {alignment}");
        assert_eq!(file.data_offset, layout.data_offset);
        assert!(file.data_offset - layout.header_len < a);
        for (t, &(rel, len)) in file.tensors.iter().zip(&layout.tensors) {
            assert_eq!(t.offset, file.data_offset + rel, "{} at alignment {alignment}", t.name);
            assert_eq!(t.offset % a, 0);
            assert_eq!(t.n_bytes, len);
        }
        // With alignment 1, nothing pads: y follows x's 12 bytes directly.
        if alignment == 1 {
            assert_eq!(file.data_offset, layout.header_len);
            assert_eq!(file.tensors[1].offset, file.tensors[0].offset + 12);
        }
    }
}

#[test]
fn alignment_may_be_any_integer_type() {
    for value in [Value::U8(64), Value::U16(64), Value::U64(64), Value::I32(64)] {
        let (bytes, layout) = GgufWriter::new(3)
            .kv("general.alignment", value.clone())
            .kv("pad", s("p"))
            .build_with_layout();
        let file = parse(&bytes).unwrap();
        assert_eq!(file.data_offset, layout.header_len.next_multiple_of(64), "{value:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The real model, against gguf-py

/// Values below were read with gguf-py (`gguf.GGUFReader`, the gguf package on PyPI) from
/// models/SmolLM2-135M-Instruct.Q4_1.gguf: `len(r.fields)` minus its 3 `GGUF.*` pseudo-fields,
/// `len(r.tensors)`, `r.data_offset`, and per tensor `shape`, `tensor_type`, `data_offset`
/// (absolute), `n_bytes`.
#[test]
fn real_model_header_matches_gguf_py() {
    let mut source = FileSource::open(common::model_path()).unwrap();
    let file = GgufFile::read(&mut source).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.metadata.len(), 33);
    assert_eq!(file.tensors.len(), 272);
    assert_eq!(file.data_offset, 1_785_664);
    assert_eq!(file.file_len, 98_362_432);

    let expect: &[(&str, &[u64], GgmlType, u64, u64)] = &[
        ("token_embd.weight", &[576, 49152], GgmlType::Q8_0, 1_785_664, 30_081_024),
        ("blk.0.attn_norm.weight", &[576], GgmlType::F32, 31_866_688, 2_304),
        ("blk.0.ffn_down.weight", &[1536, 576], GgmlType::Q4_1, 31_868_992, 552_960),
        ("blk.0.attn_q.weight", &[576, 576], GgmlType::Q4_1, 33_806_656, 207_360),
        ("blk.0.attn_v.weight", &[576, 192], GgmlType::Q4_1, 34_014_016, 69_120),
        ("blk.29.ffn_down.weight", &[1536, 576], GgmlType::Q4_1, 80_630_848, 552_960),
        ("output_norm.weight", &[576], GgmlType::F32, 98_360_128, 2_304),
    ];
    for &(name, dims, ty, offset, n_bytes) in expect {
        let t = file.tensor(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((t.dims.as_slice(), t.ggml_type, t.offset, t.n_bytes), (dims, ty, offset, n_bytes), "{name}");
    }
    // The last tensor ends exactly at the end of the file.
    assert_eq!(98_360_128 + 2_304, file.file_len);

    // gguf-py's type mix: 210 Q4_1, 61 F32, 1 Q8_0.
    let count = |ty| file.tensors.iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!((count(GgmlType::Q4_1), count(GgmlType::F32), count(GgmlType::Q8_0)), (210, 61, 1));

    // A few metadata values, with the types gguf-py reports for them.
    assert_eq!(file.get("general.architecture"), Some(&s("llama")));
    assert_eq!(file.get("llama.context_length"), Some(&Value::U32(8192)));
    assert_eq!(file.get("llama.attention.head_count_kv"), Some(&Value::U32(3)));
    assert_eq!(file.get("llama.rope.freq_base"), Some(&Value::F32(100_000.0)));
    assert_eq!(file.get("tokenizer.ggml.add_bos_token"), Some(&Value::Bool(false)));
    assert_eq!(file.get("general.languages"), Some(&array(vec![s("en")])));
    let tokens = file.array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    let first_two: Vec<_> = tokens.iter().take(2).map(|t| t.as_str()).collect();
    assert_eq!(first_two, [Some("<|endoftext|>"), Some("<|im_start|>")]);
    let types = file.array("tokenizer.ggml.token_type").unwrap();
    assert_eq!((types.len(), types.get(0).and_then(|t| t.scalar())), (49152, Some(Value::I32(3))));
    let merges = file.array("tokenizer.ggml.merges").unwrap();
    assert_eq!((merges.len(), merges.get(0).and_then(|m| m.as_str())), (48900, Some("Ġ t")));
}

/// The browser parses the header from a prefix of the file: each `Truncated` says how far to
/// fetch, and fetching that much always makes progress until the header parses, to the same
/// result as the whole file.
#[test]
fn real_model_header_parses_from_a_growing_prefix() {
    let path = common::model_path();
    let file_len = std::fs::metadata(&path).unwrap().len();
    let mut head = Vec::new();
    std::fs::File::open(&path).unwrap().take(4 << 20).read_to_end(&mut head).unwrap();

    let mut have = 4096usize;
    let mut fetches = 0;
    let file = loop {
        match GgufFile::read(&mut SliceSource::prefix(&head[..have], file_len)) {
            Ok(file) => break file,
            Err(GgufError::Truncated { needed, len, .. }) => {
                assert_eq!(len, file_len, "Truncated reports the whole file's length");
                assert!(needed > have as u64, "needed {needed} with {have} bytes loaded makes no progress");
                assert!(needed <= head.len() as u64, "needed {needed}: beyond the 4 MiB test buffer");
                have = needed as usize;
                fetches += 1;
                assert!(fetches < 200, "too many fetches");
            }
            Err(e) => panic!("prefix of {have} bytes: {e}"),
        }
    };
    assert!(have as u64 >= file.data_offset - 32, "the header ends near the data offset");
    let (_, whole) = common::open_model();
    assert_eq!(file.metadata, whole.metadata);
    assert_eq!(file.data_offset, whole.data_offset);
    assert_eq!(file.file_len, whole.file_len);
    assert_eq!(file.tensors.len(), whole.tensors.len());
    for (a, b) in file.tensors.iter().zip(&whole.tensors) {
        assert_eq!((&a.name, &a.dims, a.ggml_type, a.offset, a.n_bytes), (&b.name, &b.dims, b.ggml_type, b.offset, b.n_bytes));
    }
}

#[test]
fn a_prefix_shorter_than_the_header_reports_truncated_with_a_larger_needed_offset() {
    let (bytes, layout) = small_file();
    let full = bytes.len() as u64;
    for cut in [0, 3, 4, 10, 24, 40, layout.header_len as usize - 1] {
        match GgufFile::read(&mut SliceSource::prefix(&bytes[..cut], full)) {
            Err(GgufError::Truncated { needed, len, .. }) => {
                assert!(needed > cut as u64, "cut {cut}: needed {needed}");
                assert!(needed <= full, "cut {cut}: needed {needed} beyond the file's {full} bytes");
                assert_eq!(len, full);
            }
            other => panic!("cut {cut}: expected Truncated, got {other:?}"),
        }
    }
    // Fetching up to each `needed` in turn ends in the parsed header. (The reader reads through
    // a window, so `needed` may reach past the header's end: up to the whole small file here.)
    let mut have = 10;
    let file = loop {
        match GgufFile::read(&mut SliceSource::prefix(&bytes[..have], full)) {
            Ok(file) => break file,
            Err(GgufError::Truncated { needed, .. }) if needed > have as u64 => have = needed as usize,
            Err(e) => panic!("{have} bytes loaded: {e:?}"),
        }
    };
    assert_eq!(file.tensors.len(), 3);
    assert_eq!(file.file_len, full);
    assert_eq!(file.data_offset, layout.data_offset);
}

// ---------------------------------------------------------------------------------------------
// Bad input: wrong file, wrong version

#[test]
fn files_that_are_not_gguf_are_not_gguf() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let text = b"Hello! This is a text file, not a model.\n";
    let safetensors = b"\x10\0\0\0\0\0\0\0{\"a\":\"b\"}      ";
    for bytes in [&png[..], &text[..], &safetensors[..], b"ggufxxxxxxxxxxxxxxxxxxxxxxxxxxxx"] {
        match parse_err(bytes) {
            GgufError::NotGguf { found } => assert!(!found.is_empty()),
            e => panic!("{:?}: {e:?}", String::from_utf8_lossy(&bytes[..4])),
        }
    }
    // What was found is shown, escaped, so the user sees what the file is.
    let GgufError::NotGguf { found } = parse_err(&png[..]) else { unreachable!() };
    assert!(found.contains("PNG"), "{found}");
    let GgufError::NotGguf { found } = parse_err(&text[..]) else { unreachable!() };
    assert_eq!(found, "Hell");
}

#[test]
fn files_shorter_than_the_magic_are_truncated() {
    for bytes in [&b""[..], b"G", b"GGU"] {
        match parse_err(bytes) {
            GgufError::Truncated { needed: 4, len, .. } => assert_eq!(len, bytes.len() as u64),
            e => panic!("{bytes:?}: {e:?}"),
        }
    }
}

#[test]
fn versions_other_than_2_and_3_are_unsupported() {
    for version in [0u32, 1, 4, 5, u32::MAX] {
        let bytes = GgufWriter::new(version).kv("general.architecture", s("llama")).build();
        assert!(matches!(parse_err(&bytes), GgufError::UnsupportedVersion(v) if v == version), "version {version}");
    }
    // A big-endian GGUF file: the magic reads the same, the version does not.
    let mut big_endian = b"GGUF".to_vec();
    big_endian.extend_from_slice(&3u32.to_be_bytes());
    big_endian.extend_from_slice(&[0; 16]);
    assert!(matches!(parse_err(&big_endian), GgufError::UnsupportedVersion(0x0300_0000)));
}

// ---------------------------------------------------------------------------------------------
// Truncation at every byte

#[test]
fn truncation_at_every_byte_offset_is_an_error_never_a_panic() {
    let (bytes, layout) = small_file();
    assert!(parse(&bytes).is_ok());
    let mut truncated = 0;
    for cut in 0..bytes.len() {
        let err = parse_err(&bytes[..cut]);
        match err {
            // Inside the header: a read runs off the end, or a length no longer fits.
            GgufError::Truncated { needed, len, .. } if (cut as u64) < layout.header_len => {
                assert_eq!(len, cut as u64);
                assert!(needed > len && needed <= layout.header_len, "cut {cut}: needed {needed}");
                truncated += 1;
            }
            GgufError::LengthTooLarge { remaining, .. } if (cut as u64) < layout.header_len => {
                assert!(remaining < cut as u64, "cut {cut}");
            }
            // Header intact: a tensor's data now lies past the end.
            GgufError::TensorOutOfRange { end, len, .. } if (cut as u64) >= layout.header_len => {
                assert_eq!(len, cut as u64);
                assert!(end > len);
            }
            e => panic!("cut {cut} (header ends at {}): {e:?}", layout.header_len),
        }
    }
    assert!(truncated * 2 > layout.header_len as usize, "most header cuts should say Truncated, {truncated} did");
}

// ---------------------------------------------------------------------------------------------
// Lying lengths and counts

#[test]
fn a_string_length_beyond_the_file_is_length_too_large() {
    // Metadata string values: u64::MAX, and one byte more than is left.
    for claimed in [u64::MAX, u64::MAX / 2, 1 << 40, 4] {
        let mut payload = claimed.to_le_bytes().to_vec();
        payload.extend_from_slice(b"abc");
        let bytes = GgufWriter::new(3).kv_raw("k", value_type::STRING, &payload).build();
        match parse_err(&bytes) {
            GgufError::LengthTooLarge { claimed: c, remaining, .. } => assert_eq!((c, remaining), (claimed, 3)),
            e => panic!("claimed {claimed}: {e:?}"),
        }
    }
    // Exactly what is left is a valid length (and then the file ends where the next key begins).
    let bytes = GgufWriter::new(3).kv_raw("k", value_type::STRING, &[&3u64.to_le_bytes()[..], b"abc"].concat()).build();
    assert_eq!(parse(&bytes).unwrap().get("k"), Some(&s("abc")));
}

#[test]
fn a_key_or_tensor_name_length_beyond_the_file_is_length_too_large() {
    // The key's own length: the header says one key, whose length is u64::MAX.
    let mut bytes = GgufWriter::new(3).kv_count(1).build();
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(b"key");
    assert!(matches!(parse_err(&bytes), GgufError::LengthTooLarge { claimed: u64::MAX, .. }));

    // A tensor name's length.
    let mut bytes = GgufWriter::new(3).tensor_count(1).build();
    bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
    bytes.extend_from_slice(&[0; 40]);
    assert!(matches!(parse_err(&bytes), GgufError::LengthTooLarge { claimed: 0x4000_0000_0000_0000, remaining: 40, .. }));
}

fn array_payload(elem_type: u32, count: u64, rest: &[u8]) -> Vec<u8> {
    let mut p = elem_type.to_le_bytes().to_vec();
    p.extend_from_slice(&count.to_le_bytes());
    p.extend_from_slice(rest);
    p
}

#[test]
fn an_array_count_beyond_the_file_is_length_too_large() {
    // (element type, bytes each element needs at least) for a few types.
    let rest = [0u8; 40];
    for (elem, min_size) in [(value_type::U8, 1u64), (value_type::U32, 4), (value_type::STRING, 8), (value_type::ARRAY, 12)] {
        for claimed in [u64::MAX, (u64::MAX / min_size).saturating_add(1), 40 / min_size + 1] {
            let bytes = GgufWriter::new(3).kv_raw("arr", value_type::ARRAY, &array_payload(elem, claimed, &rest)).build();
            match parse_err(&bytes) {
                GgufError::LengthTooLarge { what, claimed: c, remaining } => {
                    assert_eq!((c, remaining), (claimed, 40), "element type {elem}");
                    assert!(what.contains("arr"), "the error names the key: {what}");
                }
                e => panic!("element type {elem}, count {claimed}: {e:?}"),
            }
        }
    }
    // A nested array whose inner count lies.
    let inner = array_payload(value_type::U64, 1000, &[0; 16]);
    let bytes = GgufWriter::new(3).kv_raw("nest", value_type::ARRAY, &array_payload(value_type::ARRAY, 1, &inner)).build();
    assert!(matches!(parse_err(&bytes), GgufError::LengthTooLarge { claimed: 1000, remaining: 16, .. }));
}

#[test]
fn tensor_and_metadata_counts_beyond_the_file_are_length_too_large() {
    for claimed in [u64::MAX, 1 << 61, 1000] {
        let bytes = GgufWriter::new(3).kv("a", Value::U8(1)).tensor_count(claimed).build();
        assert!(matches!(parse_err(&bytes), GgufError::LengthTooLarge { claimed: c, .. } if c == claimed), "tensors {claimed}");
        let bytes = GgufWriter::new(3).kv("a", Value::U8(1)).kv_count(claimed).build();
        assert!(matches!(parse_err(&bytes), GgufError::LengthTooLarge { claimed: c, .. } if c == claimed), "keys {claimed}");
    }
}

/// A count the file could hold, were the rest of it there, must not reserve memory out of
/// proportion to the file: here a 40-byte header in a "file" said to be 64 MiB long (the browser
/// prefix case, or a real file of that size) claims 8 Mi tensors and 64 Mi array elements (in a
/// vocabulary key, which is kept, not skipped).
#[test]
fn plausible_counts_do_not_reserve_more_than_the_file_holds() {
    let file_len = 64u64 << 20;
    let tensors = GgufWriter::new(3).tensor_count(file_len / 8 - 16).build();
    let payload = array_payload(value_type::U8, file_len - 80, &[]);
    let array = GgufWriter::new(3).kv_raw("tokenizer.ggml.token_type", value_type::ARRAY, &payload).build();
    let mut too_big = Vec::new();
    for (what, mut bytes) in [("tensor count", tensors), ("u8 array count", array)] {
        // Zeros after the header, so the reader's 64 KiB window is loaded and it gets as far as
        // reserving; then a zero-dimension tensor or a missing byte ends the parse.
        bytes.resize(256 << 10, 0);
        let (result, largest) = largest_allocation_during(|| GgufFile::read(&mut SliceSource::prefix(&bytes, file_len)));
        assert!(result.is_err(), "{result:?}");
        if largest as u64 > file_len {
            too_big.push(format!("{what}: reserved {largest} bytes for a {file_len}-byte file"));
        }
    }
    assert!(too_big.is_empty(), "{too_big:#?}");
}

// ---------------------------------------------------------------------------------------------
// Metadata kept in memory: bounded by what each key is for, whatever the file's size claims

/// A "file" made of pieces, some repeated: a sparse file of any size, holding real headers with
/// huge arrays, without the memory or disk to hold it.
enum Piece {
    Bytes(Vec<u8>),
    Repeat(Vec<u8>, u64),
}

struct Pieces(Vec<Piece>);

impl Pieces {
    fn piece_len(piece: &Piece) -> u64 {
        match piece {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Repeat(b, n) => b.len() as u64 * n,
        }
    }
}

impl torchlight::gguf::ByteSource for Pieces {
    fn len(&self) -> u64 {
        self.0.iter().map(Self::piece_len).sum()
    }

    fn read_at(&mut self, mut offset: u64, mut buf: &mut [u8]) -> std::io::Result<()> {
        let mut piece_start = 0;
        for piece in &self.0 {
            let piece_end = piece_start + Self::piece_len(piece);
            while !buf.is_empty() && (piece_start..piece_end).contains(&offset) {
                let (bytes, at) = match piece {
                    Piece::Bytes(b) => (b, (offset - piece_start) as usize),
                    Piece::Repeat(b, _) => (b, ((offset - piece_start) % b.len() as u64) as usize),
                };
                let n = (bytes.len() - at).min(buf.len());
                buf[..n].copy_from_slice(&bytes[at..at + n]);
                buf = &mut buf[n..];
                offset += n as u64;
            }
            piece_start = piece_end;
        }
        match buf.is_empty() {
            true => Ok(()),
            false => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// The header of a file whose metadata is one array key of `count` items of `elem_type`, all
/// of which follow: the caller adds the items.
fn one_array_head(key: &str, elem_type: u32, count: u64) -> Vec<u8> {
    GgufWriter::new(3).kv_raw(key, value_type::ARRAY, &array_payload(elem_type, count, &[])).build()
}

#[test]
fn a_long_array_outside_the_vocabulary_is_skipped_without_reading_it() {
    // A billion bytes claimed by a key Torchlight never reads, in a file that holds them.
    let items = 1_000_000_000;
    let mut source = Pieces(vec![
        Piece::Bytes(one_array_head("general.junk", value_type::U8, items)),
        Piece::Repeat(vec![7], items),
    ]);
    let start = Instant::now();
    let (file, largest) = largest_allocation_during(|| GgufFile::read(&mut source).unwrap());
    assert!(start.elapsed() < Duration::from_millis(100), "took {:?}", start.elapsed());
    assert!(largest <= SMALL_ALLOCATION, "a {largest}-byte allocation");
    assert_eq!(file.get("general.junk"), Some(&Value::Skipped { items }));
    let e = file.array("general.junk").unwrap_err().to_string();
    assert!(e.contains("general.junk") && e.contains("too long to keep"), "{e}");

    // Strings are stepped over one by one, and short arrays are kept as they are.
    let words = 200_000;
    let mut source = Pieces(vec![
        Piece::Bytes(GgufWriter::new(3).kv_count(2).kv("general.tags", array(vec![s("a"), s("b")])).build()),
        Piece::Bytes([string_bytes("general.words"), value_type::ARRAY.to_le_bytes().to_vec()].concat()),
        Piece::Bytes(array_payload(value_type::STRING, words, &[])),
        Piece::Repeat(string_bytes("word"), words),
    ]);
    let (file, largest) = largest_allocation_during(|| GgufFile::read(&mut source).unwrap());
    assert!(largest <= SMALL_ALLOCATION, "a {largest}-byte allocation");
    assert_eq!(file.get("general.words"), Some(&Value::Skipped { items: words }));
    assert_eq!(file.get("general.tags"), Some(&array(vec![s("a"), s("b")])));
}

#[test]
fn a_vocabulary_array_past_the_header_budget_is_refused_before_it_is_read() {
    // The file: a billion one-byte items in a key that is kept.
    let items = 1_000_000_000;
    let mut source = Pieces(vec![
        Piece::Bytes(one_array_head("tokenizer.ggml.token_type", value_type::U8, items)),
        Piece::Repeat(vec![1], items),
    ]);
    let start = Instant::now();
    let (result, largest) = largest_allocation_during(|| GgufFile::read(&mut source));
    assert!(start.elapsed() < Duration::from_millis(100), "took {:?}", start.elapsed());
    assert!(largest <= SMALL_ALLOCATION, "a {largest}-byte allocation");
    match result {
        Err(GgufError::HeaderTooLarge { what, limit }) => assert_eq!((what.as_str(), limit), ("tokenizer.ggml.token_type", 256 << 20)),
        other => panic!("{other:?}"),
    }
    // Strings: 40 million short tokens would need more than the budget; refused as soon as
    // their count is known.
    let items = 40_000_000;
    let mut source = Pieces(vec![
        Piece::Bytes(one_array_head("tokenizer.ggml.tokens", value_type::STRING, items)),
        Piece::Repeat(string_bytes("tok"), items),
    ]);
    let (result, largest) = largest_allocation_during(|| GgufFile::read(&mut source));
    assert!(largest <= SMALL_ALLOCATION, "a {largest}-byte allocation");
    assert!(matches!(result, Err(GgufError::HeaderTooLarge { ref what, .. }) if what == "tokenizer.ggml.tokens"), "{result:?}");
}

#[test]
fn stepping_over_more_strings_than_any_vocabulary_is_refused_quickly() {
    // 50 million empty strings in a key that is skipped: 400 MB of lengths, read one by one.
    let items = 50_000_000;
    let mut source = Pieces(vec![
        Piece::Bytes(one_array_head("general.junk", value_type::STRING, items)),
        Piece::Repeat(vec![0; 8], items),
    ]);
    let start = Instant::now();
    let result = GgufFile::read(&mut source);
    assert!(matches!(result, Err(GgufError::TooManyItems { ref key, .. }) if key == "general.junk"), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

/// Arrays of arrays inside a skipped key are stepped over too, each inner array counted.
#[test]
fn nested_arrays_too_long_to_keep_are_skipped() {
    let inner = array_payload(value_type::U32, 1 << 20, &[]);
    let mut source = Pieces(vec![
        Piece::Bytes(one_array_head("general.grid", value_type::ARRAY, 2)),
        Piece::Bytes(inner.clone()),
        Piece::Repeat(vec![0; 4], 1 << 20),
        Piece::Bytes(inner),
        Piece::Repeat(vec![0; 4], 1 << 20),
    ]);
    let (file, largest) = largest_allocation_during(|| GgufFile::read(&mut source).unwrap());
    // The first inner array fits under the key's limit, so it is read before the second one
    // makes the key too long to keep.
    assert!(largest <= 8 << 20, "a {largest}-byte allocation");
    assert_eq!(file.get("general.grid"), Some(&Value::Skipped { items: 2 }));
}

/// What the budget is for: a vocabulary of four million tokens (fifteen times Gemma 3's), with
/// types, scores and merges, is kept whole.
#[test]
fn a_vocabulary_of_millions_of_tokens_fits_the_budget() {
    let n = 4_000_000u64;
    let head = |key: &str, elem: u32| [string_bytes(key), value_type::ARRAY.to_le_bytes().to_vec(), array_payload(elem, n, &[])].concat();
    let mut source = Pieces(vec![
        Piece::Bytes(GgufWriter::new(3).kv_count(4).build()),
        Piece::Bytes(head("tokenizer.ggml.tokens", value_type::STRING)),
        Piece::Repeat(string_bytes("token"), n),
        Piece::Bytes(head("tokenizer.ggml.token_type", value_type::I32)),
        Piece::Repeat(1i32.to_le_bytes().to_vec(), n),
        Piece::Bytes(head("tokenizer.ggml.scores", value_type::F32)),
        Piece::Repeat((-1.5f32).to_le_bytes().to_vec(), n),
        Piece::Bytes(head("tokenizer.ggml.merges", value_type::STRING)),
        Piece::Repeat(string_bytes("tok en"), n),
    ]);
    let file = GgufFile::read(&mut source).unwrap();
    let tokens = file.array("tokenizer.ggml.tokens").unwrap();
    assert_eq!((tokens.len(), tokens.get(n as usize - 1).and_then(|t| t.as_str())), (n as usize, Some("token")));
    let scores = file.array("tokenizer.ggml.scores").unwrap();
    assert_eq!(scores.get(123).and_then(|s| s.scalar()), Some(Value::F32(-1.5)));
    assert_eq!(file.array("tokenizer.ggml.merges").unwrap().len(), n as usize);
}

// ---------------------------------------------------------------------------------------------
// Tensor infos

#[test]
fn tensor_data_past_the_end_of_the_file_is_out_of_range() {
    // Claims 8 f32 (32 bytes) but owns 16.
    let (bytes, layout) = GgufWriter::new(3).tensor_raw("t", &[8], 0, 0, 16).build_with_layout();
    match parse_err(&bytes) {
        GgufError::TensorOutOfRange { name, start, end, len } => {
            assert_eq!(name, "t");
            assert_eq!((start, end, len), (layout.data_offset, layout.data_offset + 32, bytes.len() as u64));
        }
        e => panic!("{e:?}"),
    }
    // The second tensor starts past the end, or so far away its start overflows.
    for offset in [1 << 20, u64::MAX - 31] {
        let bytes = GgufWriter::new(3)
            .tensor("ok", &[4], GgmlType::F32)
            .tensor_raw("far", &[4], 0, offset, 0)
            .build();
        assert!(matches!(parse_err(&bytes), GgufError::TensorOutOfRange { name, .. } if name == "far"), "offset {offset}");
    }
}

#[test]
fn unknown_tensor_type_ids_are_named() {
    // 4 and 5 (Q4_2, Q4_3) and 31..33, 36..38 were retired by ggml; 999 and u32::MAX never existed.
    for id in [4u32, 5, 31, 32, 33, 36, 38, 40, 999, u32::MAX] {
        let bytes = GgufWriter::new(3).tensor_raw("blk.0.odd", &[32], id, 0, 64).build();
        match parse_err(&bytes) {
            GgufError::UnknownTensorType { name, id: got } => assert_eq!((name.as_str(), got), ("blk.0.odd", id)),
            e => panic!("id {id}: {e:?}"),
        }
    }
}

#[test]
fn bad_dimension_counts_shapes_and_offsets_are_malformed() {
    let malformed = |bytes: Vec<u8>, what: &str| {
        assert!(matches!(parse_err(&bytes), GgufError::Malformed(_)), "{what}");
    };
    malformed(GgufWriter::new(3).tensor_raw("t", &[], 0, 0, 0).build(), "no dimensions");
    malformed(GgufWriter::new(3).tensor_raw("t", &[1, 1, 1, 1, 1], 0, 0, 4).build(), "five dimensions");
    // n_dims u32::MAX with nothing after it: refused before any dims are read or reserved.
    let mut bytes = GgufWriter::new(3).tensor_count(1).build();
    bytes.extend(string_bytes("t"));
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0; 32]);
    malformed(bytes, "u32::MAX dimensions");
    // A row that is not a whole number of blocks.
    malformed(GgufWriter::new(3).tensor_raw("t", &[33], GgmlType::Q4_0.id(), 0, 64).build(), "Q4_0 row of 33");
    malformed(GgufWriter::new(3).tensor_raw("t", &[128, 2], GgmlType::Q6_K.id(), 0, 512).build(), "Q6_K row of 128");
    // An offset off the alignment.
    malformed(GgufWriter::new(3).tensor_raw("t", &[1], 0, 4, 8).build(), "offset 4 at alignment 32");
}

#[test]
fn dimension_products_that_overflow_are_refused_without_a_panic() {
    let shapes: &[&[u64]] = &[
        &[1 << 32, 1 << 32],
        &[1 << 32, 1 << 31],
        &[u64::MAX, u64::MAX],
        &[1 << 40, 1 << 20],
        &[2, 2, 1 << 62, 1 << 62],
        &[u64::MAX / 4 + 1],
    ];
    for &dims in shapes {
        for ty in [GgmlType::F32, GgmlType::Q8_0] {
            let bytes = GgufWriter::new(3).tensor_raw("huge", dims, ty.id(), 0, 32).build();
            match parse_err(&bytes) {
                GgufError::Malformed(_) | GgufError::TensorOutOfRange { .. } => {}
                e => panic!("{dims:?} {ty}: {e:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata values

#[test]
fn unknown_value_types_are_named() {
    for id in [13u32, 100, u32::MAX] {
        let bytes = GgufWriter::new(3).kv_raw("odd.key", id, &[0; 16]).build();
        match parse_err(&bytes) {
            GgufError::UnknownValueType { key, id: got } => assert_eq!((key.as_str(), got), ("odd.key", id)),
            e => panic!("id {id}: {e:?}"),
        }
        // As an array's element type too.
        let bytes = GgufWriter::new(3).kv_raw("odd.arr", value_type::ARRAY, &array_payload(id, 1, &[0; 16])).build();
        assert!(matches!(parse_err(&bytes), GgufError::UnknownValueType { id: got, .. } if got == id), "array of {id}");
    }
}

#[test]
fn alignment_that_is_not_a_power_of_two_is_malformed() {
    for value in [Value::U32(0), Value::U32(3), Value::U32(48), Value::I32(-32), s("32"), Value::F32(32.0), Value::Bool(true)] {
        let bytes = GgufWriter::new(3).kv("general.alignment", value.clone()).tensor("t", &[4], GgmlType::F32).build();
        assert!(matches!(parse_err(&bytes), GgufError::Malformed(_)), "{value:?}");
    }
}

#[test]
fn non_utf8_keys_names_and_strings_are_malformed() {
    let bad = b"tok\xffen";
    assert!(matches!(parse_err(&GgufWriter::new(3).kv_raw(bad, value_type::U8, &[1]).build()), GgufError::Malformed(_)));
    assert!(matches!(parse_err(&GgufWriter::new(3).tensor_raw(bad, &[1], 0, 0, 4).build()), GgufError::Malformed(_)));
    let value = string_bytes(b"\xc3\x28");
    assert!(matches!(parse_err(&GgufWriter::new(3).kv_raw("k", value_type::STRING, &value).build()), GgufError::Malformed(_)));
}

#[test]
fn a_bool_byte_other_than_0_or_1_is_malformed() {
    for byte in [2u8, 255] {
        let bytes = GgufWriter::new(3).kv_raw("flag", value_type::BOOL, &[byte]).build();
        assert!(matches!(parse_err(&bytes), GgufError::Malformed(m) if m.contains("flag")), "byte {byte}");
        let bytes = GgufWriter::new(3).kv_raw("flags", value_type::ARRAY, &array_payload(value_type::BOOL, 2, &[1, byte])).build();
        assert!(matches!(parse_err(&bytes), GgufError::Malformed(_)), "array byte {byte}");
    }
}

/// `depth` arrays nested in each other around one empty u8 array, built flat (a recursive
/// writer would overflow its own stack on the deep cases).
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(depth * 12);
    for _ in 1..depth {
        payload.extend(array_payload(value_type::ARRAY, 1, &[]));
    }
    payload.extend(array_payload(value_type::U8, 0, &[]));
    GgufWriter::new(3).kv_raw("deep", value_type::ARRAY, &payload).build()
}

#[test]
fn arrays_nested_deeper_than_the_limit_are_malformed_without_exhausting_the_stack() {
    // Real files nest one level; a few levels still parse.
    let file = parse(&nested_arrays(3)).unwrap();
    let mut v = file.get("deep").and_then(Value::as_array).unwrap();
    for _ in 0..2 {
        v = v.get(0).and_then(|item| item.as_array()).unwrap();
    }
    assert_eq!(Some(&Value::Array(v.clone())), Some(&array(vec![])));
    // Deep nests, up to one that would blow the stack of a reader without a limit.
    for depth in [16, 1000, 200_000] {
        let bytes = nested_arrays(depth);
        let start = Instant::now();
        let result = parse(&bytes);
        assert!(matches!(result, Err(GgufError::Malformed(ref m)) if m.contains("deep")), "depth {depth}: {result:?}");
        assert!(start.elapsed() < Duration::from_secs(1), "depth {depth} took {:?}", start.elapsed());
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzz

/// Values that make lengths, counts, ids and offsets interesting.
const INTERESTING: &[u64] = &[0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 31, 32, 255, 256, 1 << 31, 1 << 32, 1 << 63, u64::MAX, u64::MAX - 1];

/// Cheap deterministic fuzzing of the small valid file: random bit flips, byte writes, and
/// interesting integers written over random spots (where they often land on a length or count).
/// Every parse must return, Ok or Err, quickly, without a panic or a big allocation.
#[test]
fn random_mutations_never_panic_and_parse_quickly() {
    let (original, _) = small_file();
    let mut rng = SmallRng::seed_from_u64(0x6767_7566_2d66_757a);
    let (mut oks, mut errs) = (0, 0);
    let mut slowest = Duration::ZERO;
    for i in 0..6000 {
        let mut bytes = original.clone();
        for _ in 0..rng.random_range(1..=4) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..4) {
                0 => bytes[at] ^= 1 << rng.random_range(0..8),
                1 => bytes[at] = rng.random(),
                2 => {
                    let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                    let width = [1, 4, 8][rng.random_range(0..3)];
                    let end = (at + width).min(bytes.len());
                    bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
                _ => bytes.truncate(at.max(1)),
            }
        }
        let start = Instant::now();
        let result = std::panic::catch_unwind(|| largest_allocation_during(|| parse(&bytes).map(|f| f.tensors.len())));
        let took = start.elapsed();
        slowest = slowest.max(took);
        match result {
            Ok((r, largest)) => {
                assert!(largest <= SMALL_ALLOCATION, "mutation {i}: {largest}-byte allocation for {:02x?}", bytes);
                if r.is_ok() { oks += 1 } else { errs += 1 }
            }
            Err(_) => panic!("mutation {i} panicked on {:02x?}", bytes),
        }
        assert!(took < Duration::from_millis(500), "mutation {i} took {took:?}: {:02x?}", bytes);
    }
    // Both outcomes occur: mutations in data or in values keep the file valid, others break it.
    assert!(oks > 100 && errs > 1000, "{oks} parsed, {errs} refused (slowest {slowest:?})");
}
