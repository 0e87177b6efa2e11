//! The Llama-family decoder: token embedding → N × (RMSNorm → GQA attention with RoPE →
//! residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head (tied or untied).
//!
//! Tensor names are Hugging Face's (`model.layers.3.self_attn.q_proj.weight`, …) so the same
//! struct loads Keel's own checkpoints, HF safetensors and dequantised GGUF weights.

use crate::config::LlamaConfig;
use crate::lora::{LoraConfig, LoraPair, MODULES};
use crate::ops::{self, RopeTables};
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
        mut cache: Option<&mut KvCache>,
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        if offset + t > c.max_position_embeddings {
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
            let q = ops::rope(&lin(0, &n, &l.wq)?, &self.rope, h, offset)?;
            let k = ops::rope(&lin(1, &n, &l.wk)?, &self.rope, kvh, offset)?;
            let v = lin(2, &n, &l.wv)?;
            let (k, v) = match cache.as_deref_mut() {
                Some(cache) => cache.append(i, &k, &v, c.max_position_embeddings)?,
                None => (k, v),
            };
            let a = ops::causal_attention(&q, &k, &v, h, kvh)?;
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
        let h = self.forward_hidden(ids, None)?;
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
mod tests {
    use super::*;

    #[test]
    fn kv_cache_forward_matches_full_forward() {
        let cfg = LlamaConfig::tiny(50, 32, 2, 4);
        let (_vm, m) = Llama::init(&cfg, 1).unwrap();
        let ids = Tensor::new(&[[3u32, 7, 9, 11, 2, 5]], &Device::Cpu).unwrap();
        let full = m.forward(&ids, None).unwrap();
        let mut cache = KvCache::new(2);
        let a = m
            .forward(&ids.narrow(1, 0, 4).unwrap(), Some(&mut cache))
            .unwrap();
        let b = m
            .forward(&ids.narrow(1, 4, 1).unwrap(), Some(&mut cache))
            .unwrap();
        let c = m
            .forward(&ids.narrow(1, 5, 1).unwrap(), Some(&mut cache))
            .unwrap();
        let inc = Tensor::cat(&[a, b, c], 1).unwrap();
        let diff = (full - inc).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
    }

    #[test]
    fn kv_cache_with_gqa_batch_and_growth_matches_full_forward() {
        let mut cfg = LlamaConfig::tiny(40, 32, 2, 4);
        cfg.num_key_value_heads = Some(2);
        cfg.max_position_embeddings = 128;
        let (_vm, m) = Llama::init(&cfg, 3).unwrap();
        let ids: Vec<u32> = (0..2 * 70).map(|i| (i * 7 % 40) as u32).collect();
        let ids = Tensor::from_vec(ids, (2, 70), &Device::Cpu).unwrap();
        let full = m.forward(&ids, None).unwrap();
        let mut cache = KvCache::new(2);
        // 60 positions, then single steps past the initial 64-row capacity (the buffer grows).
        let mut parts = vec![m
            .forward(&ids.narrow(1, 0, 60).unwrap(), Some(&mut cache))
            .unwrap()];
        for p in 60..70 {
            parts.push(
                m.forward(&ids.narrow(1, p, 1).unwrap(), Some(&mut cache))
                    .unwrap(),
            );
        }
        assert_eq!(cache.len(), 70);
        let inc = Tensor::cat(&parts, 1).unwrap();
        let diff = (full - inc).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
        // A cloned cache is independent: extending the clone leaves the original intact.
        let mut c2 = cache.clone();
        m.forward(&ids.narrow(1, 0, 1).unwrap(), Some(&mut c2))
            .unwrap();
        assert_eq!((cache.len(), c2.len()), (70, 71));
    }

    /// The same model written with the composite reference ops, in f64.
    fn reference_loss(m: &Llama, ids: &Tensor, targets: &Tensor, mask: &Tensor) -> Tensor {
        use crate::ops::reference as r;
        let c = &m.config;
        let f = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let (h, kvh, eps) = (c.num_attention_heads, c.kv_heads(), c.rms_norm_eps);
        let (b, t) = ids.dims2().unwrap();
        let (cos, sin) = m.rope.narrow(0, t).unwrap();
        let mut x = f(&m.embed)
            .index_select(&ids.flatten_all().unwrap(), 0)
            .unwrap()
            .reshape((b, t, c.hidden_size))
            .unwrap();
        for l in &m.layers {
            let n = r::rms_norm(&x, &f(&l.attn_norm), eps).unwrap();
            let q = r::rope(&r::linear(&n, &f(&l.wq)).unwrap(), &cos, &sin, h).unwrap();
            let k = r::rope(&r::linear(&n, &f(&l.wk)).unwrap(), &cos, &sin, kvh).unwrap();
            let v = r::linear(&n, &f(&l.wv)).unwrap();
            let a = r::causal_attention(&q, &k, &v, h, kvh).unwrap();
            x = (x + r::linear(&a, &f(&l.wo)).unwrap()).unwrap();
            let n = r::rms_norm(&x, &f(&l.mlp_norm), eps).unwrap();
            let g = r::swiglu(
                &r::linear(&n, &f(&l.w_gate)).unwrap(),
                &r::linear(&n, &f(&l.w_up)).unwrap(),
            )
            .unwrap();
            x = (x + r::linear(&g, &f(&l.w_down)).unwrap()).unwrap();
        }
        let hdn = r::rms_norm(&x, &f(&m.final_norm), eps).unwrap();
        let logits = r::linear(&hdn, &f(&m.lm_head))
            .unwrap()
            .reshape((b * t, c.vocab_size))
            .unwrap();
        r::cross_entropy(
            &logits,
            &targets.flatten_all().unwrap(),
            Some(&mask.flatten_all().unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn model_gradients_match_the_f64_reference_model() {
        // Every parameter's gradient through the fused model (f32) against the same model
        // built from the composite reference ops in f64, which the op-level checks pin to
        // finite differences. Covers the wiring: GQA, tied and untied heads, mask, residuals.
        for tied in [true, false] {
            let mut cfg = LlamaConfig::tiny(23, 16, 2, 4);
            cfg.num_key_value_heads = Some(2);
            cfg.tie_word_embeddings = tied;
            let (vm, m) = Llama::init(&cfg, 9).unwrap();
            let ids = Tensor::new(
                &[[1u32, 5, 9, 2, 22, 7], [3, 3, 0, 14, 8, 19]],
                &Device::Cpu,
            )
            .unwrap();
            let tg = Tensor::new(
                &[[5u32, 9, 2, 22, 7, 1], [3, 0, 14, 8, 19, 4]],
                &Device::Cpu,
            )
            .unwrap();
            let mask = Tensor::new(
                &[[1f32, 1., 0., 1., 1., 1.], [0., 1., 1., 1., 1., 0.]],
                &Device::Cpu,
            )
            .unwrap();
            let fused = m.loss(&ids, &tg, Some(&mask)).unwrap();
            let reference = reference_loss(&m, &ids, &tg, &mask);
            let (lf, lr) = (
                fused.to_scalar::<f32>().unwrap() as f64,
                reference.to_scalar::<f64>().unwrap(),
            );
            assert!((lf - lr).abs() < 1e-5 * lr.abs(), "loss {lf} vs {lr}");
            let (gf, gr) = (fused.backward().unwrap(), reference.backward().unwrap());
            let vars = vm.all_vars();
            assert_eq!(vars.len(), parameter_shapes(&cfg).len());
            for v in vars {
                let a = gf
                    .get(&v)
                    .expect("fused grad")
                    .to_dtype(DType::F64)
                    .unwrap();
                // The reference converted each weight to f64, so its gradient flows back
                // through that conversion to the same f32 variable.
                let b = gr
                    .get(&v)
                    .expect("reference grad")
                    .to_dtype(DType::F64)
                    .unwrap();
                let scale = b
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
                    .max(1e-8);
                let d = (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                assert!(
                    d / scale < 1e-4,
                    "gradient of a {:?} parameter differs: {:.2e}",
                    v.dims(),
                    d / scale
                );
            }
        }
    }

    #[test]
    fn tiny_model_overfits_a_repeated_pattern() {
        let mut cfg = LlamaConfig::tiny(32, 64, 2, 4);
        cfg.max_position_embeddings = 64;
        let (vm, m) = Llama::init(&cfg, 11).unwrap();
        let mut opt = crate::bench::FusedAdamW::new(vm.all_vars(), 1e-2, (0.9, 0.95), 1e-8, 0.0);
        // Period-8 pattern, 4 different phases per batch: after the first period the next
        // token is fully determined, so the loss can approach zero.
        let pat = [3u32, 17, 8, 25, 1, 30, 12, 6];
        let row = |s: usize| -> Vec<u32> { (0..33).map(|i| pat[(i + s) % 8]).collect() };
        let data: Vec<u32> = (0..4).flat_map(|s| row(2 * s)).collect();
        let all = Tensor::from_vec(data, (4, 33), &Device::Cpu).unwrap();
        let (inp, tgt) = (
            all.narrow(1, 0, 32).unwrap().contiguous().unwrap(),
            all.narrow(1, 1, 32).unwrap().contiguous().unwrap(),
        );
        // Mask out the first period, where the next token is not yet predictable.
        let mask: Vec<f32> = (0..4 * 32)
            .map(|i| if i % 32 >= 8 { 1.0 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (4, 32), &Device::Cpu).unwrap();
        let mut loss = f32::INFINITY;
        for _ in 0..150 {
            let l = m.loss(&inp, &tgt, Some(&mask)).unwrap();
            loss = l.to_scalar::<f32>().unwrap();
            if loss < 0.05 {
                break;
            }
            opt.clip_and_step(&l.backward().unwrap(), 1.0).unwrap();
        }
        assert!(loss < 0.1, "loss after training: {loss}");
    }

    #[test]
    fn init_is_deterministic() {
        let cfg = LlamaConfig::tiny(50, 32, 1, 4);
        let (_a, m1) = Llama::init(&cfg, 5).unwrap();
        let (_b, m2) = Llama::init(&cfg, 5).unwrap();
        let d = (m1.embed.clone() - m2.embed.clone())
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    }
}
