"""The one definition of a results row and of a raw-samples row.

Every writer and reader follows ``COLUMNS``; ``results/README.md`` carries the same table
(``python -m bench schema`` prints it, and a test keeps the two equal). Bump
``SCHEMA_VERSION`` when a column changes meaning or disappears; adding one does not break
readers that select columns by name.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
RESULTS_FILE = "results.csv"
SAMPLES_FILE = "samples.csv"
ENV_FILE = "env.json"
SWEEP_FILE = "sweep.json"

# What became of a configuration. Every status gives the same rows (one per phase); only
# `ok` rows carry measurements, the others say why in `error`.
OK, OOM, SKIPPED, NONFINITE, ERROR = "ok", "oom", "skipped", "nonfinite", "error"
STATUSES = (OK, OOM, SKIPPED, NONFINITE, ERROR)


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str
    empty_when: str = "never"


NOT_OK = "status is not `ok`"  # a configuration that was not measured has no figures


COLUMNS: tuple[Column, ...] = (
    Column("schema_version", "", "version of this column list"),
    Column("run_id", "", "the run's unique id, also the name of its folder by default"),
    Column("repeat", "", "which pass over the sweep (1-based); `--repeats N` makes N passes, "
           "each in a fresh random order"),
    Column("config_id", "", "the configuration's key: scenario/size/device/batch/setup/"
           "optimizer/impl, then any axis away from its default (`bf16`, `compile-modules`, "
           "`cuda-graph`, `n4`, `ddp-joint`); joins `results.csv` with `samples.csv`"),
    Column("scenario", "", "joint-training scenario (see the README)"),
    Column("size", "", "network size preset (`seed` is the article's sizes)"),
    Column("device", "", "torch device the step ran on (`cpu`, `cuda:0`, `mps`); under "
           "`--distributed`, rank 0's (each rank uses cuda:LOCAL_RANK)"),
    Column("device_name", "", "GPU name, or the CPU model for `cpu`"),
    Column("batch_size", "samples", "samples per step (per network input); under "
           "`--distributed`, per rank"),
    Column("optimizer_setup", "", "`separate` (one optimizer per network), `single` (one "
           "optimizer, one group) or `grouped` (one optimizer, a group per network)"),
    Column("optimizer", "", "`adam`, `adamw` or `sgd`"),
    Column("optimizer_impl", "", "implementation that actually ran: `loop`, `foreach` or "
           "`fused` (`auto` is resolved before it is recorded)"),
    Column("precision", "", "`fp32`, `bf16` (autocast) or `fp16` (autocast and a GradScaler; "
           "CUDA only)"),
    Column("compile", "", "`none`, `modules` (each network through torch.compile) or `step` "
           "(each update's forward and loss compiled as one function)"),
    Column("cuda_graph", "bool", "True when the whole step was captured in one CUDA graph and "
           "replayed; its phase rows then have no timing (no boundaries inside a graph)"),
    Column("n_networks", "", "networks in the scenario (a parameter of `n_chain` and "
           "`n_ensemble`; the fixed pairs record 2, `shared_trunk` 2 heads on a trunk)"),
    Column("ddp_wrap", "", "`none` (one process, no DistributedDataParallel), or under "
           "`--distributed` `joint` (one DDP owning every network) or `per_network` (one DDP "
           "per network)"),
    Column("world_size", "ranks", "processes the step ran on, data-parallel (1 outside "
           "`--distributed`)"),
    Column("backend", "", "the collectives' backend: `nccl` on CUDA, `gloo` on the CPU",
           "not `--distributed`"),
    Column("global_batch_size", "samples", "batch_size x world_size: the samples one step "
           "takes over all ranks"),
    Column("seed", "", "seed of the weights and the synthetic batch (under `--distributed`, "
           "rank r draws its batch from seed + r)"),
    Column("phase", "", "`forward` (networks and loss), `backward`, `optimizer` (every "
           "optimizer's step, then zero_grad with set_to_none; zeroing is folded in here), "
           "or `step`: the whole iteration timed with no boundaries between phases"),
    Column("status", "", "`ok` when measured; `oom`: ran out of device (or CPU) memory; "
           "`skipped`: not attempted, since a smaller batch of the same configuration ran "
           "out of memory; `nonfinite`: the loss was NaN or infinite after timing; `error`: "
           "any other exception"),
    Column("error", "", "one-line reason when the status is not `ok` (the exception's "
           "message, or what was out of memory)", "status is `ok`"),
    Column("clock", "", "how time was taken: `perf_counter` (CPU), `cuda_event` (CUDA events, "
           "one sync per block), `mps_sync` (host clock, synchronized at each boundary), "
           "`pytest_benchmark` (imported from the pytest-benchmark suite)", NOT_OK),
    Column("n_samples", "iterations", "timed iterations behind the statistics", NOT_OK),
    Column("median_ms", "ms", "median time of the phase, on the device's clock", NOT_OK),
    Column("iqr_ms", "ms", "interquartile range (q3 - q1, linear interpolation)", NOT_OK),
    Column("mean_ms", "ms", "mean", NOT_OK),
    Column("std_ms", "ms", "sample standard deviation (n - 1); 0 for one sample", NOT_OK),
    Column("min_ms", "ms", "fastest iteration", NOT_OK),
    Column("max_ms", "ms", "slowest iteration", NOT_OK),
    Column("ci_low_ms", "ms", "lower end of the median's 95% confidence interval (order "
           "statistics)", NOT_OK),
    Column("ci_high_ms", "ms", "upper end of the median's 95% confidence interval", NOT_OK),
    Column("rel_ci", "fraction", "half the confidence interval divided by the median; the "
           "adaptive repetition stops once every phase is under its target", NOT_OK),
    Column("noisy", "bool", "True when iqr_ms / median_ms > 0.10", NOT_OK),
    Column("host_median_ms", "ms", "median host time between the same boundaries: on CUDA "
           "the CPU dispatch time, elsewhere the same clock as median_ms", NOT_OK),
    Column("host_iqr_ms", "ms", "interquartile range of the host time", NOT_OK),
    Column("slowest_rank", "", "under `--distributed`: the rank whose median of this phase is "
           "the highest; every statistic of the row, and the phase's samples, are that rank's",
           f"{NOT_OK}, or not `--distributed`"),
    Column("rank_spread", "ratio", "under `--distributed`: the highest of the ranks' medians "
           "of this phase over the lowest (1: the ranks agree)",
           f"{NOT_OK}, or not `--distributed`"),
    Column("samples_per_s", "samples/s", "global_batch_size / median_ms, for this phase (all "
           "ranks' samples)", NOT_OK),
    Column("threads", "", "torch.get_num_threads() while measuring"),
    Column("warmup_iters", "iterations", "untimed iterations before the first sample", NOT_OK),
    Column("stop_reason", "", "why sampling stopped: `converged` (confidence target met), "
           "`budget` (time budget spent) or `max_samples`", NOT_OK),
    Column("measure_s", "s", "wall time spent sampling this configuration, warm-up excluded",
           NOT_OK),
    Column("compile_s", "s", "wall time of the first, compiling iteration (synchronized), "
           "after torch._dynamo.reset() so that each configuration compiles afresh (inductor's "
           "on-disk cache stays); never part of the timed samples",
           f"{NOT_OK}, or compile is `none`"),
    Column("flops", "FLOP", "floating-point operations of the phase in one iteration "
           "(FlopCounterMode: matrix products and convolutions, 2 per multiply-add; the "
           "optimizer's elementwise work counts 0); `step`: all phases", NOT_OK),
    Column("tflops_per_s", "TFLOP/s", "flops / median time", f"{NOT_OK}, or no flops"),
    Column("peak_fraction", "fraction", "tflops_per_s over the GPU's published dense peak for "
           "the precision (bench/peaks.py)", f"{NOT_OK}, or the GPU's peak is not known"),
    Column("ops", "operators", "ATen operators dispatched by the phase in one eager iteration; "
           "many small ones mean a launch-bound step", NOT_OK),
    Column("kernels", "kernels", "CUDA kernels (and memcpy/memset) the phase launched in one "
           "iteration, from the profiler", f"{NOT_OK}, or not on CUDA"),
    Column("cuda_peak_allocated_mib", "MiB", "peak memory allocated by tensors while timing "
           "(torch.cuda.max_memory_allocated)", f"{NOT_OK}, or not on CUDA"),
    Column("cuda_peak_reserved_mib", "MiB", "peak memory held by the caching allocator while "
           "timing", f"{NOT_OK}, or not on CUDA"),
    Column("phase_peak_allocated_mib", "MiB", "peak allocated during this phase of one untimed "
           "iteration (peak reset at the phase's start)",
           f"{NOT_OK}, or not on CUDA, or phase is `step`"),
    Column("nvml_used_mib_max", "MiB", "peak device memory used, all processes (NVML v2 "
           "memory API)", f"{NOT_OK}, or no NVML"),
    Column("nvml_process_mib_max", "MiB", "peak device memory of this process per NVML",
           f"{NOT_OK}, or no NVML, or NVML cannot see this process (containers)"),
    Column("gpu_util_pct_mean", "%", "mean GPU utilization over the NVML readings",
           f"{NOT_OK}, or no NVML"),
    Column("sm_clock_mhz_mean", "MHz", "mean SM clock", f"{NOT_OK}, or no NVML"),
    Column("power_w_mean", "W", "mean board power", f"{NOT_OK}, or no NVML"),
    Column("temperature_c_max", "°C", "highest GPU temperature", f"{NOT_OK}, or no NVML"),
    Column("nvml_samples", "readings", "NVML readings taken (about one per 100 ms)",
           f"{NOT_OK}, or no NVML"),
    Column("cpu_peak_rss_mib", "MiB", "peak resident memory of the process during the "
           "configuration (Linux VmHWM, reset per configuration)",
           f"{NOT_OK}, or not readable on this OS"),
    Column("param_bytes", "bytes", "parameters of all networks", NOT_OK),
    Column("grad_bytes", "bytes", "gradients after backward", NOT_OK),
    Column("optimizer_state_bytes", "bytes", "optimizer state (moments, momentum, step)", NOT_OK),
    Column("activation_bytes", "bytes", "tensors saved for backward in one forward, parameters "
           "excluded, each storage once", NOT_OK),
    Column("torch_version", "", "torch.__version__"),
    Column("hostname", "", "machine that ran it"),
    Column("started_at", "", "when the configuration started (ISO 8601, UTC)"),
)

FIELDS: tuple[str, ...] = tuple(c.name for c in COLUMNS)

# Axes added after the first runs were written: what a row without them ran with.
AXIS_DEFAULTS = {"precision": "fp32", "compile": "none", "cuda_graph": False, "n_networks": 2,
                 "ddp_wrap": "none", "world_size": 1}

SAMPLE_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "", "as in results.csv"),
    Column("repeat", "", "as in results.csv"),
    Column("config_id", "", "as in results.csv"),
    Column("phase", "", "as in results.csv"),
    Column("iteration", "", "index of the sample within its configuration and phase"),
    Column("device_ms", "ms", "time on the device's clock"),
    Column("host_ms", "ms", "host time between the same boundaries"),
)
SAMPLE_FIELDS: tuple[str, ...] = tuple(c.name for c in SAMPLE_COLUMNS)


def markdown_table(columns: tuple[Column, ...] = COLUMNS) -> str:
    lines = ["| column | unit | meaning | empty when |", "| --- | --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.unit} | {c.meaning} | {c.empty_when} |" for c in columns]
    return "\n".join(lines)
