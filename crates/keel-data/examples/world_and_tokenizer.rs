//! Generate the default world and train a tokenizer on it, printing sizes and timings.
//! `cargo run -p keel-data --example world_and_tokenizer -- OUT_DIR [SEED]`

use keel_data::tokenizer::{save_tokenizer, train_tokenizer_from_files, KeelTokenizer};
use keel_data::world::{generate, write::corpus_path, Split, WorldConfig};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: world_and_tokenizer OUT_DIR [SEED]")?,
    );
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let t = Instant::now();
    let world = generate(&WorldConfig::default(), seed)?;
    let gen_s = t.elapsed().as_secs_f64();
    let summary = world.write(&out)?;
    print!("{summary}");
    println!(
        "generate: {gen_s:.2}s, generate+write: {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let tok = train_tokenizer_from_files(&[corpus_path(&out, Split::Train)], 2048)?;
    let path = out.join("tokenizer.json");
    save_tokenizer(&tok, &path)?;
    let tk = KeelTokenizer::from_file(&path)?;
    let text: String = world
        .corpus
        .validation
        .iter()
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let ids = tk.encode(&text);
    println!(
        "tokenizer: vocab {} trained in {:.2}s; validation corpus {} bytes -> {} tokens ({:.2} bytes/token)",
        tk.vocab_size(),
        t.elapsed().as_secs_f64(),
        text.len(),
        ids.len(),
        text.len() as f64 / ids.len() as f64
    );
    Ok(())
}
