//! The Llama-family decoder: token embedding → N × (RMSNorm → GQA attention with RoPE →
//! residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head (tied or untied).
//!
//! Tensor names are Hugging Face's (`model.layers.3.self_attn.q_proj.weight`, …) so the same
//! struct loads Keel's own checkpoints, HF safetensors and dequantised GGUF weights.

use crate::config::LlamaConfig;
use crate::ops;
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use keel_core::rng::rng_for;
use rand::Rng;

/// `x @ w.T` for `x: [.., in]`, `w: [out, in]`, flattening leading dims into one matmul.
pub fn linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let inner = *dims.last().unwrap();
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let y = x.reshape((rows, inner))?.matmul(&w.t()?)?;
    let mut out = dims;
    *out.last_mut().unwrap() = w.dim(0)?;
    y.reshape(out)
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
}

/// Keys and values of earlier positions, one pair per layer: `[b, kv_heads, s, head_dim]`.
#[derive(Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: vec![None; num_layers],
        }
    }
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        match self.layers.first() {
            Some(Some((k, _))) => k.dim(2).unwrap_or(0),
            _ => 0,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Llama {
    pub config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    final_norm: Tensor,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
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
                w_gate: vb.get((c.intermediate_size, d), &format!("{p}.mlp.gate_proj.weight"))?,
                w_up: vb.get((c.intermediate_size, d), &format!("{p}.mlp.up_proj.weight"))?,
                w_down: vb.get((d, c.intermediate_size), &format!("{p}.mlp.down_proj.weight"))?,
            });
        }
        let final_norm = vb.get(d, "model.norm.weight")?;
        let lm_head = if c.tie_word_embeddings {
            embed.clone()
        } else {
            vb.get((c.vocab_size, d), "lm_head.weight")?
        };
        let (cos, sin) = ops::rope_tables(c.head_dim(), c.max_position_embeddings, c.rope_theta)?;
        Ok(Llama {
            config: c.clone(),
            embed,
            layers,
            final_norm,
            lm_head,
            cos,
            sin,
        })
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
        let (h, kvh, dh) = (c.num_attention_heads, c.kv_heads(), c.head_dim());
        let cos = self.cos.narrow(0, offset, t)?;
        let sin = self.sin.narrow(0, offset, t)?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, c.hidden_size))?;
        for (i, l) in self.layers.iter().enumerate() {
            let n = ops::rms_norm(&x, &l.attn_norm, c.rms_norm_eps)?;
            let q = linear(&n, &l.wq)?.reshape((b, t, h, dh))?.transpose(1, 2)?;
            let k = linear(&n, &l.wk)?.reshape((b, t, kvh, dh))?.transpose(1, 2)?;
            let v = linear(&n, &l.wv)?.reshape((b, t, kvh, dh))?.transpose(1, 2)?;
            let q = ops::rope(&q.contiguous()?, &cos, &sin)?;
            let k = ops::rope(&k.contiguous()?, &cos, &sin)?;
            let (k, v) = match cache.as_deref_mut() {
                Some(cache) => {
                    let (k, v) = match &cache.layers[i] {
                        Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                        None => (k, v.contiguous()?),
                    };
                    cache.layers[i] = Some((k.clone(), v.clone()));
                    (k, v)
                }
                None => (k, v),
            };
            let a = ops::causal_attention(&q, &k, &v)?;
            let a = a.transpose(1, 2)?.reshape((b, t, c.hidden_size))?;
            x = (x + linear(&a, &l.wo)?)?;
            let n = ops::rms_norm(&x, &l.mlp_norm, c.rms_norm_eps)?;
            let m = ops::swiglu(&linear(&n, &l.w_gate)?, &linear(&n, &l.w_up)?)?;
            x = (x + linear(&m, &l.w_down)?)?;
        }
        ops::rms_norm(&x, &self.final_norm, c.rms_norm_eps)
    }

    /// Logits `[b, t, vocab]`.
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> candle_core::Result<Tensor> {
        let h = self.forward_hidden(ids, cache)?;
        linear(&h, &self.lm_head)
    }

    /// Mean next-token cross-entropy of `ids` `[b, t]` against `targets` `[b, t]`, counting
    /// only positions where `mask` `[b, t]` is 1 (all positions when `None`).
    pub fn loss(
        &self,
        ids: &Tensor,
        targets: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let logits = self.forward(ids, None)?;
        let v = logits.dim(D::Minus1)?;
        let logits = logits.reshape(((), v))?;
        let targets = targets.flatten_all()?;
        let mask = mask.map(|m| m.flatten_all()).transpose()?;
        ops::cross_entropy(&logits, &targets, mask.as_ref())
    }
}

/// Every parameter's HF name and shape, in a stable order (used for init, export, checks).
pub fn parameter_shapes(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let d = c.hidden_size;
    let kv = c.kv_heads() * c.head_dim();
    let f = c.intermediate_size;
    let mut v = vec![("model.embed_tokens.weight".to_string(), vec![c.vocab_size, d])];
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
        let a = m.forward(&ids.narrow(1, 0, 4).unwrap(), Some(&mut cache)).unwrap();
        let b = m.forward(&ids.narrow(1, 4, 1).unwrap(), Some(&mut cache)).unwrap();
        let c = m.forward(&ids.narrow(1, 5, 1).unwrap(), Some(&mut cache)).unwrap();
        let inc = Tensor::cat(&[a, b, c], 1).unwrap();
        let diff = (full - inc).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
    }

    #[test]
    fn init_is_deterministic() {
        let cfg = LlamaConfig::tiny(50, 32, 1, 4);
        let (_a, m1) = Llama::init(&cfg, 5).unwrap();
        let (_b, m2) = Llama::init(&cfg, 5).unwrap();
        let d = (m1.embed.clone() - m2.embed.clone()).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    }
}
