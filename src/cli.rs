//! Command-line shape: the subcommands and their own flags. Shared settings live in `Config`.

use crate::config::Config;
use crate::engine::tiny::TinyLayout;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// merchgen: a serverless GPU worker for merch designs: FLUX text-to-image, product mockups,
/// S3 outputs and signed webhooks. With no subcommand it picks its door from the environment
/// (RUNPOD_WEBHOOK_GET_JOB -> runpod, AWS_LAMBDA_RUNTIME_API -> lambda, MERCHGEN_SQS_QUEUE_URL -> sqs).
#[derive(Debug, Parser)]
#[command(name = "merchgen", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the job(s) of one event file and print the outcome JSON (exit 0 ok, 1 failed, 2 usage).
    Invoke {
        /// Event file: a job, a RunPod job, a Lambda direct event or an SQS event batch.
        file: PathBuf,
        /// Folder for outputs of jobs that name no destination.
        #[arg(long, default_value = "out")]
        out: String,
        /// Start from given noise: a safetensors file with `noise` (num_images, 16, h/8, w/8)
        /// and, for image-to-image, `vae_noise` (1, 16, h/8, w/8). For parity runs.
        #[arg(long)]
        initial_noise: Option<PathBuf>,
        /// Save the final latents (num_images, 16, h/8, w/8) before VAE decoding to this
        /// safetensors file (tensor `latents`). For parity runs; one generating job per file.
        #[arg(long)]
        dump_latents: Option<PathBuf>,
    },
    /// Model cache: list presets, verify, fetch into the cache, or write a tiny test model.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// AWS Lambda: direct invocations and SQS event batches (the default when
    /// AWS_LAMBDA_RUNTIME_API is set).
    Lambda,
    /// Consume an SQS queue on a GPU host (the default when MERCHGEN_SQS_QUEUE_URL is set).
    Sqs(crate::config::SqsArgs),
    /// Per-stage timings of the pipeline or of mockup rendering.
    Bench {
        #[command(subcommand)]
        what: Option<BenchWhat>,
        #[command(flatten)]
        pipeline: PipelineBench,
    },
    /// RunPod serverless worker (job-take, job-done, progress, ping, job-stop); with
    /// --test-input or ./test_input.json, run one job locally and exit 0 or 1.
    Runpod(Box<crate::config::RunpodArgs>),
    /// RunPod's endpoint API (/v2/{endpoint_id}/run, runsync, status, cancel, health,
    /// purge-queue) on a local port, plus /healthz and /metrics.
    Serve(crate::config::ServeArgs),
    /// Run one network's raw forward pass on tensors from a safetensors file (parity runs).
    #[command(hide = true)]
    Net {
        #[arg(value_enum)]
        family: NetFamily,
        // Flags end in `-file`: the global `--weights` (weight mode) and `--output` (job
        // destination) reach every subcommand, and clap cannot hold two flags of one name.
        /// Weights file (safetensors or PyTorch .pth).
        #[arg(long = "weights-file", id = "weights_file")]
        weights: PathBuf,
        /// Safetensors file with tensor `input`.
        #[arg(long = "input-file", id = "input_file")]
        input: PathBuf,
        /// Safetensors file to write tensor `output` to.
        #[arg(long = "output-file", id = "output_file")]
        output: PathBuf,
    },
}

/// Network families `merchgen net` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetFamily {
    Matting,
    Upscale,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ModelsAction {
    /// List the presets and whether their files are in the cache.
    List,
    /// Check that every file of the model is present and readable.
    Verify,
    /// Download the model's files into the Hugging Face cache (fills a volume or an image).
    Fetch,
    /// Write a tiny random-weight FLUX model in the real formats (its images are noise).
    Tiny {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "folder")]
        layout: TinyLayout,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// One design onto all six built-in products at 2000x2000, JPEG included.
    Mockups {
        #[arg(long, default_value_t = 2000)]
        size: u32,
        #[arg(long, default_value_t = 5)]
        iterations: u32,
    },
    /// Matting (cut-out), x4 upscale and a t-shirt print file at 300 DPI on one design, with the
    /// configured finishing models (MERCHGEN_MATTING_MODEL, MERCHGEN_UPSCALE_MODEL).
    Finishing(FinishingBench),
    /// The `print` deliverables of one design on a product's print area: vector SVG, die-cut
    /// sticker (PNG, SVG, PDF), separations with underbase, hard alpha; time and peak memory.
    Print(PrintBench),
    /// Jobs with six mockups each through the consumer loop at pipeline depths 1, 2, 3
    /// (`--simulate-gpu-ms N`: a benchmark-only engine that sleeps N ms per step).
    Pipeline(JobsBench),
}

