//! The guard engine: runs the policy's detectors over a text or a conversation and turns
//! the scores into a [`Verdict`].
//!
//! Scores: every hit in a category contributes its score, combined by noisy-OR
//! (1 − Π(1 − sᵢ)), so two weak lexicon hits can together cross a threshold one cannot.
//! Classifier probabilities join the same combination.

use crate::audit::AuditLog;
use crate::classify::TextClassifier;
use crate::decode::{find_payloads, Payload, PayloadKind};
use crate::detect::pii::{PiiDetector, PiiKind};
use crate::detect::rules::{RuleMatch, RuleMatcher, RuleScratch};
use crate::detect::{Hit, TextFacts};
use crate::error::{GuardError, Result};
use crate::normalize::NormText;
use crate::policy::{builtin::load_stack, ActionKind, EffectivePolicy, Scope};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

/// The library interface: anything that can judge a text or a conversation.
pub trait Moderator {
    fn scan_text(&self, text: &str, scope: Scope) -> Verdict;
    fn scan_conversation(&self, messages: &[Message]) -> Verdict;
}

/// One conversation turn. `user` and `system` turns are input; `assistant` turns are output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
    pub fn scope(&self) -> Scope {
        if self.role == "assistant" {
            Scope::Output
        } else {
            Scope::Input
        }
    }
}

/// Reused per-thread buffers, so a warm scan allocates only for what it reports.
#[derive(Default)]
struct Scratch {
    norm: NormText,
    payloads: Vec<Payload>,
    matches: Vec<RuleMatch>,
    rules: RuleScratch,
    spans: Vec<(usize, usize)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Per-scan accumulation.
struct Acc {
    miss: Vec<f32>,
    hits: Vec<Hit>,
}

pub struct Guard {
    policy: EffectivePolicy,
    matcher: RuleMatcher,
    pii: PiiDetector,
    classifiers: Vec<Box<dyn TextClassifier>>,
    /// Category index of each rule.
    rule_cat: Vec<usize>,
    /// Per scope (input, output) and PII kind: the categories that use that detector. Resolved
    /// once here rather than on every scan.
    pii_users: [Vec<Vec<usize>>; 2],
    audit: Option<AuditLog>,
}

fn scope_index(scope: Scope) -> usize {
    match scope {
        Scope::Input => 0,
        Scope::Output => 1,
    }
}

impl Guard {
    /// A guard for a profile stack, e.g. `&["education-minors", "region-eu"]` (`default` is
    /// always the base; entries may also be paths to `.toml` files).
    pub fn from_profiles<S: AsRef<str>>(profiles: &[S]) -> Result<Guard> {
        Guard::new(load_stack(profiles)?)
    }

    pub fn new(policy: EffectivePolicy) -> Result<Guard> {
        let matcher = RuleMatcher::new(&policy.rules)
            .map_err(|e| GuardError::policy("(compiled policy)", "rules", e.to_string()))?;
        let rule_cat = policy
            .rules
            .iter()
            .map(|r| {
                policy
                    .categories
                    .iter()
                    .position(|c| c.code == r.category)
                    .unwrap_or(0)
            })
            .collect();
        let users = |scope: Scope| -> Vec<Vec<usize>> {
            PiiKind::ALL
                .iter()
                .map(|k| {
                    (0..policy.categories.len())
                        .filter(|&i| {
                            let c = &policy.categories[i];
                            c.applies_to(scope) && c.uses(k.detector())
                        })
                        .collect()
                })
                .collect()
        };
        let pii_users = [users(Scope::Input), users(Scope::Output)];
        Ok(Guard {
            policy,
            matcher,
            pii: PiiDetector::new(),
            classifiers: Vec::new(),
            rule_cat,
            pii_users,
            audit: None,
        })
    }

    /// Add a trained classifier; categories that list its name (`linear`, `minilm`) use it.
    pub fn with_classifier(mut self, c: Box<dyn TextClassifier>) -> Self {
        self.classifiers.push(c);
        self
    }

    /// Record every decision to this audit log.
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    pub fn policy(&self) -> &EffectivePolicy {
        &self.policy
    }

    /// Drop classifiers (for measuring rules alone).
    pub fn without_classifiers(mut self) -> Self {
        self.classifiers.clear();
        self
    }

    fn new_acc(&self) -> Acc {
        Acc {
            miss: vec![1.0; self.policy.categories.len()],
            hits: Vec::new(),
        }
    }

    fn add(&self, acc: &mut Acc, cat: usize, hit: Hit) {
        acc.miss[cat] *= 1.0 - hit.score.clamp(0.0, 1.0);
        acc.hits.push(hit);
    }

