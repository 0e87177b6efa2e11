//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network), so
//! it can be mailed, archived next to the run, or opened from a CI artifact.

use super::charts::{heatmap, stage_lines, tradeoff};
use super::{
    arrow, columns, fmt_metric, limitations, metric, redteam_grid, stage_series, tradeoff_axes,
    tradeoff_points, ReportError,
};
use keel_core::run_log::RunLog;
use std::fmt::Write;

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;\
color:#222;padding:0 16px}table{border-collapse:collapse;margin:8px 0 20px}\
th,td{border:1px solid #ddd;padding:4px 8px;font-size:13px}th{background:#f4f4f4}\
td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px}\
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}\
.chart{border:1px solid #eee}pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto}\
.muted{color:#777}";

fn eval_table(log: &RunLog, out: &mut String) {
    let cols = columns(log);
    if cols.is_empty() {
        out.push_str("<p>No evaluation results recorded.</p>");
        return;
    }
    out.push_str("<table><tr><th>stage</th>");
    for c in &cols {
        let _ = write!(
            out,
            "<th>{} {}<br><span class=muted>{}</span></th>",
            esc(&c.key),
            arrow(c.direction),
            esc(c.axis.as_deref().unwrap_or("other"))
        );
    }
    out.push_str("</tr>");
    for s in &log.stages {
        let _ = write!(out, "<tr><td>{}</td>", esc(&s.name));
        for c in &cols {
            match metric(s, &c.key) {
                Some(m) => {
                    let _ = write!(out, "<td class=num>{}<br>n={}</td>", fmt_metric(m), m.n);
                }
                None => out.push_str("<td class=num>·</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str(
        "</table><p class=muted>Value [95% CI]; ↑ higher is better, ↓ lower is better.</p>",
    );
}

fn charts(log: &RunLog, out: &mut String) -> Result<(), ReportError> {
    let cols = columns(log);
    out.push_str("<div class=charts>");
    let series = stage_series(log, &cols);
    if !series.is_empty() {
        let names: Vec<String> = log.stages.iter().map(|s| s.name.clone()).collect();
        let _ = write!(
            out,
            "<div class=chart id=chart-stages>{}</div>",
            stage_lines(&names, &series)?
        );
    }
    if let Some((x, y)) = tradeoff_axes(log, &cols) {
        let pts = tradeoff_points(log, x, y);
        if !pts.is_empty() {
            let xd = format!("{} {}", x.key, arrow(x.direction));
            let yd = format!("{} {}", y.key, arrow(y.direction));
            let _ = write!(
                out,
                "<div class=chart id=chart-tradeoff>{}</div>",
                tradeoff(&pts, &xd, &yd)?
            );
        }
    }
    out.push_str("</div>");
    for s in &log.stages {
        let (Some(rt), Some((cats, atts, cells))) = (&s.redteam, redteam_grid(s)) else {
            continue;
        };
        let title = format!(
            "Attack success rate, {} (overall {})",
            s.name,
            rt.overall
                .asr
                .map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or("-".into())
        );
        let _ = write!(
            out,
            "<h3>Red-team: {}</h3><div class='chart heatmap'>{}</div>",
            esc(&s.name),
            heatmap(&title, &cats, &atts, &cells)?
        );
    }
    Ok(())
}

fn data(log: &RunLog, out: &mut String) {
    out.push_str(
        "<h2>Data</h2><table><tr><th>stage</th><th>path</th><th>role</th><th>sha256</th>\
<th>rows</th><th>dropped by curation</th></tr>",
    );
    for s in &log.stages {
        for d in &s.data {
            let dropped: Vec<String> = d.dropped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td><code title=\"{}\">{}</code></td>\
<td class=num>{}</td><td>{}</td></tr>",
                esc(&s.name),
                esc(&d.path),
                esc(d.role.as_deref().unwrap_or("-")),
                esc(d.sha256.as_deref().unwrap_or("")),
                esc(d.sha256.as_deref().map(|h| &h[..h.len().min(16)]).unwrap_or("-")),
                d.rows.map(|r| r.to_string()).unwrap_or("-".into()),
                esc(&dropped.join(", "))
            );
        }
    }
    out.push_str("</table>");
}

fn stages(log: &RunLog, out: &mut String) {
    out.push_str("<h2>Stages</h2>");
    for s in &log.stages {
        let _ = write!(
            out,
            "<h3>{} <span class=muted>({})</span></h3>",
            esc(&s.name),
            esc(&s.kind)
        );
        if let Some(c) = &s.command {
            let _ = write!(out, "<p>Command:</p><pre>{}</pre>", esc(c));
        }
        if let Some(c) = &s.checkpoint {
            let _ = write!(out, "<p>Checkpoint: <code>{}</code></p>", esc(c));
        }
        if !s.training.is_empty() {
            out.push_str("<table><tr>");
            for k in s.training.keys() {
                let _ = write!(out, "<th>{}</th>", esc(k));
            }
            out.push_str("</tr><tr>");
            for v in s.training.values() {
                let _ = write!(out, "<td class=num>{v:.4}</td>");
            }
            out.push_str("</tr></table>");
        }
        let hp = serde_json::to_string_pretty(&s.hyperparameters).unwrap_or_default();
        if hp != "{}" && hp != "null" {
            let _ = write!(
                out,
                "<details><summary>hyperparameters</summary><pre>{}</pre></details>",
                esc(&hp)
            );
        }
        for p in &s.policies {
            let _ = write!(
                out,
                "<p>Policy in force: <code>{}</code> (sha256 <code>{}</code>)</p>",
                esc(&p.name),
                esc(&p.policy_hash)
            );
        }
    }
}

/// The whole page.
pub fn render(log: &RunLog) -> Result<String, ReportError> {
    let name = if log.model.is_empty() {
        "model"
    } else {
        &log.model
    };
    let mut out = format!(
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{} — Keel report</title>\
<style>{STYLE}</style></head><body><h1>{}</h1>",
        esc(name),
        esc(name)
    );
    let chain: Vec<String> = log
        .stages
        .iter()
        .map(|s| format!("{} ({})", s.name, s.kind))
        .collect();
    let _ = write!(
        out,
        "<p>Keel {} · seed {} · {}</p>",
        esc(&log.keel_version),
        log.seed.map(|s| s.to_string()).unwrap_or("-".into()),
        esc(&chain.join(" → "))
    );
    if let Some(b) = &log.base_model {
        let _ = write!(out, "<p>Base model: <code>{}</code></p>", esc(b));
    }
    out.push_str("<h2>Evaluation</h2>");
    eval_table(log, &mut out);
    charts(log, &mut out)?;
    data(log, &mut out);
    stages(log, &mut out);
    out.push_str("<h2>Known limitations</h2><ul>");
    for l in limitations(log) {
        let _ = write!(out, "<li>{}</li>", esc(&l));
    }
    out.push_str("</ul></body></html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_with_charts_and_escaping() {
        let mut log = crate::report::fixture::run_log(std::path::Path::new("."));
        log.model = "<b>m</b>".into();
        let page = render(&log).unwrap();
        assert!(page.contains("&lt;b&gt;m&lt;/b&gt;") && !page.contains("<b>m</b>"));
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "lines, trade-off, 2 heatmaps"
        );
        assert!(page.contains("id=chart-tradeoff") && page.contains("Attack success rate, dpo"));
        assert!(!page.contains("<script") && !page.contains("src=\"http"));
    }
}