/// Flags of the pipeline benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineBench {
    /// Build the FLUX.1-schnell architecture in memory with random weights (no files).
    #[arg(long)]
    pub random_weights: bool,
    /// With --random-weights: `full` (FLUX.1-schnell sizes) or `tiny` (harness check on a CPU).
    /// Weight mode from --weights: `bf16` (dequantized at load) or `quantized` (Q4_0 matmuls).
    #[arg(long, default_value = "full")]
    pub scale: String,
    #[arg(long, default_value_t = 1024)]
    pub width: u32,
    #[arg(long, default_value_t = 1024)]
    pub height: u32,
    #[arg(long, default_value_t = 4)]
    pub steps: u32,
    #[arg(long, default_value_t = 1)]
    pub images: u32,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub iterations: u32,
    /// With --random-weights: only time loading the written files against a plain read of
    /// them (page cache dropped), with peak host memory; no generation.
    #[arg(long)]
    pub(crate) load_only: bool,
    /// Print the result as one JSON line (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// With --random-weights: `schnell`, `dev` (guidance embedding) or `kontext` (dev plus a
    /// reference photo's tokens beside the image's, as an edit runs).
    #[arg(long, default_value = "schnell")]
    pub(crate) variant: String,
    /// With --random-weights: time LoRAs of this rank instead (first apply, switching between
    /// two, taking them off; with --steps above 0, one step with and without).
    #[arg(long, value_name = "RANK")]
    pub lora: Option<usize>,
}

/// Flags of `merchgen bench finishing`.
#[derive(Debug, Clone, clap::Args)]
pub struct FinishingBench {
    /// Side of the square design, in pixels.
    #[arg(long, default_value_t = 1024)]
    pub size: u32,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub iterations: u32,
    /// Print one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `merchgen bench print`.
#[derive(Debug, Clone, clap::Args)]
pub struct PrintBench {
    /// The design (PNG or JPEG), scaled to `--size` square.
    #[arg(long, default_value = "events/assets/design.png")]
    pub design: std::path::PathBuf,
    /// Side of the square design, in pixels.
    #[arg(long, default_value_t = 1024)]
    pub size: u32,
    /// The product whose print area the files are made for.
    #[arg(long, default_value = "tshirt")]
    pub product: String,
    #[arg(long, default_value_t = 300)]
    pub dpi: u32,
    /// Vector colours and separation inks.
    #[arg(long, default_value_t = 8)]
    pub colors: u32,
    #[arg(long, default_value_t = 4)]
    pub inks: u32,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub iterations: u32,
    /// Write the vector tracer's input (the design in `--colors` inks) here, so a reference
    /// tracer can be run on the same image (bench/print.sh).
    #[arg(long)]
    pub write_traced_input: Option<std::path::PathBuf>,
    /// Print one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `merchgen bench pipeline`.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsBench {
    /// Jobs per run.
    #[arg(long, default_value_t = 40)]
    pub jobs: u32,
    /// Image side of each job.
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    #[arg(long, default_value_t = 4)]
    pub steps: u32,
    /// Side of each of the six mockups.
    #[arg(long, default_value_t = 1024)]
    pub(crate) mockup_size: u32,
    /// Pipeline depths to run, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub(crate) depths: Vec<usize>,
    /// Benchmark only: hold the engine thread this many ms per step instead of generating.
    #[arg(long)]
    pub(crate) simulate_gpu_ms: Option<u64>,
    /// With `--simulate-gpu-ms`: what each image beyond the first adds to a batched step, as a
    /// fraction of a one-image step (an assumption until `bench/gpu.sh` measures images per
    /// second at batch 1, 2 and 4 on a GPU).
    #[arg(long, default_value_t = 0.8)]
    pub(crate) simulate_batch_extra: f64,
    /// Also run the jobs batched: this many images per forward pass (and as many jobs in
    /// flight), waiting up to `--batch-wait-ms` to fill a pass. 0: no batched run.
    #[arg(long, default_value_t = 4)]
    pub batch: u32,
    #[arg(long, default_value_t = 200)]
    pub(crate) batch_wait_ms: u64,
    /// Print one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_files_parse_beside_global_weights_and_output() {
        let cli = Cli::try_parse_from([
            "merchgen",
            "net",
            "upscale",
            "--weights-file",
            "w.pth",
            "--input-file",
            "i",
            "--output-file",
            "o",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Net { weights, .. }) if weights == std::path::Path::new("w.pth"))
        );
    }
}
