//! Results: the Markdown table, the raw JSON and the PNG chart.

use crate::engines::Kind;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Which way is better for a metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub text: String,
    /// None: not evaluated (a value missing).
    pub met: Option<bool>,
    /// How far from it, e.g. "1.07x floor; dockerd 2.9x slower".
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct Row {
    pub section: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub berth: Option<f64>,
    pub dockerd: Option<f64>,
    pub ctr: Option<f64>,
    pub target: Option<Target>,
    pub note: String,
}

impl Row {
    pub fn new(section: &str, metric: &str, unit: &str, better: Better) -> Row {
        Row {
            section: section.into(),
            metric: metric.into(),
            unit: unit.into(),
            better,
            berth: None,
            dockerd: None,
            ctr: None,
            target: None,
            note: String::new(),
        }
    }
    pub fn set(mut self, k: Kind, v: Option<f64>) -> Row {
        match k {
            Kind::Berth => self.berth = v,
            Kind::Dockerd => self.dockerd = v,
            Kind::Ctr => self.ctr = v,
        }
        self
    }
    pub fn note(mut self, n: impl Into<String>) -> Row {
        self.note = n.into();
        self
    }
    pub fn target(mut self, t: Target) -> Row {
        self.target = Some(t);
        self
    }
}

/// Everything one run produced.
#[derive(Default)]
pub struct Results {
    pub rows: Vec<Row>,
    /// Raw samples by name, for results.json.
    pub raw: BTreeMap<String, serde_json::Value>,
    /// Problems met on the way (failed runs, API gaps, skipped scenarios).
    pub problems: Vec<String>,
    /// Panels for the chart, in order.
    pub panels: Vec<Panel>,
}

impl Results {
    pub fn row(&mut self, r: Row) {
        self.rows.push(r);
    }
    pub fn problem(&mut self, p: impl Into<String>) {
        let p = p.into();
        eprintln!("bench: problem: {p}");
        self.problems.push(p);
    }
    pub fn raw(&mut self, name: &str, v: serde_json::Value) {
        self.raw.insert(name.into(), v);
    }
}

/// One chart panel: grouped bars, one group per category.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub categories: Vec<String>,
    pub series: Vec<(Kind, Vec<Option<f64>>)>,
}

pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.3}"),
    }
}

fn axis(v: f64, max: f64) -> String {
    if max >= 20.0 {
        format!("{v:.0}")
    } else if max >= 2.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// How many times costlier `a` is than `b`: a/b for times, b/a for rates.
fn cost_ratio(a: Option<f64>, b: Option<f64>, better: Better) -> String {
    match better {
        Better::Lower => ratio(a, b),
        Better::Higher => ratio(b, a),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
        _ => "–".into(),
    }
}

pub fn markdown(res: &Results, header: &str) -> String {
    let mut s = String::new();
    s.push_str(header);
    s.push_str("\n| scenario | metric | berth | dockerd | ctr (floor) | berth ÷ floor | dockerd ÷ berth | target | met |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
    for r in &res.rows {
        let unit = if r.unit.is_empty() { String::new() } else { format!(" ({})", r.unit) };
        let (t, met) = match &r.target {
            None => (String::new(), String::new()),
            Some(t) => (
                t.text.clone(),
                match t.met {
                    Some(true) => format!("**yes** ({})", t.detail),
                    Some(false) => format!("**no** ({})", t.detail),
                    None => format!("n/a ({})", t.detail),
                },
            ),
        };
        let metric = if r.note.is_empty() { format!("{}{}", r.metric, unit) } else { format!("{}{} — {}", r.metric, unit, r.note) };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.section,
            metric,
            fmt(r.berth),
            fmt(r.dockerd),
            fmt(r.ctr),
            cost_ratio(r.berth, r.ctr, r.better),
            cost_ratio(r.dockerd, r.berth, r.better),
            t,
            met
        ));
    }
    let targets: Vec<&Row> = res.rows.iter().filter(|r| r.target.is_some()).collect();
    if !targets.is_empty() {
        s.push_str("\n## Targets\n\n");
        for r in targets {
            let t = r.target.as_ref().unwrap();
            let mark = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not evaluated",
            };
            s.push_str(&format!("- {} — {}: **{}** ({})\n", r.metric, t.text, mark, t.detail));
        }
    }
    if !res.problems.is_empty() {
        s.push_str("\n## Problems met during the run\n\n");
        for p in &res.problems {
            s.push_str(&format!("- {}\n", p.replace('\n', " ")));
        }
    }
    s
}

