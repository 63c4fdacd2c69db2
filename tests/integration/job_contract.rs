//! The job contract: a table of bad inputs, each failing with its code and field before any work,
//! and the defaults and style wrapping of good ones.

use merchgen::error::ErrorCode;
use merchgen::job::parse;
use merchgen::job::validate;
use merchgen::job::{GenerationDefaults, Limits};

fn check(bytes: &[u8]) -> Result<merchgen::job::ValidJob, merchgen::error::JobError> {
    let spec = parse::job_from_slice(bytes)?;
    validate::validate(
        spec,
        "delivery-1",
        &Limits::default(),
        &GenerationDefaults::default(),
    )
}

#[test]
fn bad_inputs_fail_with_code_and_field() {
    let big_prompt = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(1 << 20));
    let cases: Vec<(&str, Vec<u8>, ErrorCode, &str)> = vec![
        (
            "unknown field",
            br#"{"prompt":"x","colour":"red"}"#.to_vec(),
            ErrorCode::InvalidInput,
            "colour",
        ),
        (
            "unknown nested field",
            br#"{"prompt":"x","output":{"fromat":"png"}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "output.fromat",
        ),
        (
            "wrong type width",
            br#"{"prompt":"x","width":"512"}"#.to_vec(),
            ErrorCode::InvalidInput,
            "width",
        ),
        (
            "wrong type seed",
            br#"{"prompt":"x","seed":-1}"#.to_vec(),
            ErrorCode::InvalidInput,
            "seed",
        ),
        (
            "float num_images",
            br#"{"prompt":"x","num_images":1.5}"#.to_vec(),
            ErrorCode::InvalidInput,
            "num_images",
        ),
        (
            "missing prompt",
            br#"{"width":512}"#.to_vec(),
            ErrorCode::InvalidInput,
            "prompt",
        ),
        (
            "empty prompt",
            br#"{"prompt":"   "}"#.to_vec(),
            ErrorCode::InvalidInput,
            "prompt",
        ),
        (
            "null prompt",
            br#"{"prompt":null}"#.to_vec(),
            ErrorCode::InvalidInput,
            "prompt",
        ),
        (
            "width not multiple of 16",
            br#"{"prompt":"x","width":1000}"#.to_vec(),
            ErrorCode::InvalidInput,
            "width",
        ),
        (
            "height too large",
            br#"{"prompt":"x","height":4096}"#.to_vec(),
            ErrorCode::InvalidInput,
            "height",
        ),
        (
            "width too small",
            br#"{"prompt":"x","width":128}"#.to_vec(),
            ErrorCode::InvalidInput,
            "width",
        ),
        (
            "num_images 0",
            br#"{"prompt":"x","num_images":0}"#.to_vec(),
            ErrorCode::InvalidInput,
            "num_images",
        ),
        (
            "num_images 9",
            br#"{"prompt":"x","num_images":9}"#.to_vec(),
            ErrorCode::InvalidInput,
            "num_images",
        ),
        (
            "steps 0",
            br#"{"prompt":"x","num_inference_steps":0}"#.to_vec(),
            ErrorCode::InvalidInput,
            "num_inference_steps",
        ),
        (
            "steps 500",
            br#"{"prompt":"x","num_inference_steps":500}"#.to_vec(),
            ErrorCode::InvalidInput,
            "num_inference_steps",
        ),
        (
            "guidance negative",
            br#"{"prompt":"x","guidance_scale":-1}"#.to_vec(),
            ErrorCode::InvalidInput,
            "guidance_scale",
        ),
        (
            "strength 0",
            br#"{"prompt":"x","image":{"url":"https://a.example/p.png"},"strength":0}"#.to_vec(),
            ErrorCode::InvalidInput,
            "strength",
        ),
        (
            "strength 1.5",
            br#"{"prompt":"x","image":{"url":"https://a.example/p.png"},"strength":1.5}"#.to_vec(),
            ErrorCode::InvalidInput,
            "strength",
        ),
        (
            "strength without image",
            br#"{"prompt":"x","strength":0.5}"#.to_vec(),
            ErrorCode::InvalidInput,
            "strength",
        ),
        (
            "negative prompt on a model without true CFG",
            br#"{"prompt":"x","negative_prompt":"text, watermark"}"#.to_vec(),
            ErrorCode::InvalidInput,
            "negative_prompt",
        ),
        (
            "unknown style",
            br#"{"prompt":"x","style":"cubism"}"#.to_vec(),
            ErrorCode::InvalidInput,
            "style",
        ),
        (
            "1 MB prompt",
            big_prompt.into_bytes(),
            ErrorCode::InvalidInput,
            "prompt",
        ),
        (
            "invalid UTF-8",
            b"{\"prompt\":\"\xff\xfe\"}".to_vec(),
            ErrorCode::InvalidInput,
            "body",
        ),
        (
            "truncated JSON",
            br#"{"prompt":"a corgi"#.to_vec(),
            ErrorCode::InvalidInput,
            "body",
        ),
        (
            "not an object",
            br#"["prompt"]"#.to_vec(),
            ErrorCode::InvalidInput,
            "body",
        ),
        ("empty body", b"".to_vec(), ErrorCode::InvalidInput, "body"),
        (
            "bad id",
            br#"{"id":"../etc","prompt":"x"}"#.to_vec(),
            ErrorCode::InvalidInput,
            "id",
        ),
        (
            "id too long",
            format!(r#"{{"id":"{}","prompt":"x"}}"#, "a".repeat(129)).into_bytes(),
            ErrorCode::InvalidInput,
            "id",
        ),
        (
            "image with two sources",
            br#"{"prompt":"x","image":{"url":"https://a.example/p","base64":"AA=="}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "image",
        ),
        (
            "image url not http",
            br#"{"prompt":"x","image":{"url":"ftp://a.example/p.png"}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "image.url",
        ),
        (
            "bad s3 source",
            br#"{"prompt":"x","image":{"s3":"s3://B/k"}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "image.s3",
        ),
        (
            "prompt and design",
            br#"{"prompt":"x","design":{"base64":"AA=="},"mockups":{"products":["mug"]}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "design",
        ),
        (
            "design without mockups",
            br#"{"design":{"base64":"AA=="}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "mockups",
        ),
        (
            "mockups empty products",
            br#"{"prompt":"x","mockups":{"products":[]}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "mockups.products",
        ),
        (
            "mockup product bad name",
            br#"{"prompt":"x","mockups":{"products":["mug","t shirt"]}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "mockups.products[1]",
        ),
        (
            "bad format",
            br#"{"prompt":"x","output":{"format":"gif"}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "output.format",
        ),
        (
            "bad destination scheme",
            br#"{"prompt":"x","output":{"destination":"gs://b/p"}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "output.destination",
        ),
        (
            "print dpi too high",
            br#"{"prompt":"x","output":{"print_dpi":5000}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "output.print_dpi",
        ),
        (
            "webhook not http",
            br#"{"prompt":"x","webhook":{"url":"file:///etc/passwd"}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "webhook.url",
        ),
        (
            "webhook bad event",
            br#"{"prompt":"x","webhook":{"url":"https://h.example","events":["done"]}}"#.to_vec(),
            ErrorCode::InvalidInput,
            "webhook.events[0]",
        ),
        (
            "max_sequence_length too long",
            br#"{"prompt":"x","max_sequence_length":512}"#.to_vec(),
            ErrorCode::InvalidInput,
            "max_sequence_length",
        ),
        (
            "control characters",
            b"{\"prompt\":\"a\\u0000b\"}".to_vec(),
            ErrorCode::InvalidInput,
            "prompt",
        ),
    ];
    assert!(cases.len() >= 25);
    for (name, body, code, field) in cases {
        let err = check(&body).expect_err(name);
        assert_eq!(err.code, code, "{name}: {err:?}");
        assert_eq!(err.field.as_deref(), Some(field), "{name}: {err:?}");
        assert!(!err.retryable, "{name}");
        assert!(err.message.len() < 2000, "{name}: message stays short");
    }
}

