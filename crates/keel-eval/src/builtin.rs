//! Built-in suites: the synthetic world's HHH suites (scored exactly against its ground
//! truth) and the public benchmarks by name. Each is an ordinary [`SuiteSpec`], so
//! `keel eval --print-suite NAME` shows it as a TOML file to copy and edit.

use crate::generator::SamplingParams;
use crate::loaders::{FieldMap, Format};
use crate::metrics::{Aggregate, Direction, MetricSpec};
use crate::scorers::ScorerKind;
use crate::suite::{OutputType, SourceSpec, SuiteSpec};

/// Names `builtin` accepts.
pub const BUILTIN_SUITES: &[&str] = &[
    "helpfulness",
    "harmlessness",
    "over_refusal",
    "honesty",
    "world",
    "xstest",
    "harmbench",
    "advbench",
    "do_not_answer",
    "strongreject",
    "truthfulqa_mc",
    "hh_rlhf",
    "mt_bench",
];

fn metric(
    name: &str,
    aggregate: Aggregate,
    direction: Direction,
    source: Option<&str>,
) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        aggregate,
        direction,
        source: source.map(str::to_string),
    }
}

fn world_source(split: &str, bank: &str, scorer: ScorerKind, category_field: &str) -> SourceSpec {
    SourceSpec {
        name: bank.into(),
        path: Some(format!("tasks/{split}/{bank}.jsonl")),
        format: Format::Jsonl,
        fields: FieldMap {
            category: category_field.into(),
            ..FieldMap::default()
        },
        scorer,
        limit: None,
    }
}

fn file_source(name: &str, format: Format, scorer: ScorerKind) -> SourceSpec {
    SourceSpec {
        name: name.into(),
        path: None,
        format,
        fields: FieldMap::default(),
        scorer,
        limit: None,
    }
}

fn generate(
    name: &str,
    description: &str,
    sources: Vec<SourceSpec>,
    metrics: Vec<MetricSpec>,
) -> SuiteSpec {
    SuiteSpec {
        name: name.into(),
        description: description.into(),
        output: OutputType::Generate,
        template: "{{prompt}}".into(),
        system: None,
        chat: true,
        generation: SamplingParams::default(),
        sources,
        metrics,
    }
}

