//! `Footprint`: what a model needs, from its header alone. Its GPU total is checked against
//! what loading the real model actually allocates, and its problems against files Torchlight
//! cannot run.

mod common;

use common::gguf_writer::GgufWriter;
use torchlight::engine::{Engine, LoadOptions};
use torchlight::footprint::Footprint;
use torchlight::gguf::{GgufFile, SliceSource, Value};
use torchlight::model::ModelConfig;
use torchlight::quant::GgmlType;

fn options(context: usize) -> LoadOptions {
    LoadOptions { context, ..LoadOptions::default() }
}

#[test]
fn the_real_model_fits_and_its_gpu_total_is_what_a_load_allocates() {
    let (mut source, file) = common::open_model();
    let footprint = Footprint::of(&file, &options(300));
    assert_eq!(footprint.problems, Vec::<String>::new());
    assert_eq!(footprint.architecture, "llama");
    assert_eq!(footprint.quantization, "Q4_1");
    assert_eq!(footprint.context_length, 300);
    // 30 layers of keys and values, 3 KV heads of 64, f32.
    assert_eq!(footprint.kv_bytes, 2 * 30 * 300 * 3 * 64 * 4);

    let engine = Engine::load(common::gpu_backend(), &file, &mut source, &options(300), &mut |_| {}).unwrap();
    let allocated = engine.backend.allocated;
    let estimated = footprint.gpu_bytes();
    // The backend's own small buffers (token ids, rotary angles, row padding) are left out.
    let off = estimated.abs_diff(allocated) as f64 / allocated as f64;
    assert!(off < 0.01, "estimated {estimated} bytes, a load allocated {allocated}");
}

#[test]
fn the_context_is_capped_at_what_the_model_was_trained_for() {
    let (_, file) = common::open_model();
    assert_eq!(Footprint::of(&file, &options(1 << 20)).context_length, 8192);
}

#[test]
fn a_device_binding_limit_too_small_for_the_kv_cache_is_a_problem() {
    let (_, file) = common::open_model();
    let footprint = Footprint::of(&file, &options(8192));
    // One layer's keys for 8192 positions: 8192 x 192 x 4 bytes = 6 MiB.
    assert_eq!(footprint.largest_buffer, 8192 * 192 * 4);
    assert_eq!(footprint.problems_on(128 << 20), Vec::<String>::new());
    let problems = footprint.problems_on(4 << 20);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("shorter context"), "{problems:?}");
}

fn read(bytes: &[u8]) -> GgufFile {
    GgufFile::read(&mut SliceSource::prefix(bytes, bytes.len() as u64)).unwrap()
}

#[test]
fn an_unsupported_architecture_comes_first_among_the_problems() {
    let bytes = GgufWriter::new(3)
        .kv("general.architecture", Value::String("mamba".into()))
        .tensor("token_embd.weight", &[32, 4], GgmlType::F32)
        .build();
    let footprint = Footprint::of(&read(&bytes), &LoadOptions::default());
    assert_eq!(footprint.architecture, "mamba");
    assert_eq!(footprint.context_length, 0);
    assert!(footprint.problems[0].contains("\"mamba\" is not supported"), "{:?}", footprint.problems);
}

#[test]
fn unsupported_tensor_types_are_named_and_counted() {
    let bytes = GgufWriter::new(3)
        .kv("general.architecture", Value::String("llama".into()))
        .tensor("blk.0.ffn_down.weight", &[256, 2], GgmlType::IQ4_XS)
        .tensor("blk.1.ffn_down.weight", &[256, 2], GgmlType::IQ4_XS)
        .tensor("blk.0.attn_q.weight", &[256, 8], GgmlType::Q4_0)
        .build();
    let footprint = Footprint::of(&read(&bytes), &LoadOptions::default());
    // By bytes, Q4_0's 8 rows outweigh IQ4_XS's 4.
    assert_eq!(footprint.quantization, "Q4_0");
    let quant = footprint.problems.iter().find(|p| p.contains("IQ4_XS")).expect("a problem naming IQ4_XS");
    assert!(quant.contains("blk.0.ffn_down.weight") && quant.contains("1 more"), "{quant}");
}

#[test]
fn a_model_over_the_cpu_memory_limit_is_a_problem() {
    let (_, file) = common::open_model();
    let footprint = Footprint::of(&file, &options(2048));
    assert_eq!(footprint.problems_in_memory(1 << 30), Vec::<String>::new());
    let problems = footprint.problems_in_memory(100 << 20);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("memory on the CPU"), "{problems:?}");
}

/// The real model's header with `changes` to its metadata.
fn real_header_with(changes: &[(&str, Value)]) -> GgufFile {
    let (_, mut file) = common::open_model();
    for (key, value) in changes {
        file.metadata.insert(key.to_string(), value.clone());
    }
    file
}

/// Absurd hyperparameters are refused, naming their key, before anything is sized by them.
#[test]
fn hyperparameters_that_disagree_with_the_tensors_are_errors_naming_their_key() {
    let cases: &[(&[(&str, Value)], &str)] = &[
        (&[("llama.block_count", Value::U64(1 << 40))], "llama.block_count is 1099511627776, but the file's tensors are for 30 layers"),
        (&[("llama.block_count", Value::U32(29))], "llama.block_count is 29"),
        (
            &[
                ("llama.attention.head_count", Value::U64(1 << 62)),
                ("llama.attention.head_count_kv", Value::U64(1 << 62)),
                ("llama.attention.key_length", Value::U32(64)),
            ],
            "llama.attention.head_count = 4611686018427387904 heads of 64: wider than any tensor",
        ),
        (&[("llama.feed_forward_length", Value::U64(1 << 62))], "llama.feed_forward_length = 4611686018427387904: wider"),
        (&[("llama.embedding_length", Value::U32(1024))], "llama.embedding_length = 1024 and llama.vocab_size = 49152 do not match"),
        (&[("llama.vocab_size", Value::U32(1000))], "llama.vocab_size = 1000 do not match"),
        (&[("llama.context_length", Value::U64(1 << 63))], "llama.context_length = 9223372036854775808: more positions"),
    ];
    for (changes, expect) in cases {
        let e = ModelConfig::from_gguf(&real_header_with(changes)).unwrap_err().to_string();
        assert!(e.contains(expect), "{changes:?}: {e}");
    }
}

/// Sizes past 2^64 bytes are a problem, never a wrapped small number: a tensor claiming a
/// dimension of 2^62 lets a feed-forward width of 2^61 through, whose activations cannot fit.
#[test]
fn footprint_sizes_past_two_to_the_64_are_a_problem_not_a_wrap() {
    let mut file = real_header_with(&[("llama.feed_forward_length", Value::U64(1 << 61))]);
    let mut huge = file.tensors[0].clone();
    huge.dims = vec![1 << 62];
    file.tensors.push(huge);
    let footprint = Footprint::measure(&file, &options(2048));
    assert!(footprint.problems.iter().any(|p| p.contains("more than 2^64 bytes")), "{:?}", footprint.problems);
    assert_eq!(footprint.gpu_bytes(), u64::MAX, "the 1-D tensor's 2^64 bytes saturate the weights");
}