#[test]
fn unknown_style_lists_valid_styles() {
    let err = check(br#"{"prompt":"x","style":"cubism"}"#).unwrap_err();
    for name in ["pop_art", "watercolor", "sticker", "line_art"] {
        assert!(err.message.contains(name), "{}", err.message);
    }
}

#[test]
fn oversized_body_is_input_too_large() {
    let body = vec![b' '; parse::MAX_BODY_BYTES + 1];
    let err = parse::parse_json(&body).unwrap_err();
    assert_eq!(err.code, ErrorCode::InputTooLarge);
}

#[test]
fn good_job_gets_preset_defaults_and_style() {
    let job = check(br#"{"prompt":"a corgi","style":"pop_art","seed":42,"num_images":2}"#).unwrap();
    assert_eq!(job.id, "delivery-1");
    let g = job.generation.unwrap();
    assert_eq!(
        (g.width, g.height, g.steps, g.guidance),
        (1024, 1024, 4, 0.0)
    );
    assert!(g.prompt.starts_with("a corgi, pop art"));
    assert_eq!((g.seed, g.seed_drawn, g.num_images), (42, false, 2));
    assert_eq!(g.max_sequence_length, 256);
}

#[test]
fn an_empty_negative_prompt_is_no_negative_prompt() {
    let g = check(br#"{"prompt":"x","negative_prompt":"  "}"#)
        .unwrap()
        .generation
        .unwrap();
    assert_eq!(g.true_cfg, None);
    assert!(check(br#"{"prompt":"x","negative_prompt":null}"#).is_ok());
}

#[test]
fn missing_seed_is_drawn_and_reported() {
    let g = check(br#"{"prompt":"x"}"#).unwrap().generation.unwrap();
    assert!(g.seed_drawn);
    let h = check(br#"{"prompt":"x"}"#).unwrap().generation.unwrap();
    assert_ne!(g.seed, h.seed);
}

#[test]
fn mockup_only_job_needs_no_prompt() {
    let job =
        check(br#"{"id":"m1","design":{"base64":"AA=="},"mockups":{"products":["mug"]}}"#).unwrap();
    assert!(job.generation.is_none());
    assert!(job.design.is_some());
}

#[test]
fn every_sample_event_parses_to_its_shape() {
    for entry in std::fs::read_dir("events").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let value =
            parse::parse_json(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let (_, deliveries) = parse::detect(value).unwrap();
        assert!(!deliveries.is_empty(), "{}", path.display());
    }
}

fn webhook_job(url: &str) -> Vec<u8> {
    serde_json::json!({"prompt": "x", "webhook": {"url": url}})
        .to_string()
        .into_bytes()
}

#[test]
fn webhook_to_a_literal_forbidden_address_is_refused_at_validation() {
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.1.1/hooks",
        "http://[::1]/hooks",
        "http://2130706433/hooks",
        "http://[fd00:ec2::254]/",
    ] {
        let err = check(&webhook_job(url)).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::InvalidInput, Some("webhook.url")),
            "{url}: {err}"
        );
    }
    // Names are checked when resolved, at delivery.
    assert!(check(&webhook_job("https://shop.example/hooks")).is_ok());
}

#[test]
fn webhook_to_a_range_opened_by_the_allow_list_passes_validation() {
    use merchgen::net::guard::AddressPolicy;
    let limits = Limits {
        addresses: AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]),
        ..Limits::default()
    };
    let run = |url: &str| {
        let spec = parse::job_from_slice(&webhook_job(url)).unwrap();
        validate::validate(spec, "d", &limits, &GenerationDefaults::default())
    };
    assert!(run("http://127.0.0.1:8080/hooks").is_ok());
    let err = run("http://169.254.169.254/").unwrap_err();
    assert_eq!(err.field.as_deref(), Some("webhook.url"));
}

/// Limits of a remote door with these allow-lists (`MERCHGEN_OUTPUT_ALLOW`,
/// `MERCHGEN_INPUT_S3_ALLOW`), as `Config::limits` builds them.
fn remote_limits(output: &[&str], input: &[&str]) -> Limits {
    use merchgen::job::allow::StorageAllow;
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Limits {
        output_allow: Some(
            StorageAllow::parse("MERCHGEN_OUTPUT_ALLOW", &owned(output), true).unwrap(),
        ),
        input_s3_allow: Some(
            StorageAllow::parse("MERCHGEN_INPUT_S3_ALLOW", &owned(input), false).unwrap(),
        ),
        ..Limits::default()
    }
}

fn field_of(job: serde_json::Value, limits: &Limits) -> Result<(), (ErrorCode, Option<String>)> {
    let spec = parse::job_from_slice(job.to_string().as_bytes()).unwrap();
    validate::validate(spec, "d", limits, &GenerationDefaults::default())
        .map(|_| ())
        .map_err(|e| (e.code, e.field))
}

#[test]
fn remote_jobs_write_only_where_the_operator_allows() {
    let dest = |d: &str| serde_json::json!({"prompt": "x", "output": {"destination": d}});
    let refused = Err((
        ErrorCode::InvalidInput,
        Some("output.destination".to_owned()),
    ));
    // Nothing set: any bucket, no local folder.
    let open = remote_limits(&[], &[]);
    assert_eq!(field_of(dest("s3://any/where"), &open), Ok(()));
    assert_eq!(field_of(dest("/etc/cron.d"), &open), refused);
    assert_eq!(field_of(dest("inline"), &open), Ok(()));
    // A list: only its buckets, prefixes and folders.
    let listed = remote_limits(&["s3://shop/orders", "/srv/merchgen"], &[]);
    assert_eq!(field_of(dest("s3://shop/orders/2026"), &listed), Ok(()));
    assert_eq!(field_of(dest("s3://shop/secrets"), &listed), refused);
    assert_eq!(field_of(dest("s3://other/orders"), &listed), refused);
    assert_eq!(field_of(dest("/srv/merchgen/out"), &listed), Ok(()));
    assert_eq!(field_of(dest("/srv/merchgen/../../etc"), &listed), refused);
    // `merchgen invoke` (no allow-lists) keeps today's freedom.
    assert_eq!(field_of(dest("/tmp/anywhere"), &Limits::default()), Ok(()));
}

#[test]
fn remote_jobs_read_s3_inputs_only_from_allowed_buckets() {
    let design =
        |s3: &str| serde_json::json!({"design": {"s3": s3}, "mockups": {"products": ["mug"]}});
    let photo = |s3: &str| serde_json::json!({"prompt": "x", "image": {"s3": s3}});
    let limits = remote_limits(&[], &["s3://uploads/customers"]);
    assert_eq!(
        field_of(design("s3://uploads/customers/a.png"), &limits),
        Ok(())
    );
    assert_eq!(
        field_of(design("s3://private/keys.png"), &limits),
        Err((ErrorCode::InvalidInput, Some("design.s3".to_owned())))
    );
    assert_eq!(
        field_of(photo("s3://uploads/other/a.png"), &limits),
        Err((ErrorCode::InvalidInput, Some("image.s3".to_owned())))
    );
    assert_eq!(
        field_of(design("s3://private/keys.png"), &remote_limits(&[], &[])),
        Ok(())
    );
}

/// A key twice in one object (`{"width": 1000, "width": 64}`) is refused naming it, in every
/// shape a job arrives in.
#[test]
fn a_key_twice_in_a_job_is_refused_naming_it_in_every_shape() {
    use merchgen::job::parse::{detect, job_from_value, parse_json};
    use merchgen::job::strict_json::StrictJson;
    let refused = |body: serde_json::Value| {
        let e = job_from_value(body).unwrap_err();
        (e.code, e.field)
    };
    let twice = |key: &str| (ErrorCode::InvalidInput, Some(key.to_owned()));
    // A bare job (invoke, Lambda's direct invocation, an SQS message body).
    let bare = br#"{"prompt": "x", "width": 1000, "width": 64}"#;
    let (_, jobs) = detect(parse_json(bare).unwrap()).unwrap();
    assert_eq!(refused(jobs[0].body.clone()), twice("width"));
    let lambda: StrictJson = serde_json::from_slice(bare).unwrap();
    assert_eq!(refused(lambda.0), twice("width"));
    // Nested, in RunPod's shape.
    let runpod = br#"{"id": "r1", "input": {"prompt": "x", "output": {"destination": "s3://a/x", "destination": "s3://b/y"}}}"#;
    let (_, jobs) = detect(parse_json(runpod).unwrap()).unwrap();
    assert_eq!(refused(jobs[0].body.clone()), twice("output.destination"));
    // In an SQS record's body, in a list.
    let record = r#"{"prompt": "x", "loras": [{"source": {"hf": "a/b"}, "scale": 1, "scale": 2}]}"#;
    let batch = serde_json::json!({"Records": [{"messageId": "m1", "body": record}]});
    let (_, jobs) = detect(parse_json(batch.to_string().as_bytes()).unwrap()).unwrap();
    assert_eq!(refused(jobs[0].body.clone()), twice("loras[0].scale"));
    // The same job with each key once is fine.
    let once = br#"{"prompt": "x", "width": 64}"#;
    assert!(job_from_value(parse_json(once).unwrap()).is_ok());
}

/// A key with an empty, `.` or `..` segment passed a plain prefix compare and was stored under
/// its literal name, which HTTP clients read as a path into another tenant's prefix: refused,
/// naming the field, for destinations and every kind of S3 source.
#[test]
fn s3_paths_with_empty_or_dot_segments_are_refused_naming_the_field() {
    let limits = remote_limits(&["s3://bkt/tenant-a"], &["s3://bkt/tenant-a"]);
    let dest = |d: &str| serde_json::json!({"prompt": "x", "output": {"destination": d}});
    let design =
        |s3: &str| serde_json::json!({"design": {"s3": s3}, "mockups": {"products": ["mug"]}});
    let photo = |s3: &str| serde_json::json!({"prompt": "x", "image": {"s3": s3}});
    let lora = |s3: &str| serde_json::json!({"prompt": "x", "loras": [{"source": {"s3": s3}}]});
    let refused = |field: &str| Err((ErrorCode::InvalidInput, Some(field.to_owned())));
    for path in [
        "s3://bkt/tenant-a/../tenant-b",
        "s3://bkt/tenant-a/./x",
        "s3://bkt/tenant-a//x",
        "s3://bkt/tenant-a/..",
    ] {
        assert_eq!(
            field_of(dest(path), &limits),
            refused("output.destination"),
            "{path}"
        );
        let object = format!("{path}/a.png");
        assert_eq!(
            field_of(design(&object), &limits),
            refused("design.s3"),
            "{object}"
        );
        assert_eq!(
            field_of(photo(&object), &limits),
            refused("image.s3"),
            "{object}"
        );
        assert_eq!(
            field_of(lora(&object), &limits),
            refused("loras[0].source.s3"),
            "{object}"
        );
    }
    // The same paths are refused where no allow-list applies, too.
    let open = remote_limits(&[], &[]);
    assert_eq!(
        field_of(dest("s3://bkt/tenant-a/../tenant-b"), &open),
        refused("output.destination")
    );
    assert_eq!(field_of(dest("s3://bkt/tenant-a/"), &limits), Ok(()));
}

fn check_dev(bytes: &[u8]) -> Result<merchgen::job::ValidJob, merchgen::error::JobError> {
    let defaults = GenerationDefaults {
        steps: 28,
        guidance: 3.5,
        max_sequence_length: 512,
        true_cfg: true,
        ..GenerationDefaults::default()
    };
    let spec = parse::job_from_slice(bytes)?;
    validate::validate(spec, "delivery-1", &Limits::default(), &defaults)
}

#[test]
fn true_cfg_runs_only_on_a_dev_model_with_a_scale_and_a_negative_prompt() {
    let field = |r: Result<merchgen::job::ValidJob, merchgen::error::JobError>| {
        let e = r.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
        e.field.unwrap()
    };
    // schnell: neither a negative prompt nor a scale.
    assert_eq!(
        field(check(br#"{"prompt":"x","true_cfg_scale":2}"#)),
        "true_cfg_scale"
    );
    // dev: a negative prompt needs a scale above 1, a scale needs a negative prompt.
    assert_eq!(
        field(check_dev(br#"{"prompt":"x","negative_prompt":"blur"}"#)),
        "negative_prompt"
    );
    assert_eq!(
        field(check_dev(
            br#"{"prompt":"x","negative_prompt":"blur","true_cfg_scale":1}"#
        )),
        "negative_prompt"
    );
    assert_eq!(
        field(check_dev(br#"{"prompt":"x","true_cfg_scale":2}"#)),
        "true_cfg_scale"
    );
    assert_eq!(
        field(check_dev(
            br#"{"prompt":"x","negative_prompt":"b","true_cfg_scale":50}"#
        )),
        "true_cfg_scale"
    );
    let g = check_dev(br#"{"prompt":"x","negative_prompt":"blur","true_cfg_scale":2.5}"#)
        .unwrap()
        .generation
        .unwrap();
    let cfg = g.true_cfg.unwrap();
    assert_eq!((cfg.negative_prompt.as_str(), cfg.scale), ("blur", 2.5));
    assert_eq!((g.steps, g.guidance, g.max_sequence_length), (28, 3.5, 512));
    // A style's negative joins the job's only when true CFG runs.
    let styled = check_dev(br#"{"prompt":"x","style":"metal","true_cfg_scale":3}"#)
        .unwrap()
        .generation
        .unwrap();
    assert_eq!(
        styled.true_cfg.unwrap().negative_prompt,
        "pastel, soft, blurry"
    );
    let plain = check_dev(br#"{"prompt":"x","style":"metal"}"#)
        .unwrap()
        .generation
        .unwrap();
    assert_eq!(plain.true_cfg, None);
}

#[test]
fn loras_are_validated_per_entry() {
    let field = |json: &str| {
        let e = check(json.as_bytes()).unwrap_err();
        (e.code, e.field.unwrap())
    };
    assert_eq!(
        field(r#"{"prompt":"x","loras":[{"source":{"url":"ftp://example.com/a.safetensors"}}]}"#),
        (ErrorCode::InvalidInput, "loras[0].source.url".into())
    );
    assert_eq!(
        field(r#"{"prompt":"x","loras":[{"source":{"hf":"no-slash"}}]}"#),
        (ErrorCode::InvalidInput, "loras[0].source.hf".into())
    );
    assert_eq!(
        field(r#"{"prompt":"x","loras":[{"source":{"hf":"a/b/../c.safetensors"}}]}"#),
        (ErrorCode::InvalidInput, "loras[0].source.hf".into())
    );
    assert_eq!(
        field(
            r#"{"prompt":"x","loras":[{"source":{"hf":"a/b/c.safetensors"}},{"source":{"hf":"a/b/c.safetensors"},"scale":-2.5}]}"#
        ),
        (ErrorCode::InvalidInput, "loras[1].scale".into())
    );
    assert_eq!(
        field(r#"{"design":{"base64":"AA=="},"mockups":{"products":["mug"]},"loras":[]}"#),
        (ErrorCode::InvalidInput, "loras".into())
    );
    let g = check(br#"{"prompt":"x","loras":[{"source":{"hf":"XLabs-AI/flux-lora-collection@abc123/anime_lora.safetensors"},"scale":0.8,"text_encoder":"skip"}]}"#)
        .unwrap()
        .generation
        .unwrap();
    assert_eq!(
        g.loras,
        vec![merchgen::job::ValidLora {
            source: merchgen::job::LoraSource::Hub {
                repo: "XLabs-AI/flux-lora-collection".into(),
                revision: "abc123".into(),
                file: "anime_lora.safetensors".into()
            },
            scale: 0.8,
            skip_text_encoder: true
        }]
    );
}
