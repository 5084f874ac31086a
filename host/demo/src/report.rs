//! The HTML report of a run: the summary, a timeline plot (the primary's
//! metrics and the fault's intensity, the drift score and the predictor's
//! probability against their thresholds, the traffic), the moments that
//! mattered as vertical lines, and every state change. One self-contained
//! file: inline SVG, no scripts, nothing fetched.

use std::fmt::Write as _;

use crate::Outcome;
use crate::timeline::{Point, Timeline};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Axes {
    t_max: f64,
    y_max: f64,
}

impl Axes {
    fn x(&self, t_ms: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (t_ms / self.t_max.max(1.0)).clamp(0.0, 1.0)
    }

    fn y(&self, v: f64) -> f64 {
        let h = HEIGHT - TOP - BOTTOM;
        TOP + h * (1.0 - (v / self.y_max.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0))
    }
}

/// One series: a name, a colour, its values.
struct Series<'a> {
    name: &'a str,
    colour: &'a str,
    value: &'a dyn Fn(&Point) -> Option<f64>,
    dashed: bool,
}

fn polyline(out: &mut String, axes: &Axes, points: &[Point], series: &Series<'_>) {
    let mut path = String::new();
    let mut pen_up = true;
    for p in points {
        match (series.value)(p) {
            Some(v) if v.is_finite() => {
                let _ = write!(
                    path,
                    "{}{:.1},{:.1} ",
                    if pen_up { "M" } else { "L" },
                    axes.x(p.t_ms),
                    axes.y(v)
                );
                pen_up = false;
            }
            _ => pen_up = true,
        }
    }
    let _ = write!(
        out,
        r#"<path d="{path}" fill="none" stroke="{}" stroke-width="1.5"{}><title>{}</title></path>"#,
        series.colour,
        if series.dashed {
            r#" stroke-dasharray="5,4""#
        } else {
            ""
        },
        esc(series.name)
    );
}

fn chart(
    out: &mut String,
    title: &str,
    timeline: &Timeline,
    y_max: f64,
    series: &[Series<'_>],
    thresholds: &[(&str, f64, &str)],
) {
    let points = &timeline.points;
    let t_max = points.last().map_or(1.0, |p| p.t_ms);
    let axes = Axes { t_max, y_max };
    let _ = write!(
        out,
        r#"<h3>{}</h3><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    // Shade where the shadow carried the traffic.
    let mut from: Option<f64> = None;
    for p in points.iter().chain(std::iter::once(&Point {
        t_ms: t_max,
        active: "end".into(),
        ..Point::default()
    })) {
        match (p.active == "shadow", from) {
            (true, None) => from = Some(p.t_ms),
            (false, Some(start)) => {
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#e8f4e8\"><title>the shadow carries the traffic</title></rect>",
                    axes.x(start),
                    axes.x(p.t_ms) - axes.x(start),
                    HEIGHT - TOP - BOTTOM
                );
                from = None;
            }
            _ => {}
        }
    }
    // Axes and grid.
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>",
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text><line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            LEFT - 4.0,
            axes.y(v) + 3.0,
            if y_max >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            },
            axes.y(v),
            WIDTH - RIGHT,
            axes.y(v)
        );
    }
    let step = nice_step(t_max / 1e3);
    let mut s = 0.0;
    while s * 1e3 <= t_max {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{s:.0} s</text>",
            axes.x(s * 1e3),
            HEIGHT - 6.0
        );
        s += step;
    }
    for (name, value, colour) in thresholds {
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="{colour}" stroke-dasharray="2,3"><title>{} {value}</title></line>"#,
            esc(name),
            y = axes.y(*value),
            x2 = WIDTH - RIGHT,
        );
    }
    for event in &timeline.events {
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1\"><title>{:.1} s: {}</title></line>",
            HEIGHT - BOTTOM,
            event_colour(&event.what),
            event.t_ms / 1e3,
            esc(&event.what),
            x = axes.x(event.t_ms),
        );
    }
    for s in series {
        polyline(out, &axes, points, s);
    }
    out.push_str("</svg><p class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            r#"<span style="color:{}">━ {}</span> "#,
            s.colour,
            esc(s.name)
        );
    }
    for (name, value, colour) in thresholds {
        let _ = write!(
            out,
            r#"<span style="color:{colour}">┅ {} ({value})</span> "#,
            esc(name)
        );
    }
    out.push_str("</p>");
}

