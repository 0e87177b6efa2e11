//! The HTML report opens in a real browser and its charts render: headless Chromium takes a
//! screenshot of a report built from a crafted run.json, and the PNG must show the charts'
//! coloured marks (lines, points, heatmap cells), not a blank or broken page.
//!
//! Chromium comes from `scripts/fetch_chromium.sh` (or `KEEL_CHROMIUM=/path`). Without it the
//! test says so loudly and passes, unless `KEEL_REQUIRE_BROWSER` is set (CI sets it after
//! installing). `KEEL_SCREENSHOT_OUT=/path.png` keeps the screenshot for a human to look at.

use keel_core::run_log::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let env = std::env::var_os("KEEL_CHROMIUM").map(PathBuf::from);
    env.into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file())
}

fn metric(suite: &str, name: &str, axis: &str, v: f64, d: Direction) -> MetricRecord {
    MetricRecord {
        suite: suite.into(),
        name: name.into(),
        axis: Some(axis.into()),
        value: Some(v),
        ci_low: Some((v - 0.08).max(0.0)),
        ci_high: Some((v + 0.08).min(1.0)),
        n: 120,
        direction: d,
    }
}

fn crafted_run(dir: &Path) {
    let mut log = RunLog::new(dir);
    log.model = "browser-check-model".into();
    log.seed = Some(3);
    let vals = [(0.30, 0.20, 0.05), (0.55, 0.60, 0.15), (0.60, 0.85, 0.20)];
    for (i, (name, (help, harm, over))) in ["pretrain", "sft", "dpo"].iter().zip(vals).enumerate() {
        let mut s = StageRecord::new(name, name);
        s.hyperparameters = serde_json::json!({ "lr": 3e-4, "epochs": i + 1 });
        s.data.push(DataRecord {
            path: format!("data/{name}.jsonl"),
            role: Some("train".into()),
            sha256: Some("ab".repeat(32)),
            rows: Some(1000),
            dropped: [("duplicate".to_string(), 12u64)].into(),
        });
        s.evals.push(metric(
            "world",
            "helpfulness",
            axes::HELPFUL,
            help,
            Direction::Higher,
        ));
        s.evals.push(metric(
            "world",
            "harmlessness",
            axes::HARMLESS,
            harm,
            Direction::Higher,
        ));
        s.evals.push(metric(
            "world",
            "over_refusal",
            axes::OVER_REFUSAL,
            over,
            Direction::Lower,
        ));
        if i == 2 {
            let cell = |cat: &str, attack: &str, k: u64| AsrCell {
                category: cat.into(),
                attack: attack.into(),
                asr: AsrRecord {
                    successes: k,
                    scored: 10,
                    asr: Some(k as f64 / 10.0),
                    ci_low: None,
                    ci_high: None,
                },
            };
            s.redteam = Some(RedteamRecord {
                judge: "string-match".into(),
                overall: AsrRecord {
                    successes: 14,
                    scored: 40,
                    asr: Some(0.35),
                    ci_low: None,
                    ci_high: None,
                },
                cells: vec![
                    cell("S1 violent crimes", "direct", 1),
                    cell("S1 violent crimes", "encoding.base64", 9),
                    cell("S2 non-violent crimes", "direct", 0),
                    cell("S2 non-violent crimes", "encoding.base64", 4),
                ],
            });
        }
        log.record_stage(s);
    }
    log.save().unwrap();
}

/// Run Chromium with a deadline (a hung browser must fail the test, not stall the suite).
fn screenshot(chrome: &Path, html: &Path, png: &Path) -> Result<(), String> {
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,1600",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", chrome.display()))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                use std::io::Read;
                let _ = s.read_to_string(&mut err);
            }
            return Err(format!("chromium exited with {status}: {err}"));
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            return Err("chromium did not finish within 90 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        let msg = "\n\n!!! report_browser: NO CHROMIUM FOUND (set KEEL_CHROMIUM or run \
                   scripts/fetch_chromium.sh): the report was NOT checked in a browser !!!\n";
        eprintln!("{msg}");
        println!("{msg}");
        assert!(
            std::env::var_os("KEEL_REQUIRE_BROWSER").is_none(),
            "KEEL_REQUIRE_BROWSER is set but no Chromium was found"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    crafted_run(dir.path());
    let paths = keel_eval::report::write_report(dir.path(), &dir.path().join("report")).unwrap();
    let png_path = dir.path().join("shot.png");
    screenshot(&chrome, &paths.html.canonicalize().unwrap(), &png_path).unwrap();
    if let Some(keep) = std::env::var_os("KEEL_SCREENSHOT_OUT") {
        std::fs::copy(&png_path, keep).unwrap();
    }

    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected PNG colour type {:?}",
        info.color_type
    );
    assert_eq!((info.width, info.height), (1280, 1600));
    let px = buf[..info.buffer_size()].chunks(channels);
    let (mut ink, mut colour, mut heat, mut total) = (0usize, 0usize, 0usize, 0usize);
    for p in px {
        let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
        total += 1;
        if r.min(g).min(b) < 235 {
            ink += 1;
        }
        if r.max(g).max(b) - r.min(g).min(b) > 60 {
            colour += 1; // chart marks: series colours and heatmap cells (text is grey/black)
        }
        if r > 150 && g < 110 && b < 110 {
            heat += 1; // a saturated heatmap cell (90% ASR) is deep red
        }
    }
    eprintln!("screenshot: {total} px, {ink} ink, {colour} coloured, {heat} heat-red");
    assert!(
        ink * 100 > total,
        "page looks blank: {ink} of {total} pixels inked"
    );
    assert!(
        colour > 3000,
        "charts did not render: only {colour} coloured pixels"
    );
    assert!(
        heat > 500,
        "heatmap's hot cell not visible: {heat} deep-red pixels"
    );
}
