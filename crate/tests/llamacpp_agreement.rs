//! The whole model against llama.cpp on the real test model (golden files made by
//! tests/golden/make_golden.py): teacher-forced next-token predictions, and greedy chat
//! continuations.
//!
//! llama.cpp quantizes activations to 8 bits inside its matmuls, and its own logits move by up
//! to 1.3 between batched and token-by-token evaluation of the same text; an exact f32 engine can
//! only disagree with it where two tokens are nearly tied. "Nearly tied" here: llama.cpp's own
//! logit for our choice is within NEAR_TIE of its top logit.

mod common;

use common::*;
use torchlight::model::{forward, Activations, Backend, Logits};

const NEAR_TIE: f64 = 1.0;

#[test]
fn teacher_forced_predictions_agree_with_llama_cpp() {
    let golden = golden("teacher_forced.json");
    let tokens = ids(&golden["ids"]);
    let positions = golden["positions"].as_array().unwrap();
    let mut b = gpu_backend();
    let weights = load_weights(&mut b);
    let cache = b.cache(&weights.config, tokens.len()).unwrap();
    let act = Activations::new(&mut b, &weights, tokens.len(), true).unwrap();
    forward(&mut b, &weights, &cache, &act, &tokens, 0, Logits::All);
    let logits = pollster::block_on(b.read(&act.logits, tokens.len())).unwrap();
    let vocab = weights.config.vocab_size;

    let mut same_top1 = 0;
    for (pos, (row, want)) in logits.chunks(vocab).zip(positions).enumerate() {
        let top5 = ids(&want["top5"]);
        let top5_logits: Vec<f64> = want["top5_logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let ours = argmax(row) as u32;
        let rank = top5.iter().position(|&t| t == ours);
        let rank = rank.unwrap_or_else(|| panic!("position {pos}: our top-1 {ours} is not in llama.cpp's top-5 {top5:?}"));
        if rank == 0 {
            same_top1 += 1;
        } else {
            let gap = top5_logits[0] - top5_logits[rank];
            println!("position {pos}: we pick {ours} (llama.cpp's #{} , {gap:.3} below its top {}), ours {:.3} vs {:.3}",
                rank + 1, top5[0], row[ours as usize], row[top5[0] as usize]);
            assert!(gap <= NEAR_TIE, "position {pos}: disagreement with llama.cpp is not a near tie (gap {gap})");
        }
        // The probe logits: the same scale and shape as llama.cpp's.
        let probes = ids(&golden["probe_ids"]);
        for (j, &p) in probes.iter().enumerate() {
            let theirs = want["probe_logits"][j].as_f64().unwrap();
            let diff = (row[p as usize] as f64 - theirs).abs();
            assert!(diff < 2.0, "position {pos}, token {p}: logit {} vs llama.cpp {theirs}", row[p as usize]);
        }
    }
    let share = same_top1 as f64 / tokens.len() as f64;
    println!("top-1 equals llama.cpp's at {same_top1}/{} positions ({:.1}%)", tokens.len(), share * 100.0);
    assert!(share >= 0.93, "top-1 agreement {share:.3} is below 93%");
}

#[test]
fn greedy_chat_continuations_match_llama_cpp() {
    let golden = golden("chat_greedy.json");
    let cases = golden["cases"].as_array().unwrap();
    let mut b = gpu_backend();
    let weights = load_weights(&mut b);
    let cache = b.cache(&weights.config, 256).unwrap();
    let act = Activations::new(&mut b, &weights, 128, false).unwrap();
    let mut identical = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt_ids"]);
        let want = ids(&case["generated"]);
        let margins: Vec<f64> = case["top1_top2_margins"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let n = want.len().min(16);
        let mut got = Vec::new();
        forward(&mut b, &weights, &cache, &act, &prompt, 0, Logits::Last);
        for step in 0..n {
            let next = pollster::block_on(b.argmax(&act.logits, 0)).unwrap();
            got.push(next);
            if next != want[step] {
                break;
            }
            forward(&mut b, &weights, &cache, &act, &[next], prompt.len() + step, Logits::Last);
        }
        if got == want[..n] {
            identical += 1;
            println!("{name}: first {n} tokens identical");
        } else {
            let at = got.len() - 1;
            println!("{name}: diverges at token {at} (ours {}, llama.cpp {}; llama.cpp's top-2 margin there {:.3})", got[at], want[at], margins[at]);
            assert!(margins[at] <= NEAR_TIE, "{name}: divergence at token {at} is not at a near tie");
        }
    }
    println!("{identical}/{} chat continuations identical for their first 16 tokens", cases.len());
    assert!(identical + 1 >= cases.len(), "only {identical} of {} continuations match llama.cpp", cases.len());
}
