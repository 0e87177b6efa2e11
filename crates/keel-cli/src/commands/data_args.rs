//! Dataset flags shared by `keel data …` and `keel sft` (flatten with `#[command(flatten)]`):
//! which TRL shape rows have, which fields hold what (OpenRLHF-style `--input-key` /
//! `--output-key`), and whether a bad row is fatal. Files may be JSONL or Parquet.

use keel_data::formats::{FieldMap, Format, LoadOptions};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormatArg {
    /// Decide per row from the keys present.
    Auto,
    Messages,
    PromptCompletion,
    Text,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Row shape: messages, prompt-completion, text, or auto (per row, by keys).
    #[arg(long, value_enum, default_value = "auto")]
    pub format: DataFormatArg,
    /// Field holding the prompt (prompt-completion format).
    #[arg(long, default_value = "prompt")]
    pub input_key: String,
    /// Field holding the completion (prompt-completion format).
    #[arg(long, default_value = "completion")]
    pub output_key: String,
    /// Field holding the conversation (messages format).
    #[arg(long, default_value = "messages")]
    pub messages_key: String,
    /// Field holding an optional system prompt (prompt-completion format).
    #[arg(long, default_value = "system")]
    pub system_key: String,
    /// Field holding the text (text format).
    #[arg(long, default_value = "text")]
    pub text_key: String,
    /// Fail on the first bad row instead of skipping and counting bad rows.
    #[arg(long)]
    pub strict: bool,
}

impl DatasetArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            format: match self.format {
                DataFormatArg::Auto => Format::Auto,
                DataFormatArg::Messages => Format::Messages,
                DataFormatArg::PromptCompletion => Format::PromptCompletion,
                DataFormatArg::Text => Format::Text,
            },
            fields: FieldMap {
                messages: self.messages_key.clone(),
                prompt: self.input_key.clone(),
                completion: self.output_key.clone(),
                system: self.system_key.clone(),
                text: self.text_key.clone(),
            },
            strict: self.strict,
        }
    }
}