fn color(k: Kind) -> RGBColor {
    match k {
        Kind::Berth => RGBColor(31, 119, 180),
        Kind::Dockerd => RGBColor(230, 126, 34),
        Kind::Ctr => RGBColor(127, 127, 127),
    }
}

/// Registers a TrueType font for plotters' ab_glyph text renderer.
pub fn load_font() -> Result<(), String> {
    let candidates = [
        std::env::var("BENCH_FONT").unwrap_or_default(),
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf".into(),
        "/usr/share/fonts/truetype/freefont/FreeSans.ttf".into(),
    ];
    for c in candidates.iter().filter(|c| !c.is_empty()) {
        if let Ok(bytes) = std::fs::read(c) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{c}: not a usable font"))?;
            return Ok(());
        }
    }
    Err("no TrueType font found (apt-get install fonts-dejavu-core, or set BENCH_FONT)".into())
}

pub fn chart(res: &Results, path: &Path, subtitle: &str) -> Result<(), String> {
    let panels = &res.panels;
    if panels.is_empty() {
        return Err("nothing to chart".into());
    }
    let cols = 4usize.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let (w, h) = (420 * cols as u32, 360 * rows as u32 + 70);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, body) = root.split_vertically(70);
    top.draw(&Text::new("berth vs dockerd vs ctr", (12, 8), ("sans-serif", 26).into_font()))
        .map_err(|e| e.to_string())?;
    top.draw(&Text::new(subtitle.to_string(), (12, 40), ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90))))
        .map_err(|e| e.to_string())?;
    // Legend.
    let mut lx = w as i32 - 360;
    for k in [Kind::Berth, Kind::Dockerd, Kind::Ctr] {
        top.draw(&Rectangle::new([(lx, 14), (lx + 16, 30)], color(k).filled())).map_err(|e| e.to_string())?;
        top.draw(&Text::new(k.name(), (lx + 22, 14), ("sans-serif", 15).into_font())).map_err(|e| e.to_string())?;
        lx += 115;
    }
    let areas = body.split_evenly((rows, cols));
    for (p, area) in panels.iter().zip(areas.iter()) {
        draw_panel(p, area)?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn draw_panel(p: &Panel, area: &DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let ncat = p.categories.len().max(1);
    let max = p
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .fold(0.0f64, f64::max);
    let ymax = if max > 0.0 { max * 1.18 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(38)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..ncat as f64, 0f64..ymax)
        .map_err(|x| x.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(6)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| axis(*v, ymax))
        .draw()
        .map_err(|x| x.to_string())?;
    let present: Vec<&(Kind, Vec<Option<f64>>)> = p.series.iter().collect();
    let nser = present.len().max(1) as f64;
    let group = 0.8;
    let bw = group / nser;
    for (si, (k, vals)) in present.iter().enumerate() {
        for (ci, v) in vals.iter().enumerate() {
            let x0 = ci as f64 + (1.0 - group) / 2.0 + si as f64 * bw;
            let x1 = x0 + bw * 0.92;
            if let Some(v) = v {
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, *v)], color(*k).filled())))
                    .map_err(|x| x.to_string())?;
                let (px, py) = chart.backend_coord(&((x0 + x1) / 2.0, *v));
                let label = fmt(Some(*v));
                let tw = label.len() as i32 * 6;
                area.draw(&Text::new(label, (px - tw / 2 - area.get_base_pixel().0, py - 16 - area.get_base_pixel().1), ("sans-serif", 11).into_font()))
                    .map_err(e)?;
            }
        }
    }
    for (ci, c) in p.categories.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(ci as f64 + 0.5, 0.0));
        let tw = (c.chars().count() as i32 * 13) / 2;
        area.draw(&Text::new(c.clone(), (px - tw / 2 - area.get_base_pixel().0, py + 8 - area.get_base_pixel().1), ("sans-serif", 13).into_font()))
            .map_err(e)?;
    }
    Ok(())
}
