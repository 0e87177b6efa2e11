//! Tests of the decoder: KV cache, gradients against the f64 reference model, packing.

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

/// Three documents packed into two rows of 12 (row 0: 5 + 7 tokens; row 1: 9 tokens and 3
/// of padding, its own document), and the same documents run alone.
struct Packed {
    docs: Vec<Vec<u32>>,
    /// (row, start) of each document.
    at: Vec<(usize, usize)>,
    ids: Tensor,
    segs: Arc<Segments>,
}

fn packed() -> Packed {
    let docs: Vec<Vec<u32>> = vec![
        vec![1, 5, 9, 2, 22],
        vec![3, 3, 0, 14, 8, 19, 4],
        vec![7, 7, 12, 5, 1, 9, 20, 2, 11],
    ];
    let at = vec![(0, 0), (0, 5), (1, 0)];
    let t = 12;
    let (mut ids, mut doc_ids) = (vec![0u32; 2 * t], vec![0u32; 2 * t]);
    for (d, (doc, &(r, s))) in docs.iter().zip(&at).enumerate() {
        ids[r * t + s..r * t + s + doc.len()].copy_from_slice(doc);
        doc_ids[r * t + s..r * t + s + doc.len()].fill(d as u32);
    }
    doc_ids[t + 9..].fill(3);
    Packed {
        ids: Tensor::from_vec(ids, (2, t), &Device::Cpu).unwrap(),
        segs: Segments::from_doc_ids(&doc_ids, 2, t).unwrap(),
        docs,
        at,
    }
}

fn packed_model() -> (VarMap, Llama) {
    let mut cfg = LlamaConfig::tiny(23, 16, 2, 4);
    cfg.num_key_value_heads = Some(2);
    cfg.max_position_embeddings = 16;
    Llama::init(&cfg, 21).unwrap()
}

/// Targets `[b, t]` (the next token within the same document) and a mask selecting the
/// documents in `which` (every position but each document's last).
fn packed_targets(p: &Packed, which: &[usize]) -> (Tensor, Tensor) {
    let (b, t) = p.segs.dims();
    let (mut y, mut m) = (vec![0u32; b * t], vec![0f32; b * t]);
    for &d in which {
        let ((r, s), doc) = (p.at[d], &p.docs[d]);
        for k in 0..doc.len() - 1 {
            y[r * t + s + k] = doc[k + 1];
            m[r * t + s + k] = 1.0;
        }
    }
    let dev = &Device::Cpu;
    (
        Tensor::from_vec(y, (b, t), dev).unwrap(),
        Tensor::from_vec(m, (b, t), dev).unwrap(),
    )
}

fn alone(doc: &[u32]) -> (Tensor, Tensor) {
    let n = doc.len() - 1;
    let dev = &Device::Cpu;
    (
        Tensor::from_slice(&doc[..n], (1, n), dev).unwrap(),
        Tensor::from_slice(&doc[1..], (1, n), dev).unwrap(),
    )
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn packed_documents_give_the_logits_and_losses_of_each_document_alone() {
    let (_vm, m) = packed_model();
    let p = packed();
    let logits = m.forward_packed(&p.ids, &p.segs).unwrap();
    for (d, doc) in p.docs.iter().enumerate() {
        let (r, s) = p.at[d];
        let solo = m
            .forward(
                &Tensor::new(doc.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
                None,
            )
            .unwrap();
        let part = logits
            .narrow(0, r, 1)
            .unwrap()
            .narrow(1, s, doc.len())
            .unwrap();
        let diff = max_abs(&part, &solo);
        assert!(diff < 1e-4, "document {d}: logits differ by {diff}");
        // Its loss, selected by the mask from the packed batch, is its loss alone.
        let (y, mask) = packed_targets(&p, &[d]);
        let lp = m
            .loss_packed(&p.ids, &y, Some(&mask), Some(&p.segs))
            .unwrap();
        let (x1, y1) = alone(doc);
        let l1 = m.loss(&x1, &y1, None).unwrap();
        let diff = max_abs(&lp, &l1);
        assert!(diff < 1e-5, "document {d}: loss differs by {diff}");
    }
    // Without segments the second document would see the first: the packing matters.
    let plain = m.forward(&p.ids, None).unwrap();
    let d1 = |l: &Tensor| l.narrow(0, 0, 1).unwrap().narrow(1, 5, 7).unwrap();
    assert!(max_abs(&d1(&plain), &d1(&logits)) > 1e-3);
}

#[test]
fn packed_gradients_are_the_sum_of_per_document_gradients() {
    let (vm, m) = packed_model();
    let p = packed();
    // Mean over all trained positions × their count = the sum of per-token losses.
    let all: Vec<usize> = (0..p.docs.len()).collect();
    let (y, mask) = packed_targets(&p, &all);
    let n: usize = p.docs.iter().map(|d| d.len() - 1).sum();
    let packed_sum = (m
        .loss_packed(&p.ids, &y, Some(&mask), Some(&p.segs))
        .unwrap()
        * n as f64)
        .unwrap()
        .backward()
        .unwrap();
    let solo: Vec<_> = p
        .docs
        .iter()
        .map(|doc| {
            let (x1, y1) = alone(doc);
            (m.loss(&x1, &y1, None).unwrap() * (doc.len() - 1) as f64)
                .unwrap()
                .backward()
                .unwrap()
        })
        .collect();
    for v in vm.all_vars() {
        let a = packed_sum.get(&v).expect("packed grad");
        let b = solo
            .iter()
            .map(|g| g.get(&v).expect("solo grad").clone())
            .reduce(|x, y| (x + y).unwrap())
            .unwrap();
        let scale = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .max(1e-6);
        let d = max_abs(a, &b) / scale;
        assert!(
            d < 1e-4,
            "gradient of a {:?} parameter differs: {d:.2e}",
            v.dims()
        );
    }
}

#[test]
fn packed_forward_rejects_mismatched_segments() {
    let (_vm, m) = packed_model();
    let p = packed();
    let other = Segments::from_doc_ids(&[0; 12], 1, 12).unwrap();
    assert!(m.forward_packed(&p.ids, &other).is_err());
    // A document longer than the model's positions is refused even if the row fits.
    let mut cfg = m.config.clone();
    cfg.max_position_embeddings = 8;
    let (_v2, small) = Llama::init(&cfg, 1).unwrap();
    let e = small
        .forward_packed(&p.ids, &p.segs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exceeds max_position_embeddings"), "{e}");
}
