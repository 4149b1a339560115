//! Turns the results file `run.sh` writes into Markdown tables with ratios to Go.
//!
//! Usage: report RESULTS_FILE
//!
//! The file holds tab-separated lines; anything else is ignored:
//!
//! ```text
//! T  <table>  <title>                                  a table's heading, in print order
//! R  <table>  <group>  <contender>  RESULT k=v ...     one run's measurements
//! F  <table>  <group>  <contender>  <reason>           a run that failed
//! ```
//!
//! A table's rows are (group, metric) pairs in the order first seen; its columns are the
//! contenders present, in a fixed order. Each cell is the median over that cell's runs, its
//! half-spread `±(max-min)/2` as a percentage of the median when there was more than one run,
//! and `(r×)`, the median divided by Go's median in the same row. Keys starting with `_` are
//! notes for the raw file and not printed.

use std::collections::HashMap;
use std::fmt::Write as _;

const CONTENDERS: [&str; 6] = ["coronet", "go", "tokio", "may", "std", "epoll"];

#[derive(Default)]
struct Table {
    title: String,
    /// (group, metric) in order of appearance.
    rows: Vec<(String, String)>,
    /// (group, metric, contender) → every run's value.
    values: HashMap<(String, String, String), Vec<f64>>,
    /// (group, contender) → why it failed.
    failed: HashMap<(String, String), String>,
    contenders: Vec<String>,
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: report RESULTS_FILE");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut order: Vec<String> = Vec::new();
    let mut tables: HashMap<String, Table> = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let table = match f.get(1) {
            Some(t) if matches!(f[0], "T" | "R" | "F") => t.to_string(),
            _ => continue,
        };
        if !tables.contains_key(&table) {
            order.push(table.clone());
        }
        let t = tables.entry(table).or_default();
        match (f[0], f.len()) {
            ("T", 3) => t.title = f[2].to_string(),
            ("R", 5) => add_result(t, f[2], f[3], f[4]),
            ("F", 5) => {
                note_contender(t, f[3]);
                t.failed
                    .insert((f[2].to_string(), f[3].to_string()), f[4].to_string());
            }
            _ => eprintln!("report: skipping malformed line {line:?}"),
        }
    }
    for name in order {
        print!("{}", render(&tables[&name]));
    }
}

fn note_contender(t: &mut Table, c: &str) {
    if !t.contenders.iter().any(|x| x == c) {
        t.contenders.push(c.to_string());
    }
}

fn add_result(t: &mut Table, group: &str, contender: &str, result: &str) {
    note_contender(t, contender);
    for kv in result.split_whitespace().skip(1) {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else { continue };
        if k.starts_with('_') {
            continue;
        }
        let row = (group.to_string(), k.to_string());
        if !t.rows.contains(&row) {
            t.rows.push(row);
        }
        t.values
            .entry((group.to_string(), k.to_string(), contender.to_string()))
            .or_default()
            .push(v);
    }
}

fn render(t: &Table) -> String {
    let cols: Vec<&str> = CONTENDERS
        .iter()
        .copied()
        .filter(|c| t.contenders.iter().any(|x| x == c))
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "\n### {}\n", t.title);
    let _ = write!(out, "| | |");
    for c in &cols {
        let _ = write!(out, " {} |", if *c == "go" { "Go" } else { c });
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &cols {
        out.push_str("---:|");
    }
    out.push('\n');
    let mut last_group = "";
    for (group, metric) in &t.rows {
        let shown_group = if group == last_group { "" } else { group };
        last_group = group;
        let _ = write!(out, "| {shown_group} | {metric} |");
        let median_of = |c: &str| {
            t.values
                .get(&(group.clone(), metric.clone(), c.to_string()))
                .map(|v| median(v))
        };
        let go = median_of("go");
        for c in &cols {
            let cell = match t
                .values
                .get(&(group.clone(), metric.clone(), c.to_string()))
            {
                Some(v) => {
                    let m = median(v);
                    let mut s = num(m);
                    if v.len() > 1 && m != 0.0 {
                        let spread = (max(v) - min(v)) / 2.0 / m * 100.0;
                        let _ = write!(s, " ±{spread:.0}%");
                    }
                    if let Some(g) = go.filter(|g| *g != 0.0 && *c != "go") {
                        let _ = write!(s, " ({:.2}×)", m / g);
                    }
                    s
                }
                None => match t.failed.get(&(group.clone(), c.to_string())) {
                    Some(why) if why.starts_with("n/a") => why.clone(),
                    Some(why) => format!("failed: {why}"),
                    None => "—".to_string(),
                },
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Three significant digits below 1,000; whole numbers with thousands separators above.
fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if v < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
