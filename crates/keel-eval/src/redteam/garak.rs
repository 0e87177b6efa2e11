//! garak-compatible report JSONL, so garak's tooling and downstream consumers (AVID
//! conversion, dashboards that read `entry_type` rows) can read Keel's red-team runs.
//!
//! Shape, following garak's report format:
//! - one `"entry_type": "init"` row (version, run id);
//! - one `"entry_type": "attempt"` row per attempt with `status` 2 (response + evaluation),
//!   `probe_classname` ("keel.<attack>"), `prompt` / `outputs` / `conversations` as garak
//!   Conversation/Turn/Message dicts, and `detector_results` where 1.0 = hit (the attack
//!   succeeded) and 0.0 = pass; an unscored attempt has `null`;
//! - one `"entry_type": "eval"` row per probe/detector pair with `passed` (the target
//!   resisted), `fails` (attack succeeded), `nones` (unscored), `total_evaluated` and
//!   `total_processed`;
//! - a closing `"entry_type": "completion"` row.

use super::summary::RedteamSummary;
use super::AttemptRecord;
use crate::generator::{Message, Role};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// garak names detectors "module.Class"; ours is the refusal judge.
pub const DETECTOR: &str = "keel.Refusal";

/// A stable UUID-shaped id from the run seed and the attempt key (reruns give the same ids).
pub fn stable_uuid(seed: u64, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4 layout
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn turn(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    json!({"role": role, "content": {"text": m.content, "lang": "en", "notes": {}}})
}

fn probe_name(attack: &str) -> String {
    format!("keel.{attack}")
}

/// One attempt row.
pub fn attempt_entry(r: &AttemptRecord, seq: usize, seed: u64) -> Value {
    // The prompt is the conversation up to the final user turn; outputs the final answer.
    let last_user = r
        .conversation
        .iter()
        .rposition(|m| m.role == Role::User)
        .unwrap_or(0);
    let prompt_turns: Vec<Value> = r
        .conversation
        .iter()
        .take(last_user + 1)
        .map(turn)
        .collect();
    let outputs: Vec<Value> = r
        .response
        .iter()
        .map(|t| json!({"text": t, "lang": "en", "notes": {}}))
        .collect();
    let score = match r.success {
        Some(true) => json!(1.0),
        Some(false) => json!(0.0),
        None => Value::Null,
    };
    json!({
        "entry_type": "attempt",
        "uuid": stable_uuid(seed, &format!("{}/{}", r.attack, r.goal_id)),
        "seq": seq,
        "status": 2,
        "probe_classname": probe_name(&r.attack),
        "probe_params": {},
        "targets": [],
        "prompt": {"turns": prompt_turns, "notes": {}},
        "outputs": outputs,
        "detector_results": {DETECTOR: [score]},
        "notes": {
            "goal_id": r.goal_id,
            "category": r.category,
            "label": r.label,
            "reason": r.reason,
            "rounds": r.rounds,
        },
        "goal": r.goal,
        "conversations": [{"turns": r.conversation.iter().map(turn).collect::<Vec<_>>(), "notes": {}}],
        "reverse_translation_outputs": [],
        "intent": r.category,
    })
}

/// The whole report as JSONL text.
pub fn report_jsonl(records: &[AttemptRecord], summary: &RedteamSummary, seed: u64) -> String {
    let run = stable_uuid(seed, &format!("run/{}", summary.target));
    let mut lines: Vec<Value> = vec![json!({
        "entry_type": "init",
        "garak_version": format!("keel-eval {}", env!("CARGO_PKG_VERSION")),
        "run": run,
        "target": summary.target,
        "detector": summary.judge,
    })];
    for (i, r) in records.iter().enumerate() {
        lines.push(attempt_entry(r, i, seed));
    }
    for (attack, a) in &summary.per_attack {
        lines.push(json!({
            "entry_type": "eval",
            "probe": probe_name(attack),
            "detector": DETECTOR,
            "passed": a.scored - a.successes,
            "fails": a.successes,
            "nones": a.unscored,
            "total_evaluated": a.scored,
            "total_processed": a.scored + a.unscored,
            "confidence": "0.95",
            "confidence_method": "wilson",
            "confidence_lower": a.ci_low,
            "confidence_upper": a.ci_high,
        }));
    }
    lines.push(json!({"entry_type": "completion", "run": run}));
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redteam::summary::summarise;

    fn rec(attack: &str, success: Option<bool>) -> AttemptRecord {
        AttemptRecord {
            goal_id: "g1".into(),
            attack: attack.into(),
            category: Some("S2".into()),
            goal: "do harm".into(),
            conversation: vec![Message::user("do harm"), Message::assistant("ok here")],
            response: Some("ok here".into()),
            success,
            label: None,
            reason: None,
            rounds: 1,
            retryable: false,
        }
    }

    #[test]
    fn garak_jsonl_shape() {
        let rs = vec![
            rec("direct.plain", Some(false)),
            rec("encoding.rot13", Some(true)),
            rec("encoding.base64", None),
        ];
        let s = summarise(&rs, "t", "string_match", 0);
        let text = report_jsonl(&rs, &s, 7);
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["entry_type"], "init");
        assert_eq!(rows.last().unwrap()["entry_type"], "completion");
        let attempts: Vec<&Value> = rows
            .iter()
            .filter(|r| r["entry_type"] == "attempt")
            .collect();
        assert_eq!(attempts.len(), 3);
        let a = attempts[1];
        for k in [
            "uuid",
            "seq",
            "status",
            "probe_classname",
            "prompt",
            "outputs",
            "detector_results",
            "notes",
            "goal",
            "conversations",
        ] {
            assert!(a.get(k).is_some(), "attempt lacks {k}");
        }
        assert_eq!(a["status"], 2);
        assert_eq!(a["probe_classname"], "keel.encoding.rot13");
        assert_eq!(a["detector_results"][DETECTOR][0], 1.0);
        assert_eq!(a["prompt"]["turns"][0]["content"]["text"], "do harm");
        assert_eq!(a["outputs"][0]["text"], "ok here");
        assert!(attempts[2]["detector_results"][DETECTOR][0].is_null());
        let evals: Vec<&Value> = rows.iter().filter(|r| r["entry_type"] == "eval").collect();
        assert_eq!(evals.len(), 3);
        let b64 = evals
            .iter()
            .find(|e| e["probe"] == "keel.encoding.base64")
            .unwrap();
        assert_eq!(
            (
                b64["passed"].as_u64(),
                b64["fails"].as_u64(),
                b64["nones"].as_u64()
            ),
            (Some(0), Some(0), Some(1))
        );
        assert_eq!(b64["total_processed"], 1);
        // Deterministic ids.
        assert_eq!(report_jsonl(&rs, &s, 7), text);
        let u = a["uuid"].as_str().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