fn event_colour(what: &str) -> &'static str {
    if what.contains("FAILED") {
        "#c00"
    } else if what.contains("injecting") || what.contains("starts on") {
        "#e80"
    } else if what.contains("→ preparing") {
        "#06c"
    } else if what.contains("→ decommissioned") || what.contains("→ verifying") {
        "#090"
    } else {
        "#bbb"
    }
}

fn nice_step(seconds: f64) -> f64 {
    [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0]
        .into_iter()
        .find(|s| seconds / s <= 12.0)
        .unwrap_or(1200.0)
}

/// The report.
#[must_use]
pub fn html(outcome: &Outcome) -> String {
    let summary = &outcome.summary;
    let timeline = &outcome.timeline;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>umbra demo: {} fault, {}</title><style>body{{font-family:sans-serif;max-width:1000px;margin:1em auto;color:#222}} table{{border-collapse:collapse}} td{{padding:2px 10px;border-bottom:1px solid #eee}} .legend span{{margin-right:1em;font-size:90%}} pre{{white-space:pre-wrap;font-size:85%}}</style></head><body>",
        esc(&summary.fault),
        esc(&summary.mode)
    );
    let _ = write!(
        out,
        "<h1>umbra demo</h1><p>{} run, fault <b>{}</b>, seed {}.{}</p>",
        esc(&summary.mode),
        esc(&summary.fault),
        summary.seed,
        if summary.mode == "simulated" {
            " Simulated devices: the telemetry is the scenario generator's, the switch is in memory, the traffic is a model."
        } else {
            " Network-namespace lab: real packets through Umbra's software switch and two stateful-firewall routers."
        }
    );
    out.push_str("<table>");
    let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} ms"));
    let rows = [
        (
            "failover completed",
            if summary.failover_completed {
                "yes".to_owned()
            } else {
                "no".to_owned()
            },
        ),
        ("lead time (failure − failover)", ms(summary.lead_time_ms)),
        ("decision to redirect", ms(summary.decision_to_redirect_ms)),
        ("switchover gap", ms(summary.switchover_gap_ms)),
        ("probes sent", summary.probes_sent.to_string()),
        ("probes lost", summary.probes_lost.to_string()),
        (
            "probes lost in the switchover",
            summary
                .probes_lost_in_switchover
                .map_or_else(|| "not measured".to_owned(), |n| n.to_string()),
        ),
        (
            "TCP sessions survived",
            format!(
                "{} of {}",
                summary.sessions_survived, summary.sessions_total
            ),
        ),
        (
            "longest session stall",
            ms(Some(summary.longest_session_stall_ms)),
        ),
        ("false failovers", summary.false_failovers.to_string()),
        (
            "decision",
            summary.decision.clone().unwrap_or_else(|| "—".into()),
        ),
    ];
    for (name, value) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(name),
            esc(&value)
        );
    }
    out.push_str("</table><h2>Timeline</h2><p>Vertical lines: fault start (orange), decision (blue), redirect and verification (green), hard failure (red). Green shading: the shadow carries the traffic.</p>");
    chart(
        &mut out,
        "The primary's metrics and the fault",
        timeline,
        1.0,
        &[
            Series {
                name: "fault intensity",
                colour: "#e80",
                value: &|p| Some(p.fault_level),
                dashed: true,
            },
            Series {
                name: "primary CPU",
                colour: "#c33",
                value: &|p| Some(p.primary_cpu),
                dashed: false,
            },
            Series {
                name: "primary memory",
                colour: "#93c",
                value: &|p| Some(p.primary_memory),
                dashed: false,
            },
            Series {
                name: "primary conntrack fill",
                colour: "#36c",
                value: &|p| Some(p.primary_conntrack_fill),
                dashed: false,
            },
            Series {
                name: "shadow CPU",
                colour: "#999",
                value: &|p| Some(p.shadow_cpu),
                dashed: false,
            },
        ],
        &[],
    );
    chart(
        &mut out,
        "Scores",
        timeline,
        1.0,
        &[
            Series {
                name: "drift score",
                colour: "#06c",
                value: &|p| Some(p.drift),
                dashed: false,
            },
            Series {
                name: "failure probability (GRU)",
                colour: "#c06",
                value: &|p| p.probability,
                dashed: false,
            },
        ],
        &[
            ("drift threshold", timeline.drift_threshold, "#06c"),
            (
                "probability threshold",
                timeline.probability_threshold,
                "#c06",
            ),
        ],
    );
    let lost_max = timeline
        .points
        .iter()
        .map(|p| p.probes_sent.saturating_sub(p.probes_received) as f64)
        .fold(1.0, f64::max);
    let sessions_max = timeline
        .points
        .iter()
        .map(|p| (p.sessions_alive + p.sessions_failed) as f64)
        .fold(1.0, f64::max);
    chart(
        &mut out,
        "Traffic: probes unanswered (cumulative)",
        timeline,
        lost_max,
        &[Series {
            name: "probes unanswered",
            colour: "#c00",
            value: &|p| Some(p.probes_sent.saturating_sub(p.probes_received) as f64),
            dashed: false,
        }],
        &[],
    );
    chart(
        &mut out,
        "Traffic: long-lived TCP sessions",
        timeline,
        sessions_max,
        &[
            Series {
                name: "sessions alive",
                colour: "#090",
                value: &|p| Some(p.sessions_alive as f64),
                dashed: false,
            },
            Series {
                name: "sessions failed",
                colour: "#c00",
                value: &|p| Some(p.sessions_failed as f64),
                dashed: false,
            },
        ],
        &[],
    );
    out.push_str("<h2>Events</h2><table>");
    for event in &timeline.events {
        let _ = write!(
            out,
            "<tr><td>{:.1} s</td><td>{}</td></tr>",
            event.t_ms / 1e3,
            esc(&event.what)
        );
    }
    let _ = writeln!(
        out,
        "</table><h2>Summary (JSON)</h2><pre>{}</pre></body></html>",
        esc(&serde_json::to_string_pretty(summary).unwrap_or_default())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Summary;
    use crate::timeline::Event;

    #[test]
    fn the_report_plots_every_series_and_marks_the_events_escaped() {
        let points = (0..50)
            .map(|i| Point {
                t_ms: f64::from(i) * 100.0,
                active: if i < 30 { "primary" } else { "shadow" }.into(),
                drift: f64::from(i) / 50.0,
                probability: (i > 10).then_some(0.5),
                ..Point::default()
            })
            .collect();
        let outcome = Outcome {
            summary: Summary {
                fault: "cpu".into(),
                decision: Some("drift 0.9 <script>".into()),
                ..Summary::default()
            },
            timeline: Timeline {
                probability_threshold: 0.999,
                drift_threshold: 0.7,
                points,
                events: vec![Event {
                    t_ms: 3000.0,
                    what: "normal → preparing: go".into(),
                }],
            },
        };
        let html = html(&outcome);
        assert!(html.contains("drift score") && html.contains("failure probability"));
        assert!(html.contains("#06c"), "the decision is drawn in its colour");
        assert!(html.contains("the shadow carries the traffic"));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert_eq!(html.matches("<svg").count(), 4);
    }
}