    /// Run rules and PII detectors over `text`; spans are offset by `base` and tagged `msg`.
    fn collect_rules(&self, text: &str, scope: Scope, msg: usize, base: usize, acc: &mut Acc) {
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            s.norm.normalize(text);
            find_payloads(text, &mut s.payloads);
            let mut segs: Vec<(usize, PayloadKind)> = Vec::new();
            for p in &s.payloads {
                segs.push((s.norm.text.len(), p.kind));
                s.norm.push_segment(&p.text, Some((p.start, p.end)));
            }
            let facts = TextFacts::of(text);
            s.matches.clear();
            self.matcher
                .scan(&s.norm, text, &facts, &mut s.rules, &mut s.matches);
            for m in &s.matches {
                let cat = self.rule_cat[m.rule];
                let cp = &self.policy.categories[cat];
                if !cp.applies_to(scope) || !cp.uses("rules") {
                    continue;
                }
                let rule = &self.policy.rules[m.rule];
                let (a, b) = s.norm.original_span(m.start, m.end);
                let via = segs
                    .iter()
                    .rev()
                    .find(|(at, _)| m.start >= *at)
                    .map(|(_, k)| match k {
                        PayloadKind::Base64 => "base64".to_string(),
                        PayloadKind::Hex => "hex".to_string(),
                    })
                    .or_else(|| m.rot13.then(|| "rot13".to_string()));
                let hit = Hit {
                    rule_id: rule.id.clone(),
                    category: rule.category.clone(),
                    detector: "rules".into(),
                    score: rule.score,
                    start: base + a,
                    end: base + b,
                    message: msg,
                    via,
                };
                self.add(acc, cat, hit);
            }
            for (kind, users) in PiiKind::ALL.iter().zip(&self.pii_users[scope_index(scope)]) {
                let (kind, det) = (*kind, kind.detector());
                if users.is_empty() {
                    continue;
                }
                s.spans.clear();
                self.pii.find_with(kind, text, &facts, &mut s.spans);
                for &(a, b) in &s.spans {
                    for &cat in users {
                        let hit = Hit {
                            rule_id: det.to_string(),
                            category: self.policy.categories[cat].code.clone(),
                            detector: det.to_string(),
                            score: 1.0,
                            start: base + a,
                            end: base + b,
                            message: msg,
                            via: None,
                        };
                        self.add(acc, cat, hit);
                    }
                }
            }
        });
    }

    /// Run classifiers over `text` for categories in `scope` that list them.
    fn collect_classifiers(&self, text: &str, scope: Scope, msg: usize, acc: &mut Acc) {
        for clf in &self.classifiers {
            let wanted = self
                .policy
                .categories
                .iter()
                .any(|c| c.applies_to(scope) && c.uses(clf.name()));
            if !wanted {
                continue;
            }
            let probs = clf.predict(text);
            for (code, p) in clf.categories().iter().zip(probs) {
                let Some(cat) = self.policy.categories.iter().position(|c| &c.code == code) else {
                    continue; // trained on a category this policy does not define
                };
                let cp = &self.policy.categories[cat];
                if !cp.applies_to(scope) || !cp.uses(clf.name()) || p < cp.threshold.max(1e-6) {
                    continue;
                }
                let hit = Hit {
                    rule_id: format!("{}:{}", clf.name(), code),
                    category: code.clone(),
                    detector: clf.name().to_string(),
                    score: p,
                    start: 0,
                    end: text.len(),
                    message: msg,
                    via: None,
                };
                self.add(acc, cat, hit);
            }
        }
    }

    fn finish(&self, acc: Acc, scope: Scope, texts: &[&str], t0: Instant) -> Verdict {
        let mut category_scores = Vec::with_capacity(self.policy.categories.len());
        let mut categories = Vec::new();
        let mut action = ActionKind::Allow;
        let mut message = None;
        let mut redirect = None;
        for (i, c) in self.policy.categories.iter().enumerate() {
            if !c.applies_to(scope) && texts.len() == 1 {
                continue;
            }
            let score = 1.0 - acc.miss[i];
            category_scores.push((c.code.clone(), score));
            if score > 0.0 && score >= c.threshold {
                categories.push(c.code.clone());
                if c.action > action {
                    action = c.action;
                    message = (c.action == ActionKind::Block).then(|| c.message.clone());
                    redirect = (c.action == ActionKind::Redirect).then(|| c.redirect.clone());
                }
            }
        }
        let flagged = categories.iter().any(|c| {
            self.policy
                .category(c)
                .is_some_and(|p| p.action != ActionKind::Allow)
        });
        let mut rule_ids: Vec<String> = acc.hits.iter().map(|h| h.rule_id.clone()).collect();
        rule_ids.sort();
        rule_ids.dedup();
        let redacted_all: Vec<Option<String>> = texts
            .iter()
            .enumerate()
            .map(|(m, t)| self.redact(t, m, &acc.hits, &categories))
            .collect();
        let any_redaction = redacted_all
            .iter()
            .zip(texts)
            .any(|(r, t)| r.as_deref().is_some_and(|r| r != *t));
        let (redacted, redacted_messages) = match (any_redaction, texts.len()) {
            (false, _) => (None, Vec::new()),
            (true, 1) => (redacted_all.into_iter().next().flatten(), Vec::new()),
            (true, _) => (
                None,
                redacted_all
                    .into_iter()
                    .zip(texts)
                    .map(|(r, t)| r.unwrap_or_else(|| t.to_string()))
                    .collect(),
            ),
        };
        let v = Verdict {
            action,
            flagged,
            scope,
            categories,
            // Built from a vector: one bulk build rather than an insert per category.
            category_scores: category_scores.into_iter().collect::<BTreeMap<_, _>>(),
            hits: acc.hits,
            rule_ids,
            message,
            redirect,
            redacted,
            redacted_messages,
            profile: self.policy.profile_label(),
            policy_hash: self.policy.hash.clone(),
            latency_us: t0.elapsed().as_micros() as u64,
        };
        if let Some(log) = &self.audit {
            let digest = keel_core::artifact::sha256_hex(texts.join("\u{1e}").as_bytes());
            if let Err(e) = log.record(&v, &digest) {
                tracing::warn!("audit log write failed: {e}");
            }
        }
        v
    }

    /// Replace spans of triggered `redact` categories in message `msg`. Overlapping spans are
    /// merged; the replacement of the first category in the merged group is used. `None` when
    /// there is nothing to replace (most scans: no copy of the text is made).
    fn redact(&self, text: &str, msg: usize, hits: &[Hit], triggered: &[String]) -> Option<String> {
        let mut spans: Vec<(usize, usize, &str)> = hits
            .iter()
            .filter(|h| h.message == msg && h.end > h.start && !self.is_spanless(h))
            .filter_map(|h| {
                let c = self.policy.category(&h.category)?;
                (c.action == ActionKind::Redact && triggered.contains(&c.code)).then_some((
                    h.start,
                    h.end,
                    c.replacement.as_str(),
                ))
            })
            .collect();
        if spans.is_empty() {
            return None;
        }
        spans.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut i = 0;
        while i < spans.len() {
            let (s, mut e, rep) = spans[i];
            i += 1;
            while i < spans.len() && spans[i].0 < e {
                e = e.max(spans[i].1);
                i += 1;
            }
            if s < pos || e > text.len() || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
                continue;
            }
            out.push_str(&text[pos..s]);
            out.push_str(rep);
            pos = e;
        }
        out.push_str(&text[pos..]);
        Some(out)
    }

    /// Classifier hits cover the whole text; they are evidence, not spans to cut out.
    fn is_spanless(&self, h: &Hit) -> bool {
        self.classifiers.iter().any(|c| c.name() == h.detector)
    }
}

