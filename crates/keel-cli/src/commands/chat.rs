//! `keel chat`: an interactive conversation with a model through its chat template.
//!
//! Reads one user message per line from stdin and streams the reply. `/reset` clears the
//! history, `/quit` (or end of input) leaves. When the conversation outgrows the model's
//! context, the oldest turns are dropped (the system message is kept).

use super::generate::{load, SamplingArgs};
use anyhow::{bail, Result};
use keel_model::chat_template::ChatMessage;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// A `.gguf` file or a checkpoint directory with a chat template.
    #[arg(long)]
    pub model: PathBuf,
    /// System message (otherwise the template's default, if any).
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: ChatArgs) -> Result<()> {
    let m = load(&args.model)?;
    let Some(template) = m.chat_template()? else {
        bail!(
            "{} has no chat template; use `keel generate` instead",
            args.model.display()
        );
    };
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("type a message; /reset clears the conversation, /quit leaves");
    }
    let base: Vec<ChatMessage> = args
        .system
        .iter()
        .map(|s| ChatMessage::system(s.clone()))
        .collect();
    let mut history = base.clone();
    let mut stdout = std::io::stdout().lock();
    let mut turn = 0u64;
    let budget = m
        .config
        .max_position_embeddings
        .saturating_sub(args.sampling.max_tokens);
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let text = line.trim();
        match text {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                history = base.clone();
                writeln!(stdout, "[conversation reset]")?;
                continue;
            }
            _ => {}
        }
        if !interactive {
            writeln!(stdout, "> {text}")?;
        }
        history.push(ChatMessage::user(text));
        // Drop the oldest exchanges until the prompt leaves room for the reply.
        let ids = loop {
            let ids = m.encode(&template.render(&history, true)?)?;
            let first_turn = base.len();
            if ids.len() <= budget || history.len() <= first_turn + 1 {
                break ids;
            }
            history.drain(first_turn..(first_turn + 2).min(history.len() - 1));
        };
        if ids.len() > budget {
            history.pop();
            writeln!(
                stdout,
                "[message too long for the model's context; not sent]"
            )?;
            continue;
        }
        // A fresh but reproducible seed per turn.
        let mut params = args.sampling.params();
        params.seed = args.sampling.seed.wrapping_add(turn);
        turn += 1;
        let g = m.generate(&ids, &params, &mut |piece| {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        })?;
        writeln!(stdout)?;
        history.push(ChatMessage::assistant(g.text.trim().to_string()));
    }
    Ok(())
}
