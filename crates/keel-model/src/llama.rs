//! The Llama-family decoder: token embedding → N × (RMSNorm → GQA attention with RoPE →
//! residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head (tied or untied).
//!
//! Tensor names are Hugging Face's (`model.layers.3.self_attn.q_proj.weight`, …) so the same
//! struct loads Keel's own checkpoints, HF safetensors and dequantised GGUF weights.

use crate::config::LlamaConfig;
use crate::lora::{LoraConfig, LoraPair, MODULES};
use crate::ops::{self, RopeTables, Segments};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use keel_core::rng::rng_for;
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// `x @ w.T` for `x: [.., in]`, `w: [out, in]`: one fused graph node (see [`ops::linear`]).
pub fn linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    ops::linear(x, w)
}

struct Layer {
    attn_norm: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    mlp_norm: Tensor,
    w_gate: Tensor,
    w_up: Tensor,
    w_down: Tensor,
    /// LoRA adapters, indexed like [`MODULES`] (q, k, v, o, gate, up, down).
    lora: [Option<LoraPair>; 7],
}

impl Layer {
    fn weight_mut(&mut self, module: usize) -> &mut Tensor {
        match module {
            0 => &mut self.wq,
            1 => &mut self.wk,
            2 => &mut self.wv,
            3 => &mut self.wo,
            4 => &mut self.w_gate,
            5 => &mut self.w_up,
            _ => &mut self.w_down,
        }
    }
}

/// "No dropout key": evaluation mode.
const NO_KEY: u64 = u64::MAX;

/// Keys and values of earlier positions, one pair per layer, each a preallocated
/// `[b, capacity, kv_heads·head_dim]` buffer written in place: a decode step copies only its
/// own new row instead of concatenating the whole history (which made generation quadratic in
/// copies). Capacity doubles when full, so appends are amortised O(1).
#[derive(Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl Clone for KvCache {
    /// A deep copy: the buffers are written in place, so sharing them would let two caches
    /// overwrite each other's history.
    fn clone(&self) -> Self {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                l.as_ref()
                    .map(|(k, v)| (k.copy().expect("cpu copy"), v.copy().expect("cpu copy")))
            })
            .collect();
        KvCache {
            layers,
            len: self.len,
        }
    }
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: vec![None; num_layers],
            len: 0,
        }
    }
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes layer `i`'s new keys/values `[b, t, w]` after the cached `len` positions and
    /// returns views of all `len + t` positions. `max_len` caps the buffer's growth.
    fn append(
        &mut self,
        i: usize,
        k: &Tensor,
        v: &Tensor,
        max_len: usize,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, t, w) = k.dims3()?;
        let need = self.len + t;
        let slot = self
            .layers
            .get_mut(i)
            .ok_or_else(|| candle_core::Error::Msg(format!("kv cache has no layer {i}")))?;
        let fits = matches!(slot, Some((ck, _)) if ck.dim(0)? == b && ck.dim(1)? >= need && ck.dim(2)? == w);
        if !fits {
            let cap = (need.max(64).next_power_of_two()).min(max_len.max(need));
            let grow = |old: Option<&Tensor>| -> candle_core::Result<Tensor> {
                let buf = Tensor::zeros((b, cap, w), DType::F32, k.device())?;
                if let Some(old) = old {
                    if self.len > 0 {
                        buf.slice_set(&old.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                    }
                }
                Ok(buf)
            };
            let (ok, ov) = match slot.take() {
                Some((ok, ov)) if ok.dim(0)? == b && ok.dim(2)? == w => (Some(ok), Some(ov)),
                _ if self.len > 0 => {
                    candle_core::bail!("kv cache: batch or width changed mid-sequence")
                }
                _ => (None, None),
            };
            *slot = Some((grow(ok.as_ref())?, grow(ov.as_ref())?));
        }
        let (ck, cv) = slot.as_ref().expect("allocated above");
        ck.slice_set(&k.detach().contiguous()?, 1, self.len)?;
        cv.slice_set(&v.detach().contiguous()?, 1, self.len)?;
        Ok((ck.narrow(1, 0, need)?, cv.narrow(1, 0, need)?))
    }
}

pub struct Llama {
    pub config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    final_norm: Tensor,
    lm_head: Tensor,
    rope: Arc<RopeTables>,
    lora_dropout: f64,
    /// Seed of this forward's LoRA dropout masks, or `NO_KEY` (no dropout).
    dropout_key: AtomicU64,
    /// Whether attached adapters take part in the forward (off: the frozen base alone).
    lora_enabled: AtomicBool,
}