impl Moderator for Guard {
    fn scan_text(&self, text: &str, scope: Scope) -> Verdict {
        let t0 = Instant::now();
        let mut acc = self.new_acc();
        self.collect_rules(text, scope, 0, 0, &mut acc);
        self.collect_classifiers(text, scope, 0, &mut acc);
        self.finish(acc, scope, &[text], t0)
    }

    /// Every turn is checked in its own scope, and the user turns are also checked joined
    /// together, so a request split across turns ("how do I make a" / "pipe bomb") is seen
    /// whole. Hits from the joined view are attributed to the turn where they start.
    fn scan_conversation(&self, messages: &[Message]) -> Verdict {
        let t0 = Instant::now();
        let mut acc = self.new_acc();
        for (i, m) in messages.iter().enumerate() {
            self.collect_rules(&m.content, m.scope(), i, 0, &mut acc);
        }
        // Joined user text; remember where each turn starts.
        let mut joined = String::new();
        let mut starts = Vec::new();
        for (i, m) in messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.scope() == Scope::Input)
        {
            if !joined.is_empty() {
                joined.push('\n');
            }
            starts.push((joined.len(), i));
            joined.push_str(&m.content);
        }
        if starts.len() > 1 {
            let mut joint = self.new_acc();
            self.collect_rules(&joined, Scope::Input, usize::MAX, 0, &mut joint);
            for mut h in joint.hits {
                let (off, idx) = *starts
                    .iter()
                    .rev()
                    .find(|(s, _)| h.start >= *s)
                    .unwrap_or(&starts[0]);
                let len = messages[idx].content.len();
                let seen = acc
                    .hits
                    .iter()
                    .any(|x| x.rule_id == h.rule_id && x.message == idx);
                if seen {
                    continue;
                }
                h.message = idx;
                h.start -= off;
                h.end = (h.end - off).min(len);
                let cat = self
                    .policy
                    .categories
                    .iter()
                    .position(|c| c.code == h.category)
                    .unwrap_or(0);
                self.add(&mut acc, cat, h);
            }
        }
        let last_user = starts.last().map(|&(_, i)| i).unwrap_or(0);
        if !joined.is_empty() {
            self.collect_classifiers(&joined, Scope::Input, last_user, &mut acc);
        }
        for (i, m) in messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.scope() == Scope::Output)
        {
            self.collect_classifiers(&m.content, Scope::Output, i, &mut acc);
        }
        let scope = messages.last().map(Message::scope).unwrap_or(Scope::Input);
        let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        self.finish(acc, scope, &texts, t0)
    }
}
