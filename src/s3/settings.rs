//! Which S3 service a client talks to, and as whom: the settings that pick one of the process's
//! clients.

/// Which S3 service a client talks to, and as whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Endpoint override (`MERCHGEN_S3_ENDPOINT`); `AWS_ENDPOINT_URL` is read by the SDK.
    pub endpoint: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), needed by most S3-compatible servers.
    pub force_path_style: bool,
    /// Region override; otherwise the SDK's chain (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Static credentials instead of the SDK's chain (RunPod's `BUCKET_*` variables or a job's
    /// `s3Config`).
    pub credentials: Option<S3Credentials>,
    /// For an endpoint a job named (RunPod's `s3Config.endpointUrl`): the client resolves its
    /// host through the SSRF guard, so the addresses checked are the ones connected to (a name
    /// re-bound after the job's check cannot reach a private address). `None` for the operator's
    /// own endpoint, which may well be private.
    pub connect_guard: Option<crate::net::AddressPolicy>,
}

/// An S3 access key pair; the secret is redacted when printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: crate::redact::Redacted,
}