impl Llama {
    /// Build from any variable source whose names follow Hugging Face's Llama layout.
    pub fn load(config: &LlamaConfig, vb: VarBuilder) -> crate::Result<Self> {
        config.validate()?;
        let c = config;
        let d = c.hidden_size;
        let kv = c.kv_heads() * c.head_dim();
        let embed = vb.get((c.vocab_size, d), "model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                attn_norm: vb.get(d, &format!("{p}.input_layernorm.weight"))?,
                wq: vb.get((d, d), &format!("{p}.self_attn.q_proj.weight"))?,
                wk: vb.get((kv, d), &format!("{p}.self_attn.k_proj.weight"))?,
                wv: vb.get((kv, d), &format!("{p}.self_attn.v_proj.weight"))?,
                wo: vb.get((d, d), &format!("{p}.self_attn.o_proj.weight"))?,
                mlp_norm: vb.get(d, &format!("{p}.post_attention_layernorm.weight"))?,
                w_gate: vb.get(
                    (c.intermediate_size, d),
                    &format!("{p}.mlp.gate_proj.weight"),
                )?,
                w_up: vb.get((c.intermediate_size, d), &format!("{p}.mlp.up_proj.weight"))?,
                w_down: vb.get(
                    (d, c.intermediate_size),
                    &format!("{p}.mlp.down_proj.weight"),
                )?,
                lora: Default::default(),
            });
        }
        let final_norm = vb.get(d, "model.norm.weight")?;
        let lm_head = if c.tie_word_embeddings {
            embed.clone()
        } else {
            vb.get((c.vocab_size, d), "lm_head.weight")?
        };
        let rope = RopeTables::new(c.head_dim(), c.max_position_embeddings, c.rope_theta);
        Ok(Llama {
            config: c.clone(),
            embed,
            layers,
            final_norm,
            lm_head,
            rope,
            lora_dropout: 0.0,
            dropout_key: AtomicU64::new(NO_KEY),
            lora_enabled: AtomicBool::new(true),
        })
    }

    /// Attach LoRA adapters (tensors named as [`crate::lora::adapter_name`], e.g. from
    /// [`crate::lora::init_adapters`]); the forward then adds `(α/r)·x Aᵀ Bᵀ` to each targeted
    /// projection. Replaces adapters attached earlier.
    pub fn attach_lora(&mut self, cfg: &LoraConfig, adapters: &VarMap) -> crate::Result<()> {
        cfg.validate()?;
        let data = adapters.data().lock().expect("varmap lock");
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (m, module) in MODULES.iter().enumerate() {
                layer.lora[m] = if cfg.targets(module) {
                    let get = |which: &str| {
                        let name = crate::lora::adapter_name(i, module, which);
                        data.get(&name)
                            .map(|v| v.as_tensor().clone())
                            .ok_or_else(|| {
                                crate::ModelError::Config(format!("lora: missing adapter {name}"))
                            })
                    };
                    Some(LoraPair {
                        a: get("lora_A")?,
                        b: get("lora_B")?,
                        scale: cfg.scale(),
                    })
                } else {
                    None
                };
            }
        }
        self.lora_dropout = cfg.dropout;
        Ok(())
    }

    pub fn has_lora(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.lora.iter().any(Option::is_some))
    }

    /// Training mode for LoRA dropout: masks are drawn from `key` (the trainer passes a value
    /// derived from step and micro-batch so resumed runs draw the same masks); `None` turns
    /// dropout off for evaluation and generation.
    pub fn set_lora_dropout_key(&self, key: Option<u64>) {
        self.dropout_key
            .store(key.map_or(NO_KEY, |k| k & !(1 << 63)), Ordering::Relaxed);
    }

    /// Switch attached adapters off (`false`: the forward is the frozen base model's, as a
    /// DPO reference) or back on. No effect on a model without adapters.
    pub fn set_lora_enabled(&self, on: bool) {
        self.lora_enabled.store(on, Ordering::Relaxed);
    }

    /// Fold every adapter into its base weight (`W ← W + (α/r)·B·A`) and drop the adapters.
    /// Returns the new weights by Hugging Face name, for export.
    pub fn merge_lora(&mut self) -> crate::Result<Vec<(String, Tensor)>> {
        let mut merged = Vec::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (m, module) in MODULES.iter().enumerate() {
                if let Some(pair) = layer.lora[m].take() {
                    let w = pair.merged(layer.weight_mut(m))?;
                    *layer.weight_mut(m) = w.clone();
                    let group = if m >= 4 { "mlp" } else { "self_attn" };
                    merged.push((format!("model.layers.{i}.{group}.{module}.weight"), w));
                }
            }
        }
        Ok(merged)
    }

    /// Fresh weights for training from scratch, deterministic in `seed`: N(0, 0.02) for
    /// matrices, with the residual output projections scaled by 1/sqrt(2·layers) (GPT-2's
    /// rule, so the residual stream's variance does not grow with depth), ones for norms.
    pub fn init(config: &LlamaConfig, seed: u64) -> crate::Result<(VarMap, Llama)> {
        config.validate()?;
        let varmap = VarMap::new();
        let mut rng = rng_for(seed, "init");
        let std = 0.02f32;
        let resid_std = std / (2.0 * config.num_hidden_layers as f32).sqrt();
        for (name, shape) in parameter_shapes(config) {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else {
                let s = if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") {
                    resid_std
                } else {
                    std
                };
                (0..n).map(|_| s * standard_normal(&mut rng)).collect()
            };
            let t = Tensor::from_vec(data, shape, &Device::Cpu)?;
            varmap
                .data()
                .lock()
                .expect("varmap lock")
                .insert(name, Var::from_tensor(&t)?);
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = Llama::load(config, vb)?;
        Ok((varmap, model))
    }

    /// Final hidden states `[b, t, d]` (after the last RMSNorm). `cache` holds earlier
    /// positions and is extended with this call's keys and values.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> candle_core::Result<Tensor> {
        self.hidden(ids, cache, None)
    }

    /// Final hidden states `[b, t, d]` of packed rows: `segs` marks the documents side by
    /// side in each row; every document is computed as if alone (attention stays inside it,
    /// RoPE positions restart at 0). No KV cache.
    pub fn forward_hidden_packed(
        &self,
        ids: &Tensor,
        segs: &Arc<Segments>,
    ) -> candle_core::Result<Tensor> {
        self.hidden(ids, None, Some(segs))
    }

    fn hidden(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        segs: Option<&Arc<Segments>>,
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        if let Some(sg) = segs {
            if sg.dims() != (b, t) || cache.is_some() {
                candle_core::bail!(
                    "packed forward: segments {:?} for ids [{b}, {t}] (and no KV cache)",
                    sg.dims()
                );
            }
            if sg.longest() > c.max_position_embeddings {
                candle_core::bail!(
                    "a packed document of {} positions exceeds max_position_embeddings {}",
                    sg.longest(),
                    c.max_position_embeddings
                );
            }
        } else if offset + t > c.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} positions exceeds max_position_embeddings {}",
                offset + t,
                c.max_position_embeddings
            );
        }
        let (h, kvh, eps) = (c.num_attention_heads, c.kv_heads(), c.rms_norm_eps);
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, c.hidden_size))?;
        let key = self.dropout_key.load(Ordering::Relaxed);
        let lora_on = self.lora_enabled.load(Ordering::Relaxed);
        for (i, l) in self.layers.iter().enumerate() {
            let pair = |m: usize| l.lora[m].as_ref().filter(|_| lora_on);
            // The projection of `x` by module `m`'s weight, plus its LoRA update if any.
            let lora = |m: usize, x: &Tensor, y: Tensor| -> candle_core::Result<Tensor> {
                match pair(m) {
                    None => Ok(y),
                    Some(p) => {
                        let k = (key != NO_KEY)
                            .then(|| key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i * 8 + m) as u64);
                        y + p.delta(x, self.lora_dropout, k)?
                    }
                }
            };
            let lin = |m: usize, x: &Tensor, w: &Tensor| lora(m, x, ops::linear(x, w)?);
            let n = ops::rms_norm(&x, &l.attn_norm, eps)?;
            let rope = |x: Tensor, heads: usize| match segs {
                None => ops::rope(&x, &self.rope, heads, offset),
                Some(sg) => ops::rope_segments(&x, &self.rope, heads, sg),
            };
            let q = rope(lin(0, &n, &l.wq)?, h)?;
            let k = rope(lin(1, &n, &l.wk)?, kvh)?;
            let v = lin(2, &n, &l.wv)?;
            let (k, v) = match cache.as_deref_mut() {
                Some(cache) => cache.append(i, &k, &v, c.max_position_embeddings)?,
                None => (k, v),
            };
            let a = ops::segment_attention(&q, &k, &v, h, kvh, segs)?;
            x = lora(3, &a, ops::linear_residual(&x, &a, &l.wo)?)?;
            let n = ops::rms_norm(&x, &l.mlp_norm, eps)?;
            let m = if pair(4).is_some() || pair(5).is_some() {
                ops::swiglu(&lin(4, &n, &l.w_gate)?, &lin(5, &n, &l.w_up)?)?
            } else {
                ops::swiglu_mlp(&n, &l.w_gate, &l.w_up)?
            };
            x = lora(6, &m, ops::linear_residual(&x, &m, &l.w_down)?)?;
        }
        if let Some(cache) = cache {
            cache.len = offset + t;
        }
        ops::rms_norm(&x, &self.final_norm, eps)
    }

    /// The LM head `[vocab, d]` (the embedding matrix when tied): for trainers that fuse
    /// their own head-side loss (per-token log-probs, value heads).
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// Logits `[b, t, vocab]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> candle_core::Result<Tensor> {
        let h = self.forward_hidden(ids, cache)?;
        ops::linear(&h, &self.lm_head)
    }

    /// Logits `[b, t, vocab]` of packed rows (see [`Llama::forward_hidden_packed`]).
    pub fn forward_packed(
        &self,
        ids: &Tensor,
        segs: &Arc<Segments>,
    ) -> candle_core::Result<Tensor> {
        let h = self.forward_hidden_packed(ids, segs)?;
        ops::linear(&h, &self.lm_head)
    }

    /// Logits `[b, vocab]` of the last position only: what a decode step needs, without the
    /// LM head over the whole prompt.
    pub fn forward_last(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> candle_core::Result<Tensor> {
        let h = self.forward_hidden(ids, cache)?;
        let t = h.dim(1)?;
        ops::linear(&h.narrow(1, t - 1, 1)?.squeeze(1)?, &self.lm_head)
    }

    /// Mean next-token cross-entropy of `ids` `[b, t]` against `targets` `[b, t]`, counting
    /// only positions where `mask` `[b, t]` is 1 (all positions when `None`). The LM head
    /// and the loss are one fused op, so no logits tensor is kept.
    pub fn loss(
        &self,
        ids: &Tensor,
        targets: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.loss_packed(ids, targets, mask, None)
    }

    /// [`Llama::loss`] over packed rows when `segs` is given (see
    /// [`Llama::forward_hidden_packed`]): the mean over every counted position of every
    /// document in the batch.
    pub fn loss_packed(
        &self,
        ids: &Tensor,
        targets: &Tensor,
        mask: Option<&Tensor>,
        segs: Option<&Arc<Segments>>,
    ) -> candle_core::Result<Tensor> {
        let h = self.hidden(ids, None, segs)?;
        let h = h.reshape(((), self.config.hidden_size))?;
        ops::linear_cross_entropy(&h, &self.lm_head, targets, mask)
    }
}

