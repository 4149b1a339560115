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
//!
//! A side-by-side table (name `ab-…`, part `ab` of `run.sh`) holds runs in which coronet and
//! one other server (a known contender or a binary of one's own, shown under its file name)
//! were measured at the same time, so its k-th coronet run and its k-th run
//! of the other saw the same machine. It also gets a paired view: the ratio run by run,
//! which cancels the drift of a shared machine (±20-30 % from one run to the next) that the
//! ratio of two medians keeps.
//!
//! After the tables comes one summary table holding every case of every table: for each
//! group, its first metric (the headline: throughput, time or memory) and its server-CPU
//! metric, if any.

use std::collections::HashMap;
use std::fmt::Write as _;

const CONTENDERS: [&str; 7] = ["coronet", "go", "tokio", "may", "std", "epoll", "redis"];

#[derive(Default)]
struct Table {
    title: String,
    /// (group, metric) in order of appearance.
    rows: Vec<(String, String)>,
    /// (group, metric, contender) → every run's value.
    values: HashMap<(String, String, String), Vec<f64>>,
    /// (group, contender) → each run's `_srv_util`, the server's share of its core over the
    /// window (a note: not printed as a row, but `paired` checks it).
    util: HashMap<(String, String), Vec<f64>>,
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
    for name in &order {
        print!("{}", render(&tables[name]));
        if name.starts_with("ab-") {
            for other in tables[name].contenders.iter().filter(|c| *c != "coronet") {
                print!("{}", paired(&tables[name], "coronet", other));
            }
        }
    }
    let all: Vec<(&str, &Table)> = order.iter().map(|n| (n.as_str(), &tables[n])).collect();
    print!("{}", summary(&all));
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
        if k == "_srv_util" {
            t.util
                .entry((group.to_string(), contender.to_string()))
                .or_default()
                .push(v);
        }
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
    let rows: Vec<Row> = t
        .rows
        .iter()
        .map(|(g, m)| Row {
            label: g.clone(),
            group: g.clone(),
            metric: m.clone(),
            table: t,
        })
        .collect();
    format!("\n### {}\n\n{}", t.title, grid(&rows))
}

/// `a` against `b` run by run (see the module docs): for each row, the median of the ratios
/// a/b over the repetitions and in how many of them `a` came out better. Rows where the two
/// do not have as many runs each (a failed run would shift the pairing) are left out.
fn paired(t: &Table, a: &str, b: &str) -> String {
    let runs = |g: &String, m: &String, c: &str| {
        t.values
            .get(&(g.clone(), m.clone(), c.to_string()))
            .filter(|v| !v.is_empty())
    };
    let mut out = String::new();
    for (g, m) in &t.rows {
        let (Some(va), Some(vb)) = (runs(g, m, a), runs(g, m, b)) else {
            continue;
        };
        if va.len() != vb.len() || vb.contains(&0.0) {
            continue;
        }
        // Throughput is better high; times, latencies and CPU are better low.
        let higher_better = m.starts_with("req/s") || m.ends_with("/s");
        let ratios: Vec<f64> = va.iter().zip(vb).map(|(x, y)| x / y).collect();
        let better = ratios
            .iter()
            .filter(|r| if higher_better { **r > 1.0 } else { **r < 1.0 })
            .count();
        let _ = writeln!(
            out,
            "| {g} | {m} | {:.2}× | {:.2}–{:.2}× | {better} of {} |",
            median(&ratios),
            min(&ratios),
            max(&ratios),
            ratios.len()
        );
    }
    if out.is_empty() {
        return out;
    }
    format!(
        "\n{a} / {b}, run by run (each pair of runs at the same time):\n\n\
         | | | median of the ratios | range | {a} better in |\n|---|---|---:|---:|---:|\n{out}{}",
        unsaturated(t, a, b)
    )
}

/// Pairs whose two servers together used less than this share of their core: then the
/// clients, not the core, set the pace, each server idles between requests, and a request
/// costs it a different amount (wake-ups from idle) than on a busy core — the ratio of such
/// a pair measures another regime.
const SATURATED: f64 = 0.85;

