//! What a trainer optimises: every weight of a model (full fine-tuning) or LoRA adapters on a
//! frozen base. Trainers (SFT, DPO, RL) load a [`Policy`], optimise [`Policy::params`] and
//! checkpoint with [`Policy::save_checkpoint`]; the difference between the two kinds stays in
//! this file.
//!
//! A starting model can be a Keel checkpoint, a Hugging Face directory, a GGUF file, or a LoRA
//! adapter directory (trained further as LoRA, or merged for full fine-tuning).
//!
//! Checkpoints: full fine-tuning writes an HF model directory (see [`crate::checkpoint`]); LoRA
//! writes a PEFT adapter directory — `adapter_config.json` (whose `base_model_name_or_path`
//! points at the base) + `adapter_model.safetensors` — which `keel_model::load_model` loads
//! merged, so `keel chat`, `keel eval` and `keel export` take it as is.

use crate::checkpoint::{self, TrainerState};
use crate::error::{Result, TrainError};
use crate::optim::AdamW;
use candle_core::Var;
use candle_nn::VarMap;
use keel_model::lora::LoraConfig;
use keel_model::{Llama, LlamaConfig, LoadedModel};
use std::path::{Path, PathBuf};

/// The trainable part of a [`Policy`].
pub enum Trainable {
    /// Every parameter is a `Var` (HF names).
    Full(VarMap),
    /// Only the adapters are `Var`s (PEFT names); the base weights are plain tensors.
    Lora {
        config: LoraConfig,
        adapters: VarMap,
    },
}

pub struct Policy {
    pub config: LlamaConfig,
    pub trainable: Trainable,
    /// `tokenizer.json` to write into checkpoints.
    pub tokenizer_json: Option<Vec<u8>>,
    /// The model (reading the trainable `Var`s), its tokenizer, chat template and special
    /// tokens.
    pub loaded: LoadedModel,
    /// Where the starting weights came from (absolute when possible).
    pub source: PathBuf,
}

impl Policy {
    /// Load `path` for training. With `lora`, the base is frozen and fresh adapters (seeded)
    /// are attached; without, every weight is trainable. A LoRA adapter directory as `path`
    /// continues training its adapter when `lora` is `None`.
    pub fn load(path: &Path, lora: Option<&LoraConfig>, seed: u64) -> Result<Policy> {
        let source = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let is_adapter = path.join(keel_model::load::ADAPTER_CONFIG).is_file();
        let (loaded, trainable) = match (lora, is_adapter) {
            (None, true) => {
                let (adapters, config, loaded) = keel_model::load::load_with_adapter(path)?;
                (loaded, Trainable::Lora { config, adapters })
            }
            (None, false) => {
                let (varmap, loaded) = keel_model::load_trainable(path)?;
                (loaded, Trainable::Full(varmap))
            }
            (Some(cfg), _) => {
                // A base that is itself an adapter is merged first, then adapted afresh.
                let mut loaded = keel_model::load_model(path)?;
                let mut cfg = cfg.clone();
                cfg.base_model_name_or_path = source.display().to_string();
                let shapes = keel_model::llama::lora_shapes(&loaded.config);
                let adapters = keel_model::lora::init_adapters(&cfg, &shapes, seed)?;
                loaded.model.attach_lora(&cfg, &adapters)?;
                (
                    loaded,
                    Trainable::Lora {
                        config: cfg,
                        adapters,
                    },
                )
            }
        };
        let tokenizer_json = match path.join("tokenizer.json") {
            p if p.is_file() => {
                Some(std::fs::read(&p).map_err(|e| keel_core::CoreError::io(&p, e))?)
            }
            _ => Some(
                loaded
                    .tokenizer
                    .to_string(false)
                    .map_err(|e| TrainError::Data(format!("tokenizer: {e}")))?
                    .into_bytes(),
            ),
        };
        Ok(Policy {
            config: loaded.config.clone(),
            trainable,
            tokenizer_json,
            loaded,
            source,
        })
    }

    pub fn model(&self) -> &Llama {
        &self.loaded.model
    }

    pub fn is_lora(&self) -> bool {
        matches!(self.trainable, Trainable::Lora { .. })
    }

    /// The parameters to optimise, by name, in a stable order.
    pub fn params(&self) -> Result<Vec<(String, Var)>> {
        match &self.trainable {
            Trainable::Full(varmap) => checkpoint::named_vars(&self.config, varmap),
            Trainable::Lora { adapters, .. } => {
                let mut v: Vec<(String, Var)> = adapters
                    .data()
                    .lock()
                    .expect("varmap lock")
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(v)
            }
        }
    }

    /// Number of trainable scalars.
    pub fn trainable_params(&self) -> Result<usize> {
        Ok(self.params()?.iter().map(|(_, v)| v.elem_count()).sum())
    }

    /// A fingerprint of the starting weights, for the run's identity (resume checks).
    pub fn source_sha256(&self) -> Result<String> {
        let file = if self.source.is_dir() {
            let adapter = self.source.join(keel_model::load::ADAPTER_WEIGHTS);
            if adapter.is_file() {
                adapter
            } else {
                self.source.join("model.safetensors")
            }
        } else {
            self.source.clone()
        };
        Ok(keel_core::artifact::sha256_file(&file)?)
    }

    /// Write a checkpoint (HF model directory, or PEFT adapter directory for LoRA).
    pub fn save_checkpoint(
        &self,
        run_dir: &Path,
        opt: &AdamW,
        state: &TrainerState,
        keep: usize,
    ) -> Result<PathBuf> {
        let tok = self.tokenizer_json.as_deref();
        match &self.trainable {
            Trainable::Full(varmap) => {
                checkpoint::save(run_dir, &self.config, varmap, opt, state, tok, keep)
            }
            Trainable::Lora { config, .. } => {
                let adapter_config = serde_json::to_vec_pretty(config)
                    .map_err(|e| TrainError::Config(e.to_string()))?;
                checkpoint::save_named(
                    run_dir,
                    &self.config,
                    &self.params()?,
                    keel_model::load::ADAPTER_WEIGHTS,
                    &[(keel_model::load::ADAPTER_CONFIG, adapter_config)],
                    opt,
                    state,
                    tok,
                    keep,
                )
            }
        }
    }

    /// Restore trainable weights and optimizer state from a checkpoint of this policy's kind.
    pub fn restore_checkpoint(&self, dir: &Path, opt: &mut AdamW) -> Result<TrainerState> {
        match &self.trainable {
            Trainable::Full(varmap) => checkpoint::restore(dir, &self.config, varmap, opt),
            Trainable::Lora { .. } => checkpoint::restore_named(
                dir,
                &self.config,
                &self.params()?,
                keel_model::load::ADAPTER_WEIGHTS,
                opt,
            ),
        }
    }
}
