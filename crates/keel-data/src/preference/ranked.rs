//! k-wise rankings (`{"prompt", "responses", "scores" | "ranking"}`), expanded into every
//! ordered pair of differently ranked responses; ties give no pair.

use super::{missing, prompt_at, wrong, PrefBadReason, PrefFields, PreferencePair, RowErr};
use serde_json::{Map, Value};

/// k-wise rows: every pair of responses with different rank, better one chosen.
pub(super) fn ranked(
    obj: &Map<String, Value>,
    f: &PrefFields,
) -> std::result::Result<Vec<PreferencePair>, RowErr> {
    let prompt = prompt_at(obj, &f.prompt)?;
    let responses: Vec<String> = match obj.get(&f.responses) {
        None => return Err(missing(&f.responses)),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                Value::String(_) => Err((
                    format!("{}[{i}]", f.responses),
                    PrefBadReason::EmptyCompletion,
                    "empty reply".into(),
                )),
                v => Err(wrong(
                    &format!("{}[{i}]", f.responses),
                    "must be a string",
                    v,
                )),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(v) => return Err(wrong(&f.responses, "must be a list of strings", v)),
    };
    let k = responses.len();
    let bad_rank = |field: &str, m: String| (field.to_string(), PrefBadReason::BadRanking, m);
    // rank[i]: lower is better.
    let rank: Vec<f64> = match (obj.get(&f.scores), obj.get(&f.ranking)) {
        (Some(Value::Array(s)), _) => {
            let s: Option<Vec<f64>> = s.iter().map(Value::as_f64).collect();
            let s = s.ok_or_else(|| bad_rank(&f.scores, "scores must all be numbers".into()))?;
            if s.len() != k || s.iter().any(|v| !v.is_finite()) {
                return Err(bad_rank(
                    &f.scores,
                    format!("{} finite scores needed for {k} responses", k),
                ));
            }
            s.iter().map(|v| -v).collect()
        }
        (_, Some(Value::Array(r))) => {
            let r: Option<Vec<usize>> = r.iter().map(|v| v.as_u64().map(|x| x as usize)).collect();
            let r =
                r.ok_or_else(|| bad_rank(&f.ranking, "ranking must be response indices".into()))?;
            let mut seen = vec![false; k];
            if r.len() != k
                || r.iter()
                    .any(|&i| i >= k || std::mem::replace(&mut seen[i], true))
            {
                return Err(bad_rank(
                    &f.ranking,
                    format!("ranking must be a permutation of 0..{k}"),
                ));
            }
            let mut rank = vec![0.0; k];
            for (pos, &i) in r.iter().enumerate() {
                rank[i] = pos as f64;
            }
            rank
        }
        (None, None) => return Err(missing(&f.scores)),
        (Some(v), _) => return Err(wrong(&f.scores, "must be a list of numbers", v)),
        (_, Some(v)) => return Err(wrong(&f.ranking, "must be a list of indices", v)),
    };
    let mut out = Vec::new();
    for i in 0..k {
        for j in 0..k {
            if rank[i] < rank[j] && responses[i] != responses[j] {
                out.push(PreferencePair {
                    prompt: prompt.clone(),
                    chosen: responses[i].clone(),
                    rejected: responses[j].clone(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(bad_rank(
            &f.responses,
            "no two responses differ in rank".into(),
        ));
    }
    Ok(out)
}
