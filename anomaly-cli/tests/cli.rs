//! The real `anomaly` binary on real files: results, help, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn anomaly(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anomaly")).args(args).output().expect("run anomaly")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("anomaly-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(Path::new(path)).expect("read output").lines().map(str::to_owned).collect()
}

#[test]
fn simulate_then_detect_end_to_end() {
    let dir = TempDir::new("e2e");
    let (readings, events) = (dir.path("r.csv"), dir.path("e.csv"));
    let out = anomaly(&[
        "consumption",
        "simulate",
        "--clients",
        "20",
        "--days",
        "40",
        "-o",
        &readings,
        "--events",
        &events,
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&readings).len(), 1 + 20 * 40 * 24);

    let (flags, monthly, clients) = (dir.path("f.csv"), dir.path("m.csv"), dir.path("c.csv"));
    let out = anomaly(&[
        "consumption",
        "detect",
        "-i",
        &readings,
        "-o",
        &flags,
        "--monthly",
        &monthly,
        "--clients",
        &clients,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary on stdout");
    assert_eq!(summary["readings"], 20 * 40 * 24);
    assert!(summary["anomalies"].as_u64().expect("count") > 0);
    assert!(stderr(&out).contains("readings anomalous"), "logs go to stderr");

    let flags = lines(&flags);
    assert_eq!(flags[0], "client_id,timestamp,kwh,is_anomaly,types,score,severity");
    assert_eq!(flags.len(), 1 + 20 * 40 * 24);
    // Every injected plantation or flat meter shows up with its type.
    for event in lines(&events).iter().skip(1) {
        let fields: Vec<&str> = event.split(',').collect();
        let (client, kind, start, end) = (fields[0], fields[1], fields[2], fields[3]);
        if kind == "spike" {
            continue;
        }
        let hit = flags.iter().any(|row| {
            let f: Vec<&str> = row.split(',').collect();
            f[0] == client && f[1] >= start && f[1] < end && f[4].split(';').any(|t| t == kind)
        });
        assert!(hit, "{kind} of {client} from {start} not flagged");
    }
    let header = lines(&monthly)[0].clone();
    assert_eq!(header.split(',').count(), 19);
    assert!(header.ends_with("score,suspicion,suspicious,rank,n_episodes,n_severe_episodes,rules"), "{header}");
    assert_eq!(lines(&clients).len(), 21);
}

#[test]
fn half_hourly_input_with_its_own_columns_is_aggregated() {
    let dir = TempDir::new("halfhour");
    let input = dir.path("sgsc.csv");
    let mut text = String::from("customer_id,reading_datetime,general_supply_kwh\n");
    for k in 0..(20 * 48) {
        let (day, slot) = (k / 48, k % 48);
        text += &format!(
            "7,2013-01-{:02} {:02}:{:02}:00,{}\n",
            day + 1,
            slot / 2,
            (slot % 2) * 30,
            0.2 + (slot % 7) as f64 * 0.01
        );
    }
    std::fs::write(&input, text).expect("write");
    let out_path = dir.path("out.csv");
    let out = anomaly(&[
        "consumption",
        "detect",
        "-i",
        &input,
        "-o",
        &out_path,
        "--client-col",
        "customer_id",
        "--time-col",
        "reading_datetime",
        "--value-col",
        "general_supply_kwh",
        "--interval",
        "30m",
        "--aggregate",
        "1h",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = lines(&out_path);
    assert_eq!(rows.len(), 1 + 20 * 24);
    assert!(rows[1].starts_with("7,2013-01-01 00:00:00,0.41"), "{}", rows[1]);
}

#[test]
fn bad_input_exits_2_with_file_row_and_line() {
    let dir = TempDir::new("bad");
    let cases = [
        ("client_id,timestamp,kwh\na,2024-01-01 00:00:00,1\na,2024-01-01 01:00:00,NaN\n", "kwh at row 1 is not finite"),
        (
            "client_id,timestamp,kwh\na,2024-01-01 00:00:00,1\na,2024-13-01 01:00:00,1\n",
            "cannot parse \"2024-13-01 01:00:00\"",
        ),
        ("client_id,timestamp,kwh\na,2024-01-01 00:00:00,1\na,2024-01-01 00:00:00,2\n", "row 1 duplicates row 0"),
        ("client_id,timestamp,kwh\na,2024-01-01 00:00:00,abc\n", "cannot parse \"abc\" as a number"),
        ("client_id,timestamp,kwh\na,2024-01-01 00:30:00,1\n", "not on the 60-minute grid"),
        ("client_id,timestamp,kwh\n", "readings is empty"),
        (
            "client,timestamp,kwh\na,2024-01-01 00:00:00,1\n",
            "unknown column \"client_id\"; available: client, timestamp, kwh",
        ),
        ("client_id,timestamp,kwh\na,2024-01-01 00:00:00\n", "found record with 2 fields"),
    ];
    for (i, (content, expected)) in cases.iter().enumerate() {
        let input = dir.path(&format!("bad{i}.csv"));
        std::fs::write(&input, content).expect("write");
        let out = anomaly(&["consumption", "detect", "-i", &input, "-o", &dir.path("o.csv")]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(expected), "case {i}: expected {expected:?} in {err}");
        assert!(err.contains(&input), "case {i}: the file is named");
    }
    let input = dir.path("bad0.csv");
    let err = stderr(&anomaly(&["consumption", "detect", "-i", &input, "-o", &dir.path("o.csv")]));
    assert!(err.contains("(line 3)"), "{err}");
}

#[test]
fn missing_file_and_bad_usage_exit_2() {
    // A missing input is permanent, like bad usage: exit 2 (1 is for what a retry may fix).
    let out = anomaly(&["consumption", "detect", "-i", "/nonexistent/r.csv", "-o", "/tmp/x.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/r.csv: cannot open"));
    assert_eq!(anomaly(&["consumption", "detect"]).status.code(), Some(2));
    assert_eq!(anomaly(&["consumption", "detect", "-i", "a", "-o", "b", "--interval", "soon"]).status.code(), Some(2));
}

#[test]
fn bad_or_huge_durations_exit_2_naming_the_value() {
    let dir = TempDir::new("durations");
    let (db, models) = (format!("sqlite:{}", dir.path("plant.db")), dir.path("models"));
    for value in ["10x", "99999999999999999999d"] {
        let out = anomaly(&["watch", "--db", &db, "--models", &models, "--interval", value]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("--interval = \"{value}\"")), "{}", stderr(&out));
    }
    for value in ["10x", "99999999h"] {
        let out = anomaly(&["consumption", "simulate", "-o", &dir.path("r.csv"), "--interval", value]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("interval = \"{value}\"")), "{}", stderr(&out));
    }
}

#[test]
fn parameters_from_file_and_set_flags() {
    let dir = TempDir::new("params");
    let out = anomaly(&["consumption", "params"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("\"kind\": \"consumption_rules\"") && text.contains("\"zscore_threshold\": 3.0"));
    let params = dir.path("rules.json");
    std::fs::write(&params, text.replace("\"zscore_threshold\": 3.0", "\"zscore_threshold\": -1.0")).expect("write");

    let readings = dir.path("r.csv");
    assert!(anomaly(&["consumption", "simulate", "--clients", "2", "--days", "10", "-o", &readings, "-q"])
        .status
        .success());
    let o = dir.path("o.csv");
    let out = anomaly(&["consumption", "detect", "-i", &readings, "-o", &o, "--params", &params]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("parameter zscore_threshold = -1"), "{}", stderr(&out));

    let out = anomaly(&["consumption", "detect", "-i", &readings, "-o", &o, "--set", "zscore=4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown parameter"));
    let out = anomaly(&[
        "consumption",
        "detect",
        "-i",
        &readings,
        "-o",
        &o,
        "--set",
        "zscore_threshold=4",
        "--night-band",
        "22-6",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = anomaly(&["consumption", "detect", "-i", &readings, "-o", &o, "--night-band", "7"]);
    assert_eq!(out.status.code(), Some(2));
    // The calibrated rules are one flag away; an unknown method is a usage error.
    let out = anomaly(&["consumption", "detect", "-i", &readings, "-o", &o, "--method", "calibrated", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = anomaly(&["consumption", "detect", "-i", &readings, "-o", &o, "--method", "fancy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("literal or calibrated"), "{}", stderr(&out));
    std::fs::write(&params, "{ corrupt").expect("write");
    let out = anomaly(&["consumption", "detect", "-i", &readings, "-o", &o, "--params", &params]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("model file is corrupt"));
}

#[test]
fn help_teaches_with_examples() {
    let out = anomaly(&["consumption", "detect", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["Examples:", "--client-col", "--aggregate 1h", "crítica", "--json"] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
    let top = anomaly(&["--help"]);
    assert!(String::from_utf8_lossy(&top.stdout).contains("consumption"));
}

fn sensor_csv(path: &str, rows: usize, outliers: usize) {
    let mut text = String::from("timestamp,voltage,current,power\n");
    for i in 0..rows {
        // A smooth cloud, with the last `outliers` rows far outside it.
        let (a, b) = ((i * 37 % 101) as f64 / 101.0, (i * 53 % 97) as f64 / 97.0);
        let (v, c) = if i >= rows - outliers { (300.0 + i as f64, 50.0) } else { (220.0 + 5.0 * a, 10.0 + 2.0 * b) };
        text += &format!("2024-01-01 00:{:02}:00,{v},{c},{}\n", i % 60, v * c);
    }
    std::fs::write(path, text).expect("write");
}

#[test]
fn iforest_fit_then_score_flags_the_outliers() {
    let dir = TempDir::new("iforest");
    let (input, model, scores) = (dir.path("sensors.csv"), dir.path("forest.json"), dir.path("scores.csv"));
    sensor_csv(&input, 1000, 10);
    let out = anomaly(&[
        "iforest",
        "fit",
        "-i",
        &input,
        "-m",
        &model,
        "--columns",
        "voltage,current,power",
        "--contamination",
        "0.01",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("fitted 100 trees on 1000 rows x 3 columns"));
    let out = anomaly(&["iforest", "score", "-m", &model, "-i", &input, "-o", &scores, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["total"], 1000);
    assert_eq!(summary["anomalies"], 10);
    assert_eq!(summary["state"], "Normal");
    let rows = lines(&scores);
    assert_eq!(rows[0], "score,decision,label");
    assert!(rows[991..].iter().all(|r| r.ends_with(",-1")), "the last 10 rows are the outliers");
    let out = anomaly(&["iforest", "score", "-m", &model, "-i", &input, "--caution-percent", "0.5", "--json", "-q"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["state"], "Precaución");
    // --explain: the sensor pushing each row most toward anomalous, and its share.
    let out = anomaly(&["iforest", "score", "-m", &model, "-i", &input, "-o", &scores, "--explain", "--json", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let counted: u64 = summary["top_features"].as_object().expect("counts").values().filter_map(|v| v.as_u64()).sum();
    assert_eq!(counted, 10, "{summary}");
    let rows = lines(&scores);
    assert_eq!(rows[0], "score,decision,label,top_feature,top_share");
    for row in &rows[991..] {
        let fields: Vec<&str> = row.split(',').collect();
        assert!(["voltage", "current", "power"].contains(&fields[3]), "{row}");
        let share: f64 = fields[4].parse().expect("share");
        assert!(share > 0.0 && share <= 1.0, "{row}");
    }
}

#[test]
fn iforest_bad_input_exits_2() {
    let dir = TempDir::new("iforest-bad");
    let (input, model) = (dir.path("sensors.csv"), dir.path("forest.json"));
    sensor_csv(&input, 100, 1);
    let run = |args: &[&str]| {
        let out = anomaly(args);
        (out.status.code(), stderr(&out))
    };
    // Non-numeric column, named with its row.
    let (code, err) = run(&["iforest", "fit", "-i", &input, "-m", &model]);
    assert_eq!(code, Some(2));
    assert!(err.contains("timestamp at row 0: cannot parse \"2024-01-01 00:00:00\" as a number"), "{err}");
    let (code, err) = run(&["iforest", "fit", "-i", &input, "-m", &model, "--columns", "voltage,pressure"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown column \"pressure\""), "{err}");
    let (code, err) =
        run(&["iforest", "fit", "-i", &input, "-m", &model, "--columns", "voltage", "--extension-level", "1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("extension_level"), "{err}");
    let (code, _) =
        run(&["iforest", "fit", "-i", &input, "-m", &model, "--contamination", "0.9", "--columns", "voltage"]);
    assert_eq!(code, Some(2));
    // A header without rows; one row fits, as in scikit-learn.
    let empty = dir.path("empty.csv");
    std::fs::write(&empty, "a,b\n").expect("write");
    let (code, err) = run(&["iforest", "fit", "-i", &empty, "-m", &model]);
    assert_eq!(code, Some(2));
    assert!(err.contains("feature matrix is empty"), "{err}");
    std::fs::write(&empty, "a,b\n1,2\n").expect("write");
    assert_eq!(run(&["iforest", "fit", "-i", &empty, "-m", &model]).0, Some(0));
    let nan = dir.path("nan.csv");
    std::fs::write(&nan, "a,b\n1,2\n3,NaN\n4,5\n").expect("write");
    let (code, err) = run(&["iforest", "fit", "-i", &nan, "-m", &model]);
    assert_eq!(code, Some(2));
    assert!(err.contains("b at row 1 is not finite"), "{err}");
    // Scoring with a corrupt model or a file missing the model's columns.
    std::fs::write(&model, "{\"format\":\"anomaly-model\",\"version\":1,\"kind\":\"isolation_forest\",\"model\":{}}")
        .expect("write");
    let (code, err) = run(&["iforest", "score", "-m", &model, "-i", &input]);
    assert_eq!(code, Some(2));
    assert!(err.contains("model file is corrupt"), "{err}");
    assert!(anomaly(&["iforest", "fit", "-i", &input, "-m", &model, "--columns", "voltage,current", "-q"])
        .status
        .success());
    let other = dir.path("other.csv");
    std::fs::write(&other, "voltage,power\n1,2\n").expect("write");
    let (code, err) = run(&["iforest", "score", "-m", &model, "-i", &other]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown column \"current\""), "{err}");
}

#[test]
fn forecast_train_then_detect_flags_a_spike() {
    let dir = TempDir::new("forecast");
    let (history, models, new, results) =
        (dir.path("history.csv"), dir.path("models"), dir.path("new.csv"), dir.path("results.csv"));
    let value = |v: usize, i: usize| {
        let t = i as f64;
        40.0 + 10.0 * v as f64
            + 3.0 * (std::f64::consts::TAU * t / 288.0).sin()
            + 0.3 * ((i * 7919 + v * 31) % 17) as f64 / 17.0
    };
    let stamp = |i: usize| format!("2024-03-{:02} {:02}:{:02}:00", 4 + i / 288, (i % 288) / 12, (i % 12) * 5);
    let mut text = String::from("datetime,variable_name,value\n");
    for i in 0..(288 * 4) {
        for (v, name) in ["flow", "level"].iter().enumerate() {
            text += &format!("{},{name},{}\n", stamp(i), value(v, i));
        }
    }
    std::fs::write(&history, text).expect("write");
    let out = anomaly(&["forecast", "train", "-i", &history, "-m", &models]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(Path::new(&models).join("detector.json").exists());
    let mut text = String::from("datetime,variable_name,value\n");
    for i in (288 * 4)..(288 * 4 + 12) {
        for (v, name) in ["flow", "level"].iter().enumerate() {
            let spike = if i == 288 * 4 + 5 && v == 1 { 25.0 } else { 0.0 };
            text += &format!("{},{name},{}\n", stamp(i), value(v, i) + spike);
        }
    }
    std::fs::write(&new, text).expect("write");
    let out = anomaly(&["forecast", "detect", "-m", &models, "-i", &new, "-o", &results, "--json", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["readings"], 24);
    let rows = lines(&results);
    assert_eq!(rows[0], "ds,variable,y,yhat,yhat_lower,yhat_upper,residual,is_anomaly,anomaly_score");
    let spike = rows.iter().find(|r| r.starts_with("2024-03-08 00:25:00,level")).expect("spike row");
    assert!(spike.contains(",true,"), "{spike}");
    assert_eq!(summary["anomalies"], 1, "{rows:?}");
    // Bad input: a duplicate reading and a missing model directory.
    std::fs::write(&new, "datetime,variable_name,value\n2024-03-08 00:00:00,flow,1\n2024-03-08 00:00:00,flow,2\n")
        .expect("write");
    let out = anomaly(&["forecast", "detect", "-m", &models, "-i", &new, "-o", &results]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("duplicates row 0"), "{}", stderr(&out));
    // Errors name the user's own columns.
    let own = ["--time-col", "fecha", "--variable-col", "tag", "--value-col", "lectura"];
    std::fs::write(&new, "fecha,tag,lectura\n2024-03-08 00:00:00,flow,1\n2024-03-08 00:00:00,flow,2\n").expect("write");
    let out = anomaly(&[&["forecast", "detect", "-m", &models, "-i", &new, "-o", &results], &own[..]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("fecha at row 1 duplicates row 0"), "{}", stderr(&out));
    std::fs::write(&new, "fecha,tag,lectura\n2024-03-08 00:00:00,flow,inf\n").expect("write");
    let out = anomaly(&[&["forecast", "detect", "-m", &models, "-i", &new, "-o", &results], &own[..]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lectura at row 0 is not finite"), "{}", stderr(&out));
    let out = anomaly(&["forecast", "detect", "-m", &dir.path("nowhere"), "-i", &new, "-o", &results]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_input_that_cannot_be_opened_exits_2_naming_it() {
    let dir = TempDir::new("no-input");
    let (missing, out) = (dir.path("missing.csv"), dir.path("out.csv"));
    for args in [
        vec!["iforest", "fit", "-i", &missing, "-m", &out],
        vec!["consumption", "detect", "--input", &missing, "--output", &out],
        vec!["forecast", "train", "--input", &missing, "--models", &out],
    ] {
        let run = anomaly(&args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", stderr(&run));
        assert!(stderr(&run).contains("missing.csv") && stderr(&run).contains("cannot open"), "{}", stderr(&run));
    }
    let directory = dir.path("");
    let run = anomaly(&["iforest", "fit", "-i", &directory, "-m", &out]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("is a directory"), "{}", stderr(&run));
}
