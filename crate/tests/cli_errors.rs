//! The `torchlight` binary on bad input: every failure must exit non-zero with exactly one line
//! on stderr, "error: " and words that name the problem, nothing on stdout, and never a panic.
//! Cases that fail before the weights load are fast; the ones that open the GPU (lavapipe here)
//! load at most the model's weights and never generate a token.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::gguf_writer::{string_bytes, GgufWriter};
use torchlight::gguf::{GgufFile, Value};
use torchlight::quant::GgmlType;
use torchlight::tokenizer::Tokenizer;

/// A file under the system temp dir with a name unique to this process and call, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("torchlight-cli-errors-{}-{n}-{name}", std::process::id())))
    }

    fn with_bytes(name: &str, bytes: &[u8]) -> Self {
        let file = Self::new(name);
        std::fs::write(&file.0, bytes).unwrap();
        file
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn torchlight<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_torchlight"));
    cmd.args(args);
    // Without it Mesa prints its own warnings to stderr when the GPU opens; those are not ours.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let out = cmd.output().expect("run the torchlight binary");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Checks the one-line error contract and that the line contains every keyword; returns the line.
fn assert_one_line_error(run: &Run, keywords: &[&str]) -> String {
    assert!(!run.stderr.contains("panicked"), "panic:\n{}", run.stderr);
    assert_ne!(run.code, Some(0), "exit code 0; stderr:\n{}", run.stderr);
    assert!(run.code.is_some(), "killed by a signal; stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "", "stdout should be empty");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr should be exactly one line:\n{}", run.stderr);
    let line = lines[0];
    assert!(line.starts_with("error: "), "{line}");
    for k in keywords {
        assert!(line.contains(k), "{line:?} should mention {k:?}");
    }
    line.to_string()
}

fn model() -> PathBuf {
    common::model_path()
}

/// The first `n` bytes of the real model.
fn model_prefix(n: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    std::fs::File::open(model()).unwrap().take(n).read_to_end(&mut bytes).unwrap();
    bytes
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8 here")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn info_on_the_real_model_succeeds() {
    let run = torchlight(&[OsStr::new("info"), model().as_os_str()]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
    assert!(run.stdout.contains("architecture  llama"), "{}", run.stdout);
    assert!(run.stdout.contains("Q4_1"), "{}", run.stdout);
    assert!(!run.stdout.contains("not supported"), "{}", run.stdout);
}

#[test]
fn a_text_file_is_not_gguf() {
    let file = TempFile::with_bytes("notes.txt", b"These are my notes, not a model.\nSecond line.\n");
    for args in [vec!["info", path_str(&file.0)], vec!["generate", "--model", path_str(&file.0), "--prompt", "hi"]] {
        let line = assert_one_line_error(&torchlight(&args), &["not a GGUF file", "notes.txt"]);
        // It shows what the file starts with.
        assert!(line.contains("\"Thes\""), "{line}");
    }
}

#[test]
fn a_missing_file_is_named() {
    let missing = TempFile::new("does-not-exist.gguf");
    for args in [vec!["info", path_str(&missing.0)], vec!["generate", "--model", path_str(&missing.0), "--prompt", "hi"]] {
        assert_one_line_error(&torchlight(&args), &["does-not-exist.gguf", "No such file"]);
    }
}

/// A download cut short, at 1 MiB (inside the 1.7 MB header: in the tokenizer's merges) and at
/// 100 bytes (inside the first metadata values). Whatever the wording, one clean line.
#[test]
fn a_truncated_model_is_one_line_naming_the_file() {
    for n in [1 << 20, 100, 10] {
        let file = TempFile::with_bytes(&format!("first-{n}-bytes.gguf"), &model_prefix(n));
        for args in [vec!["info", path_str(&file.0)], vec!["generate", "--model", path_str(&file.0), "--prompt", "hi"]] {
            assert_one_line_error(&torchlight(&args), &[&format!("first-{n}-bytes.gguf")]);
        }
    }
}

#[test]
fn a_truncated_model_says_truncated() {
    for n in [1 << 20, 100, 10] {
        let file = TempFile::with_bytes(&format!("first-{n}-bytes.gguf"), &model_prefix(n));
        assert_one_line_error(&torchlight(&["info", path_str(&file.0)]), &["truncated"]);
    }
}

/// The real model's header with blk.0.ffn_down.weight's type id patched from Q4_1 to IQ4_XS (a
/// type GGUF allows and Torchlight does not run), in a sparse file of the model's full length so
/// the tensor table still fits. Its data (zeros) is never computed with: loading stops at it.
#[test]
fn an_unsupported_tensor_type_names_the_tensor_and_the_type() {
    let (_, real) = common::open_model();
    let mut header = model_prefix(real.data_offset);
    let name = string_bytes("blk.0.ffn_down.weight");
    let at = header.windows(name.len()).position(|w| w == name.as_slice()).expect("tensor info in the header");
    // After the name: n_dims (u32) = 2, two u64 dims, then the type id (u32).
    let dims_at = at + name.len();
    assert_eq!(header[dims_at..dims_at + 4], 2u32.to_le_bytes());
    let type_at = dims_at + 4 + 16;
    assert_eq!(header[type_at..type_at + 4], GgmlType::Q4_1.id().to_le_bytes(), "the model's type as gguf-py reports it");
    header[type_at..type_at + 4].copy_from_slice(&GgmlType::IQ4_XS.id().to_le_bytes());

    let file = TempFile::new("iq4xs.gguf");
    let mut f = std::fs::File::create(&file.0).unwrap();
    f.write_all(&header).unwrap();
    f.set_len(real.file_len).unwrap();
    drop(f);

    // `info` still describes it, flagging the type.
    let info = torchlight(&["info", path_str(&file.0)]);
    assert_eq!(info.code, Some(0), "{}", info.stderr);
    assert!(info.stdout.lines().any(|l| l.contains("IQ4_XS") && l.contains("not supported")), "{}", info.stdout);

    // `generate` refuses to load it.
    let run = torchlight(&["generate", "--model", path_str(&file.0), "--prompt", "hi", "--max-tokens", "1", "--context", "16"]);
    assert_one_line_error(&run, &["blk.0.ffn_down.weight", "IQ4_XS", "not supported"]);
}

/// An architecture Torchlight has no row for, in a tiny file from the test writer.
#[test]
fn an_unsupported_architecture_is_named() {
    let bytes = GgufWriter::new(3)
        .kv("general.architecture", Value::String("mamba".into()))
        .kv("mamba.block_count", Value::U32(1))
        .tensor("token_embd.weight", &[32, 4], GgmlType::F32)
        .build();
    let file = TempFile::with_bytes("mamba.gguf", &bytes);
    for args in [vec!["info", path_str(&file.0)], vec!["generate", "--model", path_str(&file.0), "--prompt", "hi"]] {
        assert_one_line_error(&torchlight(&args), &["mamba", "not supported"]);
    }
}

/// A tensor type id GGUF never assigned: the reader refuses the file and names tensor and id.
#[test]
fn an_unknown_tensor_type_id_names_the_tensor_and_the_id() {
    let bytes = GgufWriter::new(3)
        .kv("general.architecture", Value::String("llama".into()))
        .tensor_raw("blk.0.attn_q.weight", &[32, 2], 999, 0, 64)
        .build();
    let file = TempFile::with_bytes("odd-type.gguf", &bytes);
    assert_one_line_error(&torchlight(&["info", path_str(&file.0)]), &["blk.0.attn_q.weight", "999", "odd-type.gguf"]);
}

/// A prompt longer than `--context`: refused before any token is generated, with the prompt's
/// size (its tokens plus the first generated one) and the context's.
#[test]
fn a_prompt_longer_than_the_context_says_how_many_tokens_it_needs() {
    let prompt = "The lighthouse keeper climbed the spiral stairs at dusk, as she had every evening for \
                  thirty-one years, and trimmed the wick while the fog rolled in from the grey Atlantic.";
    let (_, file): (_, GgufFile) = common::open_model();
    let tokens = Tokenizer::from_gguf(&file).unwrap().encode(prompt, true, false).unwrap();
    assert!(tokens.len() > 16, "the prompt must overflow the context");
    let needed = tokens.len() + 1;

    let model = model();
    let run = torchlight(&["generate", "--model", path_str(&model), "--context", "16", "--max-tokens", "1", "--prompt", prompt]);
    assert_one_line_error(&run, &[&format!("the prompt needs {needed} tokens"), "the context holds 16"]);

    // Through the chat template too (more tokens, same refusal), and with --json (no JSON printed).
    let run = torchlight(&["generate", "--model", path_str(&model), "--context", "16", "--chat", "--json", "--prompt", prompt]);
    assert_one_line_error(&run, &["the prompt needs", "the context holds 16"]);
}
