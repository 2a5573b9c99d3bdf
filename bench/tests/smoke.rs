//! A tiny run of the whole benchmark harness (a few hundred events) so it cannot rot.
//! It asserts that every scenario ran and produced figures, not how fast anything was.

#[test]
fn a_smoke_run_of_every_scenario_writes_a_complete_results_file() {
    let out = std::env::temp_dir().join(format!("bench-smoke-{}.json", uuid::Uuid::new_v4()));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--smoke", "--out"])
        .arg(&out)
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "bench --smoke failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    for scenario in [
        "1a. ingest, one visitor",
        "1b. ingest, single",
        "2. ingest, batches",
        "3. storage",
        "4. end to end",
        "5. memory",
        "6. dashboard",
        "7. where visitors are",
    ] {
        assert!(
            stdout.contains(scenario),
            "table lacks {scenario}:\n{stdout}"
        );
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("results file")).expect("JSON");
    let _ = std::fs::remove_file(&out);
    assert_eq!(results["smoke"], true);
    for key in [
        "ingest_single",
        "ceiling_a_healthz",
        "ceiling_b_raw_rskafka",
        "anchor_tutorial_style",
    ] {
        assert!(
            results[key]["ok"].as_u64().unwrap_or(0) > 0,
            "{key} acknowledged nothing: {results}"
        );
    }
    assert!(
        results["ingest_batches_events_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(
        results["ceiling_d_java_producer"]["per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "Kafka's Java producer ran: {results}"
    );
    let versus = results["versus"].as_array().expect("the A/B scenarios");
    assert_eq!(versus.len(), 3, "scenarios (a), (b) and (c): {results}");
    for m in versus {
        assert!(m["ours"]["requests"]["ok"].as_u64().unwrap_or(0) > 0, "{m}");
        let peers = m["peers"].as_array().expect("the Go peer's runs");
        assert_eq!(peers.len(), 3, "linger.ms 0, 1 and 5: {m}");
        for peer in peers {
            assert!(
                peer["requests"]["ok"].as_u64().unwrap_or(0) > 0,
                "the Go peer acknowledged nothing: {m}"
            );
        }
    }
    assert!(results["broker"]
        .as_str()
        .unwrap_or("")
        .contains("Apache Kafka 4."));
    assert!(results["storage_events_per_second"].as_f64().unwrap_or(0.0) > 0.0);
    let dashboard = &results["dashboard"];
    assert!(
        dashboard["api_p50_ms"].as_f64().unwrap_or(0.0) > 0.0,
        "{dashboard}"
    );
    assert!(
        dashboard["raw_ms"].as_f64().unwrap_or(0.0) > 0.0,
        "{dashboard}"
    );
    assert_eq!(
        dashboard["equal"], true,
        "the API and the raw events agree: {dashboard}"
    );
    assert!(
        results["ceiling_c_copy_rows_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(results["end_to_end"]["ok"].as_u64().unwrap_or(0) > 0);
    assert_eq!(results["rss_peak_mb"].as_object().map(|m| m.len()), Some(4));
}
