//! The CPU dequantizers against gguf-py's, on the blocks in tests/data/quant_fixtures.json
//! (written by tests/golden/make_quant_fixtures.py: real SmolLM2 blocks, gguf-py-quantized
//! blocks, and random bytes with sane scales), plus the error paths of the public API.

use serde::Deserialize;
use torchlight::quant::{dequantize, dequantize_to_vec, QuantError, QuantFormat};

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    format: String,
    source: String,
    n_blocks: usize,
    bytes_hex: String,
    expected: Vec<f64>,
}

fn load() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/quant_fixtures.json"
    );
    let text = std::fs::read_to_string(path).expect("read quant fixture");
    serde_json::from_str::<Fixture>(&text)
        .expect("parse quant fixture")
        .cases
}

fn format_named(name: &str) -> QuantFormat {
    QuantFormat::ALL
        .into_iter()
        .find(|f| f.to_string() == name)
        .unwrap_or_else(|| panic!("fixture names unknown format {name}"))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd-length hex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Unquantized formats are a pure bit conversion, so they must match exactly. The block formats
/// mirror ggml's f32 operations step by step and today match gguf-py bit for bit too, but the
/// contract is a tight relative bound, leaving room for a vectorized or reordered (e.g. FMA)
/// implementation.
fn tolerance(format: QuantFormat, expected: f32) -> f32 {
    match format {
        QuantFormat::F32 | QuantFormat::F16 => 0.0,
        _ => 1e-6 * expected.abs().max(1.0),
    }
}

#[test]
fn matches_gguf_py_for_every_format() {
    let cases = load();
    for format in QuantFormat::ALL {
        assert!(
            cases.iter().any(|c| c.format == format.to_string()),
            "no fixture case for {format}"
        );
    }
    for case in &cases {
        let format = format_named(&case.format);
        let bytes = unhex(&case.bytes_hex);
        assert_eq!(
            bytes.len(),
            case.n_blocks * format.block_bytes(),
            "{}",
            case.source
        );
        let got = dequantize_to_vec(format, &bytes, case.expected.len())
            .unwrap_or_else(|e| panic!("{format} {}: {e}", case.source));
        for (i, (&g, &want)) in got.iter().zip(&case.expected).enumerate() {
            // The fixture's floats are f32 values written as f64, so this cast is exact.
            let want = want as f32;
            let ok = if tolerance(format, want) == 0.0 {
                g.to_bits() == want.to_bits()
            } else {
                (g - want).abs() <= tolerance(format, want)
            };
            assert!(
                ok,
                "{format} {} element {i}: got {g:e}, gguf-py {want:e}",
                case.source
            );
        }
    }
}

#[test]
fn partial_block_is_an_error() {
    for format in QuantFormat::ALL {
        let bytes = vec![0u8; 3 * format.block_bytes() - 1];
        let err = dequantize_to_vec(format, &bytes, 3 * format.block_elems()).unwrap_err();
        assert_eq!(
            err,
            QuantError::PartialBlock {
                format,
                len: bytes.len(),
                block_bytes: format.block_bytes()
            }
        );
        let mut out = vec![0.0; 3 * format.block_elems()];
        assert!(matches!(
            dequantize(format, &bytes, &mut out),
            Err(QuantError::PartialBlock { .. })
        ));
    }
}

#[test]
fn output_length_mismatch_is_an_error() {
    for format in QuantFormat::ALL {
        let bytes = vec![0u8; 2 * format.block_bytes()];
        let expected = 2 * format.block_elems();
        for wrong in [0, expected - 1, expected + 1, 3 * expected] {
            let mut out = vec![0.0; wrong];
            assert_eq!(
                dequantize(format, &bytes, &mut out),
                Err(QuantError::LengthMismatch {
                    format,
                    expected,
                    actual: wrong
                })
            );
        }
        // An absurd count (say from a corrupt header) is refused before anything is allocated.
        assert!(matches!(
            dequantize_to_vec(format, &bytes, usize::MAX),
            Err(QuantError::LengthMismatch { .. })
        ));
    }
}

#[test]
fn empty_input_is_empty_output() {
    for format in QuantFormat::ALL {
        assert_eq!(dequantize_to_vec(format, &[], 0), Ok(vec![]));
    }
}

#[test]
fn errors_name_the_problem() {
    let err = dequantize_to_vec(QuantFormat::Q4_K, &[0; 145], 256).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Q4_K data is 145 bytes, not a whole number of 144-byte blocks"
    );
    let err = dequantize_to_vec(QuantFormat::Q8_0, &[0; 34], 31).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Q8_0 data holds 32 elements but 31 were asked for"
    );
}
