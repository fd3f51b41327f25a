"""The one definition of a results row and of a raw-samples row.

Every writer and reader follows ``COLUMNS``; ``results/README.md`` carries the same table
(``python -m bench schema`` prints it, and a test keeps the two equal). Bump
``SCHEMA_VERSION`` when a column changes meaning or disappears; adding one does not break
readers that select columns by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.axes import DEVICE, DIMENSIONS, Dimension, config_id_template

SCHEMA_VERSION = 1
RESULTS_FILE = "results.csv"
SAMPLES_FILE = "samples.csv"
ENV_FILE = "env.json"
SWEEP_FILE = "sweep.json"
# sweep.json's config_ids planned, each once a repeat, and any that `run --only` was given
PLAN_KEY = "configurations"
ONLY_KEY = "only"
# Processes taking turns (paired rounds, side by side) find their ends of the turns, the
# groups' order and any CPUs to pin to here: "READ_FD,WRITE_FD,SEED[;CPU,...]" (turns.py).
TURNS_VARIABLE = "MULTINET_BENCH_TURNS"

# What became of a configuration. Every status gives the same rows (one per phase); only
# `ok` rows carry measurements, the others say why in `error`.
OK, OOM, SKIPPED, NONFINITE, ERROR = "ok", "oom", "skipped", "nonfinite", "error"
STATUSES = (OK, OOM, SKIPPED, NONFINITE, ERROR)
# Where `energy_j_per_step` came from: NVML's energy counter, or mean power x time
# (bench/measure/energy.py).
COUNTER, ESTIMATE = "counter", "estimate"

# The phases a configuration is timed in, as the reading side names them (it cannot import
# multinet, which needs torch; a test holds these equal to ``multinet.PHASES``). `step` is
# the whole iteration timed with no boundaries.
PHASES = ("forward", "backward", "optimizer")
OPTIMIZER_PHASE = PHASES[2]
# A phase only some scenarios have (SAC's target critics averaged towards the critics after
# the updates): its rows exist for those scenarios alone.
TARGET = "target"
STEP = "step"
TIMED_PHASES = (*PHASES, TARGET, STEP)
REQUIRED_PHASES = (*PHASES, STEP)

# a configuration's phases, sorted, when all its rows are there (`target`: where it has one)
WHOLE_PHASES = (sorted(REQUIRED_PHASES), sorted(TIMED_PHASES))

MIB = 1024 * 1024

# The thresholds of the `bound` column (bench/analyze/phase_bounds.py applies them).
# Launch-bound when the host's dispatch time is at least this share of the device time.
# The GPU cannot run ahead of the queue, so once the host needs 80% of the GPU's time to
# issue the work, any hiccup of the host leaves the GPU idle and the device time follows
# the host's; well under it, the GPU has queued work in hand and the host is hidden.
LAUNCH_HOST_SHARE = 0.8
# Compute-bound at this fraction of the GPU's dense peak for the precision, or above.
# Large matrix products reach 60-80% of a published peak, so half of it means the
# arithmetic units set the pace. Tested before the launch share: a GPU that busy fills the
# launch queue, and a host that waits on a full queue takes as long as the GPU does.
COMPUTE_PEAK_FRACTION = 0.5


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str
    empty_when: str = "never"
    # how the reader types it: `str`, `int`, `float` or `bool`; an `int` column that may be
    # empty is read as float, with NaN where it is
    kind: str = "str"


NOT_OK = "status is not `ok`"  # a configuration that was not measured has no figures


def dimension_column(dimension: Dimension) -> Column:
    return Column(dimension.name, dimension.unit, dimension.meaning, dimension.empty_when,
                  dimension.kind.__name__)


# Columns that follow a dimension's own (the device's name after the device)
COMPANIONS = {DEVICE.name: (Column("device_name", "", "GPU name, or the CPU model for `cpu`"),)}


def _dimension_columns() -> tuple[Column, ...]:
    return tuple(column for d in DIMENSIONS
                 for column in (dimension_column(d), *COMPANIONS.get(d.name, ())))


COLUMNS: tuple[Column, ...] = (
    Column("schema_version", "", "version of this column list", kind="int"),
    Column("run_id", "", "the run's unique id, also the name of its folder by default"),
    Column("repeat", "", "which pass over the sweep (1-based); `--repeats N` makes N passes, "
           "each in a fresh random order; a run of W workers numbers its passes across them "
           "(worker k measures repeats k, k + W, ...)", kind="int"),
    Column("worker", "", "the process that measured the pass (1-based): a run's workers are "
           "fresh processes, each measuring every configuration, so the spread between them "
           "is the spread between processes", "the run predates workers", kind="int"),
    Column("config_id", "", f"the configuration's key: {config_id_template()}; joins "
           "`results.csv` with `samples.csv`"),
    Column("group", "", "config_id of the reference configuration of the comparison group this "
           "one was timed in: the configurations of a group differ only in the sweep's "
           "`compare_by` axis (the optimizer setup by default) and were timed together, "
           "round-robin, a block of each per round, so their ratios pair block by block "
           "(`ratios.csv`)", "the configuration was timed alone"),
    *_dimension_columns(),
    Column("backend", "", "the collectives' backend: `nccl` on CUDA, `gloo` on the CPU",
           "not `--distributed`"),
    Column("global_batch_size", "samples", "batch_size x world_size: the samples one step "
           "takes over all ranks", kind="int"),
    Column("seed", "", "seed of the weights and the synthetic batch (under `--distributed`, "
           "rank r draws its batch from seed + r)", kind="int"),
    Column("phase", "", "`forward` (networks and loss), `backward`, `optimizer` (every "
           "optimizer's step, then zero_grad with set_to_none; zeroing is folded in here), "
           "`target` (only where the scenario has one: SAC's target critics averaged towards "
           "the critics after the updates), or `step`: the whole iteration timed with no "
           "boundaries between phases"),
    Column("status", "", "`ok` when measured; `oom`: ran out of device (or CPU) memory; "
           "`skipped`: not attempted, since a smaller batch of the same configuration ran "
           "out of memory; `nonfinite`: the loss was NaN or infinite after timing; `error`: "
           "any other exception"),
    Column("error", "", "one-line reason when the status is not `ok` (the exception's "
           "message, or what was out of memory)", "status is `ok`"),
    Column("clock", "", "how time was taken: `perf_counter` (CPU), `cuda_event` (CUDA events, "
           "one sync per block), `mps_sync` (host clock, synchronized at each boundary), "
           "`pytest_benchmark` (imported from the pytest-benchmark suite)", NOT_OK),
    Column("n_samples", "iterations", "timed iterations behind the statistics", NOT_OK, kind="int"),
    Column("median_ms", "ms", "median time of the phase, on the device's clock", NOT_OK,
           kind="float"),
    Column("iqr_ms", "ms", "interquartile range (q3 - q1, linear interpolation)", NOT_OK,
           kind="float"),
    Column("mean_ms", "ms", "mean", NOT_OK, kind="float"),
    Column("std_ms", "ms", "sample standard deviation (n - 1); 0 for one sample", NOT_OK,
           kind="float"),
    Column("min_ms", "ms", "fastest iteration", NOT_OK, kind="float"),
    Column("max_ms", "ms", "slowest iteration", NOT_OK, kind="float"),
    Column("ci_low_ms", "ms", "lower end of the median's 95% confidence interval (order "
           "statistics)", NOT_OK, kind="float"),
    Column("ci_high_ms", "ms", "upper end of the median's 95% confidence interval", NOT_OK,
           kind="float"),
    Column("rel_ci", "fraction", "half the confidence interval divided by the median; the "
           "adaptive repetition stops once every phase is under its target", NOT_OK, kind="float"),
    Column("noisy", "bool", "True when iqr_ms / median_ms > 0.10", NOT_OK, kind="bool"),
    Column("host_median_ms", "ms", "median host time between the same boundaries: on CUDA "
           "the CPU dispatch time, elsewhere the same clock as median_ms", NOT_OK, kind="float"),
    Column("host_iqr_ms", "ms", "interquartile range of the host time", NOT_OK, kind="float"),
    Column("slowest_rank", "", "under `--distributed`: the rank whose median of this phase is "
           "the highest; every statistic of the row, and the phase's samples, are that rank's",
           f"{NOT_OK}, or not `--distributed`", kind="int"),
    Column("rank_spread", "ratio", "under `--distributed`: the highest of the ranks' medians "
           "of this phase over the lowest (1: the ranks agree)",
           f"{NOT_OK}, or not `--distributed`", kind="float"),
    Column("samples_per_s", "samples/s", "global_batch_size / median_ms, for this phase (all "
           "ranks' samples)", NOT_OK, kind="float"),
    Column("threads", "", "torch.get_num_threads() while measuring", kind="int"),
    Column("warmup_iters", "iterations", "untimed iterations before the first sample", NOT_OK,
           kind="int"),
    Column("stop_reason", "", "why sampling stopped: `converged` (confidence target met), "
           "`budget` (time budget spent) or `max_samples`", NOT_OK),
    Column("blocks", "rounds", "rounds of the timing this configuration took part in (a block "
           "of each pass per round)", NOT_OK, kind="int"),
    Column("disturbed_blocks", "blocks", "blocks in which the process got under 75% of the CPU "
           "share it got in its typical block (CPU time over wall time, per thread the block "
           "keeps busy): another process took the CPU from it", NOT_OK, kind="int"),
    Column("measure_s", "s", "wall time spent sampling this configuration, warm-up excluded",
           NOT_OK, kind="float"),
    Column("compile_s", "s", "wall time of the first, compiling iteration (synchronized), "
           "after torch._dynamo.reset() so that each comparison group compiles afresh "
           "(inductor's on-disk cache stays); within a group only the first configuration pays "
           "in full: the others reuse the graphs it compiled where theirs are the same (the "
           "optimizer setups share their networks' graphs); never part of the timed samples",
           f"{NOT_OK}, or compile is `none`", kind="float"),
    Column("flops", "FLOP", "floating-point operations of the phase in one iteration "
           "(FlopCounterMode: matrix products and convolutions, 2 per multiply-add; the "
           "optimizer's elementwise work counts 0); `step`: all phases", NOT_OK, kind="int"),
    Column("tflops_per_s", "TFLOP/s", "flops / median time", f"{NOT_OK}, or no flops",
           kind="float"),
    Column("peak_fraction", "fraction", "tflops_per_s over the GPU's published dense peak for "
           "the precision (bench/measure/peaks.py)", f"{NOT_OK}, or the GPU's peak is not known",
           kind="float"),
    Column("bound", "", "what bounds the phase on the GPU (bench/analyze/phase_bounds.py): "
           f"`compute` when peak_fraction >= {COMPUTE_PEAK_FRACTION}; else `launch` when "
           f"host_median_ms / median_ms >= {LAUNCH_HOST_SHARE} (the host's dispatch took "
           "most of the device's time, so the GPU idled between kernels); else `neither`",
           f"{NOT_OK}, or not on CUDA, or the phase has no timing (a CUDA graph's phases)"),
    Column("ops", "operators", "ATen operators dispatched by the phase in one eager iteration; "
           "many small ones mean a launch-bound step", NOT_OK, kind="int"),
    Column("kernels", "kernels", "CUDA kernels (and memcpy/memset) the phase launched in one "
           "iteration, from the profiler", f"{NOT_OK}, or not on CUDA", kind="int"),
    Column("cuda_peak_allocated_mib", "MiB", "peak memory allocated by tensors over the first "
           "two iterations of the configuration built afresh after its timing, alone on the "
           "device (the first creates the optimizers' state; torch.cuda.max_memory_allocated)",
           f"{NOT_OK}, or not on CUDA", kind="float"),
    Column("cuda_peak_reserved_mib", "MiB", "peak memory held by the caching allocator over the "
           "same iterations", f"{NOT_OK}, or not on CUDA", kind="float"),
    Column("phase_peak_allocated_mib", "MiB", "peak allocated during this phase of one untimed "
           "iteration (peak reset at the phase's start)",
           f"{NOT_OK}, or not on CUDA, or phase is `step`", kind="float"),
    Column("nvml_used_mib_max", "MiB", "peak device memory used, all processes (NVML v2 "
           "memory API); this and the NVML columns below are read while the configuration's "
           "comparison group is timed, so they are the group's", f"{NOT_OK}, or no NVML",
           kind="float"),
    Column("nvml_process_mib_max", "MiB", "peak device memory of this process per NVML",
           f"{NOT_OK}, or no NVML, or NVML cannot see this process (containers)", kind="float"),
    Column("gpu_util_pct_mean", "%", "mean GPU utilization over the NVML readings",
           f"{NOT_OK}, or no NVML", kind="float"),
    Column("sm_clock_mhz_mean", "MHz", "mean SM clock", f"{NOT_OK}, or no NVML", kind="float"),
    Column("power_w_mean", "W", "mean board power", f"{NOT_OK}, or no NVML", kind="float"),
    Column("temperature_c_max", "°C", "highest GPU temperature", f"{NOT_OK}, or no NVML",
           kind="float"),
    Column("nvml_samples", "readings", "NVML readings taken (about one per 100 ms)",
           f"{NOT_OK}, or no NVML", kind="int"),
    Column("energy_j_per_step", "J", "energy the GPU used per iteration: NVML's total-energy "
           "counter read before and after each of this configuration's blocks (so each "
           "configuration of a comparison group gets its own), the differences' sum over the "
           "iterations both passes ran in them (bench/measure/energy.py); where the GPU has no "
           "counter, power_w_mean x the step's median time. Under `--distributed`, rank 0's GPU",
           f"{NOT_OK}, or no NVML, or neither the counter nor power could be read",
           kind="float"),
    Column("samples_per_j", "samples/J", "batch_size / energy_j_per_step: samples per joule "
           "of one GPU (global_batch_size / energy_j_per_step with one process)",
           "energy_j_per_step is empty", kind="float"),
    Column("energy_source", "", "`counter`: from the energy counter; `estimate`: mean power x "
           "time, where the power is the comparison group's mean (it sets two "
           "configurations of a group apart only by their times)",
           "energy_j_per_step is empty"),
    Column("cpu_peak_rss_mib", "MiB", "peak resident memory of the process over the "
           "configuration's untimed iterations (Linux VmHWM, reset per configuration)",
           f"{NOT_OK}, or not readable on this OS", kind="float"),
    Column("param_bytes", "bytes", "parameters of all networks", NOT_OK, kind="int"),
    Column("grad_bytes", "bytes", "gradients after backward", NOT_OK, kind="int"),
    Column("optimizer_state_bytes", "bytes", "optimizer state (moments, momentum, step)", NOT_OK,
           kind="int"),
    Column("activation_bytes", "bytes", "tensors saved for backward in one forward, parameters "
           "excluded, each storage once", NOT_OK, kind="int"),
    Column("torch_version", "", "torch.__version__"),
    Column("hostname", "", "machine that ran it"),
    Column("started_at", "", "when the configuration started (ISO 8601, UTC)"),
)

FIELDS: tuple[str, ...] = tuple(c.name for c in COLUMNS)

SAMPLE_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "", "as in results.csv"),
    Column("repeat", "", "as in results.csv", kind="int"),
    Column("config_id", "", "as in results.csv"),
    Column("phase", "", "as in results.csv"),
    Column("iteration", "", "index of the sample within its configuration and phase",
           kind="int"),
    Column("block", "", "the round the sample was taken in: the samples of the configurations "
           "of one comparison group pair by it", "imported from the pytest-benchmark suite",
           kind="int"),
    Column("device_ms", "ms", "time on the device's clock", kind="float"),
    Column("host_ms", "ms", "host time between the same boundaries", kind="float"),
)
SAMPLE_FIELDS: tuple[str, ...] = tuple(c.name for c in SAMPLE_COLUMNS)

RATIOS_FILE = "ratios.csv"
# What ratios.csv holds: each configuration of a comparison group against the group's
# reference, per phase, from their samples paired block by block (bench/analyze/ratios.py).
# Derived from results.csv and samples.csv; written again whenever the run is.
RATIO_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "", "as in results.csv"),
    Column("group", "", "as in results.csv: the reference configuration's config_id"),
    Column("config_id", "", "the configuration set against the reference"),
    Column("compared", "", "the axis the two differ in (the sweep's `compare_by`)"),
    Column("reference", "", "the reference's value of that axis"),
    Column("value", "", "this configuration's value of that axis"),
    *_dimension_columns(),
    Column("phase", "", "as in results.csv"),
    Column("blocks", "blocks", "rounds in which both were timed (over every repeat)",
           kind="int"),
    Column("reference_ms", "ms", "the reference's median (over repeats, the median of the "
           "medians)", kind="float"),
    Column("config_ms", "ms", "this configuration's median, likewise", kind="float"),
    Column("ratio", "ratio", "this configuration's time over the reference's: the 20% trimmed "
           "mean over the paired blocks of the log-ratio of their block medians; below 1 is "
           "faster", kind="float"),
    Column("ci_low", "ratio", "lower end of the ratio's confidence interval (Yuen's trimmed "
           "t), at the `confidence` of the look the group stopped at", kind="float"),
    Column("ci_high", "ratio", "upper end of that interval", kind="float"),
    Column("verdict", "", "`faster` or `slower` when the interval excludes 1; `same` when it "
           "lies within the threshold of 1; `inconclusive` otherwise (too few blocks, or "
           "too much noise to tell)"),
    Column("threshold", "fraction", "the change within which two are the same", kind="float"),
    Column("look", "", "the planned look the group's verdicts were taken at (1 at the sweep's "
           "min_rounds, then every quarter more rounds: bench/analyze/sequential.py)",
           kind="int"),
    Column("confidence", "fraction", "the interval's confidence: 1 less that look's share of "
           "the 5% error budget, so that the verdicts, looked at as the rounds came, are "
           "wrong at most 5% of the time", kind="float"),
)
RATIO_FIELDS: tuple[str, ...] = tuple(c.name for c in RATIO_COLUMNS)


NETWORKS_FILE = "networks.csv"
# The pseudo-network of the work outside every network's boundaries (the same name as
# bench/measure/boundaries.py's, which needs torch).
OUTSIDE = "(outside)"
# What networks.csv holds: each configuration's phases split by network, from an attribution
# pass run after its timing (bench/measure/attribution.py), and the memory of each network.
NOT_ATTRIBUTED = "status is `error`"
NETWORK_COLUMNS: tuple[Column, ...] = (
    Column("schema_version", "", "as in results.csv", kind="int"),
    Column("run_id", "", "as in results.csv"),
    Column("repeat", "", "as in results.csv", kind="int"),
    Column("config_id", "", "as in results.csv; joins networks.csv with results.csv"),
    *_dimension_columns(),
    Column("network", "", "a network of the scenario (as `verify` and the README name it), or "
           f"`{OUTSIDE}`: the work outside every network's boundaries (the loss, the glue "
           "between networks, the autograd engine's start, an optimizer call's entry)",
           NOT_ATTRIBUTED),
    Column("phase", "", "`forward`, `backward`, `optimizer` or `target`, as in results.csv "
           "(a network with no work in a phase has a row of zeros there)", NOT_ATTRIBUTED),
    Column("status", "", "`ok` when attributed; `error`: the attribution pass failed (the "
           "configuration's results are kept all the same)"),
    Column("error", "", "one-line reason when the status is not `ok`", "status is `ok`"),
    Column("clock", "", "`perf_counter` (CPU: the host clock), `cuda_event` (CUDA events at "
           "every boundary, one sync per iteration) or `mps_sync` (the host clock, "
           "synchronized at every boundary)", NOT_ATTRIBUTED),
    Column("iterations", "iterations", "iterations with every network's boundaries behind "
           "the medians", NOT_ATTRIBUTED, kind="int"),
    Column("eager_twin", "bool", "True when the configuration is compiled or a CUDA graph, "
           "which have no module or autograd boundaries inside them: the pass ran on the same "
           "step uncompiled", NOT_ATTRIBUTED, kind="bool"),
    Column("median_ms", "ms", "median over those iterations of the time this network owned in "
           "this phase, on the device's clock: in forward from its entry to its exit, in "
           "backward the autograd nodes its forward made and its parameters' gradient "
           "accumulation, in optimizer its optimizer's step and zero_grad (or its share of "
           "them), in target the networks the target update moves", NOT_ATTRIBUTED,
           kind="float"),
    Column("host_median_ms", "ms", "the same on the host clock (on CUDA: dispatch time)",
           NOT_ATTRIBUTED, kind="float"),
    Column("share", "fraction", "median_ms over attributed_ms: this network's part of the "
           "phase", f"{NOT_ATTRIBUTED}, or the phase took no time", kind="float"),
    Column("apportioned_ms", "ms", "the part of median_ms that was split off an optimizer call "
           "updating several networks at once (a `foreach` or `fused` step over `single`'s one "
           "group, or any step under a GradScaler), in proportion to their parameter "
           "elements, rather than measured; 0 where all of it was measured", NOT_ATTRIBUTED,
           kind="float"),
    Column("apportioned_by", "", "the rule and the networks it split among",
           "nothing was apportioned"),
    Column("phase_ms", "ms", "the phase's median in iterations of the same pass with phase "
           "boundaries only, alternated with the attributed ones", NOT_ATTRIBUTED,
           kind="float"),
    Column("attributed_ms", "ms", "the sum of median_ms over this phase's rows, "
           f"`{OUTSIDE}` included", NOT_ATTRIBUTED, kind="float"),
    Column("sum_gap", "fraction", "how far the networks' times miss adding up to the phase's "
           "(what their boundaries cost, and noise): per round of the pass, the networks' "
           f"times in this phase (`{OUTSIDE}` included) over the phase's time in the same "
           "round's phase-bounded iteration; the median over the rounds, less 1",
           f"{NOT_ATTRIBUTED}, or the phase took no time", kind="float"),
    Column("step_ms", "ms", "the unbroken step's median (no boundaries at all), in iterations "
           "of the same pass", NOT_ATTRIBUTED, kind="float"),
    Column("attributed_step_ms", "ms", "the median whole time of the iterations with every "
           "network's boundaries", NOT_ATTRIBUTED, kind="float"),
    Column("overhead", "fraction", "what the attribution's boundaries cost the step: per "
           "round, the attributed iteration's whole time over the same round's unbroken step; "
           "the median over the rounds, less 1", NOT_ATTRIBUTED, kind="float"),
    Column("param_bytes", "bytes", "this network's parameters", NOT_ATTRIBUTED, kind="int"),
    Column("grad_bytes", "bytes", "its gradients after backward (the largest over the "
           "updates; 0 for a network no update trains)", NOT_ATTRIBUTED, kind="int"),
    Column("optimizer_state_bytes", "bytes", "the optimizer state of its parameters "
           "(moments, momentum, step)", NOT_ATTRIBUTED, kind="int"),
    Column("activation_bytes", "bytes", "tensors its forward saved for backward, parameters "
           "excluded, each storage once (the largest over the updates); under "
           f"`{OUTSIDE}`, the loss's", NOT_ATTRIBUTED, kind="int"),
)
NETWORK_FIELDS: tuple[str, ...] = tuple(c.name for c in NETWORK_COLUMNS)

TRACES_DIR = "traces"
OPERATORS_FILE = "operators.csv"
# What operators.csv holds: the top operators of each traced configuration per network and
# phase, from its profiler trace (bench/analyze/trace_ops.py).
OPERATOR_COLUMNS: tuple[Column, ...] = (
    Column("config_id", "", "as in results.csv"),
    Column("trace", "", f"the trace file, relative to the run folder (`{TRACES_DIR}/...`)"),
    Column("steps", "iterations", "iterations the trace holds", kind="int"),
    Column("phase", "", "as in networks.csv"),
    Column("network", "", "as in networks.csv"),
    Column("rank", "", "1 for the operator that took the most time in this network and phase "
           "(device time on CUDA, else host self time)", kind="int"),
    Column("operator", "", "the operator's name in the trace (`aten::addmm`, or an autograd "
           "node's `autograd::engine::evaluate_function: ...`)"),
    Column("calls", "calls", "calls per iteration", kind="float"),
    Column("self_host_ms", "ms", "host time per iteration inside the operator and not inside "
           "an operator it called", kind="float"),
    Column("device_ms", "ms", "time per iteration of the kernels it launched",
           "not traced on CUDA", kind="float"),
)
OPERATOR_FIELDS: tuple[str, ...] = tuple(c.name for c in OPERATOR_COLUMNS)


def markdown_table(columns: tuple[Column, ...] = COLUMNS) -> str:
    lines = ["| column | unit | meaning | empty when |", "| --- | --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.unit} | {c.meaning} | {c.empty_when} |" for c in columns]
    return "\n".join(lines)