/// A built-in suite by name. World suites read `tasks/{split}/*.jsonl` under `--data`;
/// public ones read the single file given as `--data`.
pub fn builtin(name: &str, split: &str) -> Option<SuiteSpec> {
    use Aggregate::*;
    use Direction::*;
    let helpful = || world_source(split, "instructions", ScorerKind::Gold, "category");
    let harmful = || world_source(split, "harmful", ScorerKind::Refuse, "hazard");
    let benign = || world_source(split, "benign_sensitive", ScorerKind::Comply, "category");
    let unans = || world_source(split, "unanswerable", ScorerKind::Abstain, "category");
    let premise = || world_source(split, "false_premise", ScorerKind::Premise, "category");
    let m_help = || metric("helpfulness", PassRate, Higher, Some("instructions"));
    let m_harm = || metric("harmlessness", PassRate, Higher, Some("harmful"));
    let m_over = || metric("over_refusal", FailRate, Lower, Some("benign_sensitive"));
    let m_abst = || metric("abstention", PassRate, Higher, Some("unanswerable"));
    let m_prem = || {
        metric(
            "premise_correction",
            PassRate,
            Higher,
            Some("false_premise"),
        )
    };
    let spec = match name {
        "helpfulness" => generate(
            name,
            "World instructions answered correctly (format items exactly; others must state the gold answer)",
            vec![helpful()],
            vec![m_help()],
        ),
        "harmlessness" => generate(name, "World harmful requests refused (by hazard S1-S14)", vec![harmful()], vec![m_harm()]),
        "over_refusal" => generate(
            name,
            "World benign-but-sensitive requests refused (lower is better)",
            vec![benign()],
            vec![m_over()],
        ),
        "honesty" => generate(
            name,
            "Abstention on unanswerable questions and correction of false premises",
            vec![unans(), premise()],
            vec![m_abst(), m_prem(), metric("honesty", PassRate, Higher, None)],
        ),
        "world" => generate(
            name,
            "All world HHH suites in one run",
            vec![helpful(), harmful(), benign(), unans(), premise()],
            vec![m_help(), m_harm(), m_over(), m_abst(), m_prem()],
        ),
        "xstest" => {
            // XSTest items carry their expected behaviour: comply (safe) or refuse (unsafe).
            let mut s = generate(
                name,
                "XSTest: exaggerated safety (refusal of safe prompts) and refusal of contrast prompts",
                vec![file_source("xstest", Format::Xstest, ScorerKind::Behavior)],
                vec![metric("correct_behaviour", PassRate, Higher, None)],
            );
            s.generation.max_tokens = 256;
            s
        }
        "harmbench" => generate(
            name,
            "HarmBench behaviours refused",
            vec![file_source("harmbench", Format::Harmbench, ScorerKind::Refuse)],
            vec![metric("refusal_rate", PassRate, Higher, None)],
        ),
        "advbench" => generate(
            name,
            "AdvBench harmful behaviours refused",
            vec![file_source("advbench", Format::Advbench, ScorerKind::Refuse)],
            vec![metric("refusal_rate", PassRate, Higher, None)],
        ),
        "do_not_answer" => generate(
            name,
            "Do-Not-Answer questions refused (by risk area)",
            vec![file_source("do_not_answer", Format::DoNotAnswer, ScorerKind::Refuse)],
            vec![metric("refusal_rate", PassRate, Higher, None)],
        ),
        "strongreject" => generate(
            name,
            "StrongREJECT forbidden prompts refused",
            vec![file_source("strongreject", Format::Strongreject, ScorerKind::Refuse)],
            vec![metric("refusal_rate", PassRate, Higher, None)],
        ),
        "truthfulqa_mc" => SuiteSpec {
            name: name.into(),
            description: "TruthfulQA MC1 (argmax is true) and MC2 (normalised mass on true answers), by log-likelihood".into(),
            output: OutputType::MultipleChoice,
            template: "Q: {{prompt}}\nA:".into(),
            system: None,
            chat: false,
            generation: SamplingParams::default(),
            sources: vec![file_source("truthfulqa", Format::TruthfulqaMc, ScorerKind::MultipleChoice)],
            metrics: vec![metric("mc1", PassRate, Higher, None), metric("mc2", MeanValue, Higher, None)],
        },
        "hh_rlhf" => SuiteSpec {
            name: name.into(),
            description: "HH-RLHF pairs: reward prefers chosen over rejected".into(),
            output: OutputType::Preference,
            template: "{{prompt}}".into(),
            system: None,
            chat: false,
            generation: SamplingParams::default(),
            sources: vec![file_source("hh_rlhf", Format::HhRlhf, ScorerKind::Preference)],
            metrics: vec![
                metric("preference_accuracy", PassRate, Higher, None),
                metric("mean_margin", MeanValue, Higher, None),
            ],
        },
        "mt_bench" => {
            let mut s = generate(
                name,
                "MT-bench two-turn questions, judged 1-10 (needs --judge-endpoint)",
                vec![file_source("mt_bench", Format::MtBench, ScorerKind::JudgeRating)],
                vec![metric("rating", MeanValue, Higher, None), metric("rated_7_plus", PassRate, Higher, None)],
            );
            s.generation.max_tokens = 1024;
            s
        }
        _ => return None,
    };
    debug_assert!(spec.validate().is_ok(), "builtin {name} invalid");
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_valid_and_round_trips_through_toml() {
        for name in BUILTIN_SUITES {
            let s = builtin(name, "test").unwrap();
            s.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = SuiteSpec::from_toml(std::path::Path::new(name), &s.to_toml()).unwrap();
            assert_eq!(back, s, "{name}");
        }
        assert!(builtin("nope", "test").is_none());
    }
}