/// Every parameter's HF name and shape, in a stable order (used for init, export, checks).
pub fn parameter_shapes(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let d = c.hidden_size;
    let kv = c.kv_heads() * c.head_dim();
    let f = c.intermediate_size;
    let mut v = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![c.vocab_size, d],
    )];
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        v.push((format!("{p}.input_layernorm.weight"), vec![d]));
        v.push((format!("{p}.self_attn.q_proj.weight"), vec![d, d]));
        v.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d]));
        v.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d]));
        v.push((format!("{p}.self_attn.o_proj.weight"), vec![d, d]));
        v.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        v.push((format!("{p}.mlp.gate_proj.weight"), vec![f, d]));
        v.push((format!("{p}.mlp.up_proj.weight"), vec![f, d]));
        v.push((format!("{p}.mlp.down_proj.weight"), vec![d, f]));
    }
    v.push(("model.norm.weight".to_string(), vec![d]));
    if !c.tie_word_embeddings {
        v.push(("lm_head.weight".to_string(), vec![c.vocab_size, d]));
    }
    v
}

/// `((layer, module), (out, in))` for every projection LoRA can adapt, in [`MODULES`] order.
pub fn lora_shapes(c: &LlamaConfig) -> Vec<crate::lora::ProjectionShape> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let kv = c.kv_heads() * c.head_dim();
    let dims = [(d, d), (kv, d), (kv, d), (d, d), (f, d), (f, d), (d, f)];
    (0..c.num_hidden_layers)
        .flat_map(|i| {
            MODULES
                .iter()
                .zip(dims)
                .map(move |(m, s)| ((i, m.to_string()), s))
        })
        .collect()
}

/// Box–Muller: one standard-normal sample from two uniforms.
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

#[cfg(test)]
#[path = "llama_tests.rs"]
mod tests;
