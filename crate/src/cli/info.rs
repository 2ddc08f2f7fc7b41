use std::collections::BTreeMap;
use std::path::Path;

use torchlight::engine::LoadOptions;
use torchlight::footprint::Footprint;
use torchlight::model::ModelConfig;

use super::{open, CliError};

pub fn run(path: &Path) -> Result<(), CliError> {
    let (_, file) = open(path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let name = file.get("general.name").and_then(|v| v.as_str()).unwrap_or("(unnamed)");
    println!("model         {name}");
    println!("architecture  {}", config.arch.name);
    println!("layers        {}", config.n_layers);
    println!("width         {} (feed-forward {})", config.width, config.ffn_width);
    println!("heads         {} query, {} key/value, {} wide", config.n_heads, config.n_kv_heads, config.head_dim);
    println!("vocabulary    {}", config.vocab_size);
    println!("context       {} (trained)", config.train_context);

    let mut mix: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut params = 0u64;
    for t in &file.tensors {
        let entry = mix.entry(t.ggml_type.to_string()).or_default();
        entry.0 += 1;
        entry.1 += t.n_bytes;
        params += t.n_elems();
    }
    println!("parameters    {:.1} M", params as f64 / 1e6);
    for (ty, (count, bytes)) in &mix {
        let supported = if file.tensors.iter().any(|t| t.ggml_type.to_string() == *ty && t.ggml_type.format().is_none()) {
            " (not supported)"
        } else {
            ""
        };
        println!("  {ty:<6} {count:>4} tensors {:>10.1} MiB{supported}", *bytes as f64 / (1 << 20) as f64);
    }

    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    for context in [LoadOptions::default().context, config.train_context] {
        let footprint = Footprint::measure(&file, &LoadOptions { context, ..LoadOptions::default() });
        println!(
            "GPU memory    {:.1} MiB with a {}-token context (weights {:.1}, KV cache {:.1}, activations {:.1})",
            mib(footprint.gpu_bytes()),
            footprint.context_length,
            mib(footprint.weight_bytes),
            mib(footprint.kv_bytes),
            mib(footprint.activation_bytes),
        );
    }
    for problem in Footprint::of(&file, &LoadOptions::default()).problems {
        println!("cannot run    {problem}");
    }
    Ok(())
}