/// A line naming the pairs in which the core was not saturated (see [`SATURATED`]); empty
/// when every pair was, or when the runs recorded no `_srv_util`.
fn unsaturated(t: &Table, a: &str, b: &str) -> String {
    let mut groups: Vec<&String> = Vec::new();
    for (g, _) in &t.rows {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut found = Vec::new();
    for g in groups {
        let (Some(ua), Some(ub)) = (
            t.util.get(&(g.clone(), a.to_string())),
            t.util.get(&(g.clone(), b.to_string())),
        ) else {
            continue;
        };
        if ua.len() != ub.len() {
            continue;
        }
        let low: Vec<String> = ua
            .iter()
            .zip(ub)
            .map(|(x, y)| x + y)
            .filter(|sum| *sum < SATURATED)
            .map(|sum| format!("{sum:.2}"))
            .collect();
        if !low.is_empty() {
            found.push(format!(
                "{g}: {} of {} ({})",
                low.len(),
                ua.len(),
                low.join(", ")
            ));
        }
    }
    if found.is_empty() {
        return String::new();
    }
    format!(
        "\nNot saturated (the two servers together below {SATURATED} of their core, so the \
         clients set the pace and those pairs' ratios measure another regime): {}.\n",
        found.join("; ")
    )
}

/// Every table's headline rows in one table.
fn summary(tables: &[(&str, &Table)]) -> String {
    let mut rows = Vec::new();
    for (name, t) in tables {
        let mut seen: Vec<&str> = Vec::new();
        for (g, m) in &t.rows {
            let first = !seen.contains(&g.as_str());
            if first {
                seen.push(g);
            }
            if first || m.starts_with("srv_cpu") {
                rows.push(Row {
                    label: format!("{name}: {g}"),
                    group: g.clone(),
                    metric: m.clone(),
                    table: t,
                });
            }
        }
    }
    format!(
        "\n### Summary: the headline metric and server CPU of every case (ratio = value / Go)\n\n{}",
        grid(&rows)
    )
}

/// One printed row: a (group, metric) of some table, shown under `label`.
struct Row<'a> {
    label: String,
    group: String,
    metric: String,
    table: &'a Table,
}

fn grid(rows: &[Row]) -> String {
    let present = |c: &str| {
        rows.iter()
            .any(|r| r.table.contenders.iter().any(|x| x == c))
    };
    // The known contenders in their fixed order, then any other (a build of one's own set
    // beside coronet in part `ab`) in order of appearance.
    let mut cols: Vec<&str> = CONTENDERS.iter().copied().filter(|c| present(c)).collect();
    for r in rows {
        for c in &r.table.contenders {
            if !cols.contains(&c.as_str()) {
                cols.push(c);
            }
        }
    }
    let mut out = String::new();
    let _ = write!(out, "| | |");
    for c in &cols {
        let _ = write!(out, " {} |", if *c == "go" { "Go" } else { c });
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &cols {
        out.push_str("---:|");
    }
    out.push('\n');
    let mut last_label = "";
    for r in rows {
        let (t, group, metric) = (r.table, &r.group, &r.metric);
        let shown = if r.label == last_label { "" } else { &r.label };
        last_label = &r.label;
        let _ = write!(out, "| {shown} | {metric} |");
        let values = |c: &str| {
            t.values
                .get(&(group.clone(), metric.clone(), c.to_string()))
        };
        let go = values("go").map(|v| median(v));
        for c in &cols {
            let cell = match values(c) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lines: &[(&str, &str, &str)]) -> Table {
        let mut t = Table::default();
        for (group, contender, result) in lines {
            add_result(&mut t, group, contender, result);
        }
        t
    }

    #[test]
    fn paired_divides_run_by_run_and_counts_wins_by_direction() {
        let t = table(&[
            ("100 conns", "coronet", "RESULT req/s=90 srv_cpu_us/req=11"),
            ("100 conns", "epoll", "RESULT req/s=100 srv_cpu_us/req=10"),
            ("100 conns", "epoll", "RESULT req/s=50 srv_cpu_us/req=20"),
            ("100 conns", "coronet", "RESULT req/s=60 srv_cpu_us/req=19"),
            ("100 conns", "coronet", "RESULT req/s=120 srv_cpu_us/req=12"),
            ("100 conns", "epoll", "RESULT req/s=100 srv_cpu_us/req=10"),
        ]);
        let out = paired(&t, "coronet", "epoll");
        // req/s ratios 0.9, 1.2, 1.2: higher is better, so two of three are wins
        assert!(
            out.contains("| 100 conns | req/s | 1.20× | 0.90–1.20× | 2 of 3 |"),
            "{out}"
        );
        // CPU ratios 1.1, 0.95, 1.2: lower is better, so one win
        assert!(
            out.contains("| 100 conns | srv_cpu_us/req | 1.10× | 0.95–1.20× | 1 of 3 |"),
            "{out}"
        );
    }

    #[test]
    fn paired_skips_rows_whose_runs_do_not_pair_up() {
        let t = table(&[
            ("100 conns", "coronet", "RESULT srv_cpu_us/req=11"),
            ("100 conns", "coronet", "RESULT srv_cpu_us/req=12"),
            ("100 conns", "epoll", "RESULT srv_cpu_us/req=10"),
        ]);
        assert_eq!(paired(&t, "coronet", "epoll"), "");
        assert_eq!(paired(&t, "coronet", "tokio"), "");
    }
}
