//! LoRA flags shared by the trainers that take a [`keel_train::policy::Policy`] (`keel sft`,
//! `keel dpo`; flatten with `#[command(flatten)]`). Without `--lora-rank` every weight trains.

use keel_model::lora::LoraConfig;

#[derive(clap::Args, Debug, Clone)]
pub struct LoraArgs {
    /// Train LoRA adapters of this rank on a frozen base instead of every weight.
    #[arg(long)]
    pub lora_rank: Option<usize>,
    /// LoRA scale numerator (update × alpha/rank).
    #[arg(long, default_value_t = 16.0)]
    pub lora_alpha: f64,
    #[arg(long, default_value_t = 0.05)]
    pub lora_dropout: f64,
    /// Comma-separated projections to adapt (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj).
    #[arg(long, value_delimiter = ',')]
    pub lora_targets: Option<Vec<String>>,
}

impl LoraArgs {
    /// The adapter config the flags ask for; `None` (full fine-tuning) without `--lora-rank`.
    pub fn config(&self) -> Option<LoraConfig> {
        let rank = self.lora_rank?;
        let mut l = LoraConfig {
            rank,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            ..Default::default()
        };
        if let Some(t) = &self.lora_targets {
            l.target_modules = t.clone();
        }
        Some(l)
    }
}
