//! The text pipelines: text_embeddings (CSV, NDJSON, Parquet input) and email_embeddings.
//! They need the model: `python3 data/fetch_minilm.py` (`.ci/run` does it).

use super::*;

fn text_pipeline() -> String {
    repo().join("pipelines/text_embeddings.toml").display().to_string()
}

fn embeddings_of(file: &str) -> (DataFrame, Vec<Vec<f32>>) {
    let df = read_parquet(file);
    let col = df.column("embedding").unwrap();
    assert_eq!(col.dtype(), &DataType::Array(Box::new(DataType::Float32), 384), "a fixed-size list of 384 float32");
    assert_eq!(col.null_count(), 0);
    let inner = col.as_materialized_series().array().unwrap().get_inner();
    let flat: Vec<f32> = inner.f32().unwrap().into_no_null_iter().collect();
    let vecs = flat.chunks(384).map(<[f32]>::to_vec).collect();
    (df, vecs)
}

#[test]
fn text_embeddings_of_ndjson_keep_columns_and_add_384_floats() {
    // the first 200 texts of the committed sample (the parity test embeds all 1,000)
    let dir = temp_dir("text-ndjson");
    let sample = std::fs::read_to_string(repo().join("data/sample/texts/texts.ndjson")).unwrap();
    let input = dir.join("texts.ndjson");
    std::fs::write(&input, sample.lines().take(200).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let ds = dir.join("dataset");
    let out = sluice(&["run", &text_pipeline(), "--input", input.to_str().unwrap(), "--output", ds.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    let p = &s["partitions"][0];
    assert_eq!(p["partition"], "batch=all");
    assert_eq!(p["rows_in"], 200);
    assert_eq!(p["rows_in"].as_u64().unwrap(), p["rows_out"].as_u64().unwrap() + p["rows_filtered"].as_u64().unwrap());
    let (df, vecs) = embeddings_of(p["files"][0].as_str().unwrap());
    for c in ["id", "group", "text", "batch"] {
        assert!(df.column(c).is_ok(), "{c} kept: {:?}", df.get_column_names());
    }
    assert_eq!(vecs.len() as u64, p["rows_out"].as_u64().unwrap());
    for v in &vecs {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[test]
fn a_bf16_run_is_a_new_version_whose_manifest_and_model_id_say_bf16() {
    let dir = temp_dir("text-bf16");
    let sample = std::fs::read_to_string(repo().join("data/sample/texts/texts.ndjson")).unwrap();
    let input = dir.join("texts.ndjson");
    std::fs::write(&input, sample.lines().take(60).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    // the same pipeline with `precision = "bf16"` (its model named absolutely: it is elsewhere)
    let original = std::fs::read_to_string(text_pipeline()).unwrap();
    let bf16 = dir.join("text_embeddings_bf16.toml");
    std::fs::write(&bf16, original.replace("[model]\n", "[model]\nprecision = \"bf16\"\n")).unwrap();
    let model = format!("model={}", repo().join("data/models/all-MiniLM-L6-v2").display());
    let ds = dir.join("dataset");
    let run = |pipeline: &str| sluice(&["run", pipeline, "--param", &model, "--input", input.to_str().unwrap(), "--output", ds.to_str().unwrap()]);
    let f32_run = run(&text_pipeline());
    assert_eq!(f32_run.code, 0, "{}", f32_run.stderr);
    let bf16_run = run(bf16.to_str().unwrap());
    // another model id (and pipeline): a new version, not the f32 one
    assert_eq!(bf16_run.code, 0, "{}", bf16_run.stderr);
    let (a, b) = (f32_run.summary(), bf16_run.summary());
    assert_eq!(b["status"], "published");
    let (pa, pb) = (&a["partitions"][0], &b["partitions"][0]);
    let (ma, mb) = (manifest(&ds, "batch=all", pa["version"].as_str().unwrap()), manifest(&ds, "batch=all", pb["version"].as_str().unwrap()));
    assert_eq!((ma["model"]["precision"].as_str(), mb["model"]["precision"].as_str()), (Some("f32"), Some("bf16")));
    assert_eq!(mb["model"]["id"].as_str().unwrap(), format!("{}+bf16", ma["model"]["id"].as_str().unwrap()));
    let ((_, va), (_, vb)) = (embeddings_of(pa["files"][0].as_str().unwrap()), embeddings_of(pb["files"][0].as_str().unwrap()));
    assert_eq!(va.len(), vb.len());
    for (x, y) in va.iter().zip(&vb) {
        let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        assert!(dot >= 0.999, "cosine {dot} (both normalised)");
    }
}

#[test]
fn csv_and_parquet_inputs_with_empty_and_null_texts_follow_the_policy() {
    let dir = temp_dir("text-csv");
    let csv = dir.join("texts.csv");
    std::fs::write(&csv, "id,text\n1,The cat sat on the mat.\n2,\n3,   \n4,\"A second, quoted text\"\n5,NA\n").unwrap();
    let ds = temp_dir("text-csv-ds");
    let out = sluice(&["run", &text_pipeline(), "--input", csv.to_str().unwrap(), "--output", ds.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let p = &out.summary()["partitions"][0];
    assert_eq!((p["rows_in"].as_u64(), p["rows_out"].as_u64(), p["rows_filtered"].as_u64()), (Some(5), Some(2), Some(3)));
    let (df, vecs) = embeddings_of(p["files"][0].as_str().unwrap());
    assert_eq!(df.column("id").unwrap().str().unwrap().get(1), Some("4"));

    // the same rows as Parquet give the same vectors
    let mut frame = df!("id" => ["1", "4"], "text" => ["The cat sat on the mat.", "A second, quoted text"]).unwrap();
    let pq = dir.join("texts.parquet");
    ParquetWriter::new(File::create(&pq).unwrap()).finish(&mut frame).unwrap();
    let ds2 = temp_dir("text-pq-ds");
    let out = sluice(&["run", &text_pipeline(), "--input", pq.to_str().unwrap(), "--output", ds2.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, vecs2) = embeddings_of(out.summary()["partitions"][0]["files"][0].as_str().unwrap());
    for (a, b) in vecs.iter().zip(&vecs2) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
    }

    // an input without a text column is bad input, named
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "id,body\n1,hello\n").unwrap();
    let out = sluice(&["run", &text_pipeline(), "--input", bad.to_str().unwrap(), "--output", temp_dir("text-bad").to_str().unwrap()]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.summary()["error"].as_str().unwrap().contains("missing column 'text'"));
}

#[test]
fn emails_are_parsed_deduplicated_quarantined_and_embedded() {
    // the committed sample, plus one exact duplicate and one object that is not an email
    let landing = temp_dir("emails").join("emails");
    for e in std::fs::read_dir(repo().join("data/sample/emails")).unwrap() {
        let e = e.unwrap();
        std::fs::create_dir_all(landing.join(e.file_name())).unwrap();
        for f in std::fs::read_dir(e.path()).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), landing.join(e.file_name()).join(f.file_name())).unwrap();
        }
    }
    let first = std::fs::read_dir(landing.join("spam-1")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&first, landing.join("spam-1/zz-copy.txt")).unwrap();
    std::fs::write(landing.join("spam-1/zz-empty.txt"), "\n\n").unwrap();
    let emails = files_under(&landing).len() as u64;

    let ds = temp_dir("emails-ds");
    let p = repo().join("pipelines/email_embeddings.toml");
    let param = format!("landing={}", landing.display());
    let out = sluice(&["run", p.to_str().unwrap(), "--param", &param, "--output", ds.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    let part = &s["partitions"][0];
    assert_eq!(part["rows_in"].as_u64(), Some(emails));
    assert_eq!(part["rows_quarantined"], 1);
    assert!(part["rows_filtered"].as_u64().unwrap() >= 1, "the copy is a duplicate");
    let manifest = manifest(&ds, "corpus=all", part["version"].as_str().unwrap());
    assert!(manifest["rows"]["filtered_by"]["duplicate"].as_u64().unwrap() >= 1);
    let q = read_parquet(part["quarantine_files"][0].as_str().unwrap());
    assert!(q.column("file").unwrap().str().unwrap().get(0).unwrap().ends_with("zz-empty.txt"));

    let (df, vecs) = embeddings_of(part["files"][0].as_str().unwrap());
    assert_eq!(vecs.len() as u64, part["rows_out"].as_u64().unwrap());
    let labels: Vec<&str> = df.column("label").unwrap().str().unwrap().iter().flatten().collect();
    assert!(labels.contains(&"ham") && labels.contains(&"spam"));
    let groups = df.column("group").unwrap().str().unwrap().unique().unwrap().len();
    assert_eq!(groups, 5);
    assert!(df.column("date").unwrap().null_count() < df.height() / 10, "dates parse");
    assert!(matches!(df.column("date").unwrap().dtype(), DataType::Datetime(_, _)));
    let bodies = df.column("body").unwrap().str().unwrap();
    assert!(bodies.iter().flatten().all(|b| !b.contains("</html>") && !b.contains("<body")), "HTML is stripped");
}

/// A copy of the MiniLM folder: the large files hard-linked, the small configs copied.
fn minilm_copy(tag: &str) -> PathBuf {
    let src = repo().join("data/models/all-MiniLM-L6-v2");
    let dst = temp_dir(tag).join("minilm");
    for f in files_under(&src) {
        let to = dst.join(f.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if std::fs::metadata(&f).unwrap().len() > 1 << 20 {
            std::fs::hard_link(&f, &to).unwrap();
        } else {
            std::fs::copy(&f, &to).unwrap();
        }
    }
    dst
}

#[test]
fn a_changed_pooling_config_is_another_model_never_up_to_date() {
    let model = minilm_copy("pooling");
    let dir = temp_dir("pooling-run");
    let input = dir.join("texts.csv");
    std::fs::write(&input, "id,text\n1,The cat sat on the mat.\n2,A much longer second text about dogs and cats.\n").unwrap();
    let ds = dir.join("dataset");
    let run = || {
        sluice(&["run", &text_pipeline(), "--input", input.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--model", model.to_str().unwrap()])
    };
    let mean = run();
    assert_eq!(mean.code, 0, "{}", mean.stderr);
    assert_eq!(run().summary()["status"], "up_to_date");

    // sentence-transformers would now take the CLS token's vector instead of the mean
    let pooling = model.join("1_Pooling/config.json");
    let text = std::fs::read_to_string(&pooling).unwrap();
    let text = text.replace("\"pooling_mode_cls_token\": false", "\"pooling_mode_cls_token\": true");
    std::fs::write(&pooling, text.replace("\"pooling_mode_mean_tokens\": true", "\"pooling_mode_mean_tokens\": false")).unwrap();
    let cls = run();
    assert_eq!(cls.code, 0, "{}", cls.stderr);
    let s = cls.summary();
    assert_eq!(s["status"], "published", "another pooling is another model: {s}");
    let model_id = |summary: &Value| {
        let p = &summary["partitions"][0];
        manifest(&ds, p["partition"].as_str().unwrap(), p["version"].as_str().unwrap())["model"]["id"].clone()
    };
    assert_ne!(model_id(&mean.summary()), model_id(&s));
    let (_, a) = embeddings_of(mean.summary()["partitions"][0]["files"][0].as_str().unwrap());
    let (_, b) = embeddings_of(s["partitions"][0]["files"][0].as_str().unwrap());
    assert!(a.iter().zip(&b).any(|(x, y)| x.iter().zip(y).any(|(p, q)| (p - q).abs() > 1e-3)), "the vectors changed");
}
