//! The platform's URLs, built exactly as runpod-python 1.12 builds them: worker-id placeholders
//! replaced once, the job id per post, and query parameters appended. Pure string work; nothing
//! here sends a request.

/// The runpod-python version whose protocol this door speaks (sent as `runpod_version`).
pub(crate) const PROTOCOL_VERSION: &str = "1.12.0";

/// The four URL families of one worker.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    take: String,
    done: String,
    ping: Option<String>,
}

impl Urls {
    /// URLs for `worker_id` from the templates RunPod injects.
    ///
    /// Both `$RUNPOD_POD_ID` and `$ID` become the worker id in the job-take and ping URLs (the
    /// SDK replaces only one of them in each; replacing both is a harmless superset). In the
    /// job-done template `$RUNPOD_POD_ID` is the worker and `$ID` the job.
    pub(crate) fn new(take: &str, done: &str, ping: Option<&str>, worker_id: &str) -> Self {
        let worker = |t: &str| {
            t.replace("$RUNPOD_POD_ID", worker_id)
                .replace("$ID", worker_id)
        };
        Urls {
            take: worker(take),
            done: done.replace("$RUNPOD_POD_ID", worker_id),
            ping: ping.filter(|p| !p.is_empty()).map(worker),
        }
    }

    /// `GET` job-take: `&job_in_progress=0|1`; above one job the batch URL with `&batch_size=N`.
    pub(crate) fn take(&self, batch: u32, in_progress: bool) -> String {
        let flag = if in_progress { "1" } else { "0" };
        if batch > 1 {
            let url = self.take.replace("/job-take/", "/job-take-batch/");
            append(
                &url,
                &[
                    ("batch_size", &batch.to_string()),
                    ("job_in_progress", flag),
                ],
            )
        } else {
            append(&self.take, &[("job_in_progress", flag)])
        }
    }

    /// `POST` job-done (results and progress) for one job.
    pub(crate) fn done(&self, job_id: &str, is_stream: bool) -> String {
        let url = self.done.replace("$ID", job_id);
        append(
            &url,
            &[("isStream", if is_stream { "true" } else { "false" })],
        )
    }

    /// `GET` heartbeat with the ids of the jobs in flight (omitted when none).
    pub(crate) fn ping(&self, job_ids: &[String]) -> Option<String> {
        let base = self.ping.as_deref()?;
        let ids = job_ids.join(",");
        let mut params = Vec::with_capacity(2);
        if !ids.is_empty() {
            params.push(("job_id", ids.as_str()));
        }
        params.push(("runpod_version", PROTOCOL_VERSION));
        Some(append(base, &params))
    }

    /// `GET` heartbeat reporting a failed start-up check (then the worker exits).
    pub(crate) fn unhealthy(&self, check: &str, reason: &str) -> Option<String> {
        let base = self.ping.as_deref()?;
        let reason: String = reason.chars().take(256).collect();
        let params = [
            ("status", "unhealthy"),
            ("check", check),
            ("reason", &reason),
            ("runpod_version", PROTOCOL_VERSION),
        ];
        Some(append(base, &params))
    }

    /// `GET` job-stop long poll: the job-take URL with `/job-stop/`, query kept, nothing
    /// added. `None` when the job-take URL has no `/job-take/` (the SDK disables it then).
    pub(crate) fn stop(&self) -> Option<String> {
        self.take
            .contains("/job-take/")
            .then(|| self.take.replace("/job-take/", "/job-stop/"))
    }
}

/// Append query parameters: with `&` when the URL already has a query (as RunPod's templates
/// do), else with `?`. Values are form-encoded (`,` becomes `%2C`, as `requests` sends it).
fn append(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (key, value) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(key);
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Urls {
        Urls::new(
            "http://p/v2/ep/job-take/$RUNPOD_POD_ID?gpu=NVIDIA+RTX",
            "http://p/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+RTX",
            Some("http://p/v2/ep/ping/$RUNPOD_POD_ID?gpu=NVIDIA+RTX"),
            "pod1",
        )
    }

    #[test]
    fn take_appends_in_progress_and_batch() {
        assert_eq!(
            urls().take(1, false),
            "http://p/v2/ep/job-take/pod1?gpu=NVIDIA+RTX&job_in_progress=0"
        );
        assert_eq!(
            urls().take(3, true),
            "http://p/v2/ep/job-take-batch/pod1?gpu=NVIDIA+RTX&batch_size=3&job_in_progress=1"
        );
    }

    #[test]
    fn sdk_style_id_placeholder_means_worker_in_take() {
        let u = Urls::new(
            "http://p/job-take/$ID",
            "http://p/job-done/$RUNPOD_POD_ID/$ID",
            None,
            "w",
        );
        assert_eq!(u.take(1, false), "http://p/job-take/w?job_in_progress=0");
        assert_eq!(
            u.done("j-1", false),
            "http://p/job-done/w/j-1?isStream=false"
        );
        assert_eq!(u.ping(&[]), None);
    }

    #[test]
    fn done_and_ping_and_stop_urls() {
        let u = urls();
        assert_eq!(
            u.done("job-9", false),
            "http://p/v2/ep/job-done/pod1/job-9?gpu=NVIDIA+RTX&isStream=false"
        );
        assert_eq!(
            u.ping(&["a".into(), "b".into()]).unwrap(),
            "http://p/v2/ep/ping/pod1?gpu=NVIDIA+RTX&job_id=a%2Cb&runpod_version=1.12.0"
        );
        assert_eq!(
            u.ping(&[]).unwrap(),
            "http://p/v2/ep/ping/pod1?gpu=NVIDIA+RTX&runpod_version=1.12.0"
        );
        assert_eq!(
            u.stop().unwrap(),
            "http://p/v2/ep/job-stop/pod1?gpu=NVIDIA+RTX"
        );
        let reason = u.unhealthy("model_load", "no file x").unwrap();
        assert!(
            reason.ends_with(
                "&status=unhealthy&check=model_load&reason=no+file+x&runpod_version=1.12.0"
            ),
            "{reason}"
        );
    }
}
