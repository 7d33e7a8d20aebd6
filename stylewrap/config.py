"""Typed models of `stylewrap.yaml`, with line-accurate errors and `--set` / env overrides.

Precedence, lowest first: model defaults < stylewrap.yaml < STYLEWRAP_<SECTION>__<KEY> env vars <
`--set section.key=value` flags. Secrets (API keys, tokens) are never fields here: they are read
from the environment at the moment of use (`stylewrap.secrets`).
"""

from __future__ import annotations

import difflib
import logging
import os
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from stylewrap.errors import ConfigError, Location
from stylewrap import identitynames
from stylewrap.yamlfile import load_yaml_with_lines

CONFIG_FILENAME = "stylewrap.yaml"
# "config: PATH" goes here on every load; the CLI shows it on stderr, so scripted stdout stays clean
log = logging.getLogger("stylewrap.config")
ENV_PREFIX = "STYLEWRAP_"


class Section(BaseModel):
    # inf/nan are never a meaningful epoch count, learning rate or price
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# The system prompt of every training row that has none, rendered for every backend: left unset, each
# backend's chat template inserts its own (for qwen, LLaMA-Factory's "You are Qwen, created by Alibaba
# Cloud. You are a helpful assistant.", 46 tokens a row with the template; ms-swift's "You are a helpful
# assistant.", 20), so the same data would train a different prompt and count different tokens.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


class IdentityConfig(Section):
    name: str = Field(description="the name the model gives when asked who it is")
    author: str = Field(description="who the model says made it")
    file: str | None = Field(None, description="self-cognition rows with {{name}}/{{author}} placeholders (e.g. LLaMA-Factory's data/identity.json); default: stylewrap's built-in rows")
    mix: bool = Field(True, description="add the filled rows to the training data")


class MixSource(Section):
    file: str | None = Field(None, description="general-purpose rows, any format stylewrap reads")
    dataset: str | None = Field(None, description="instead of file: a dataset name registered with train.backend (LLaMA-Factory dataset_info.json, ms-swift's registry); must be on this machine")
    registry: str | None = Field(None, description="the registry file naming `dataset` (LLaMA-Factory dataset_info.json, ms-swift --custom_dataset_info); default: the backend's")
    ratio: float = Field(gt=0, le=10, description="rows taken from it per style row (0.2: one general row for every five)")

    @model_validator(mode="after")
    def _one_source(self) -> "MixSource":
        if (self.file is None) == (self.dataset is None):
            raise ValueError("give one of file or dataset")
        return self


class StyleConfig(Section):
    preset: str = Field("translational", description="the style: a built-in style name (`stylewrap styles list`) or a style YAML path")
    system_prompt: str | None = Field(None, description="system prompt baked into training rows / compare "
                                      f"(training: None means {DEFAULT_SYSTEM_PROMPT!r} on every backend); "
                                      "{{name}}/{{author}} are style.identity's")
    persona: str | None = Field(None, description="the name the model should give when asked who it is (eval's identity probes); default: style.identity.name")
    identity: IdentityConfig | None = Field(None, description="{name, author}: fills self-cognition rows (docs/ecosystem.md)")


class DatagenConfig(Section):
    teacher_model: str = "gpt-4o-mini"
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; env OPENAI_BASE_URL")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the env var holding the key")
    num_topics: int = Field(20, ge=1)
    num_dialogues: int = Field(1000, ge=1)
    turns: int = Field(1, ge=1, description="user/assistant exchanges per dialogue")
    temperature: float = Field(0.9, ge=0, le=2)
    max_tokens: int = Field(1024, ge=1)
    concurrency: int = Field(64, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    price_input_per_1k: float = Field(0.0, ge=0)
    price_output_per_1k: float = Field(0.0, ge=0)
    request_timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, description="per request, on 429/5xx/timeouts/dropped connections")
    retry_backoff: float = Field(0.5, gt=0, description="first retry waits up to this many seconds, doubling each time (with jitter)")
    max_attempts: int = Field(3, ge=1, description="per item: asks again while its replies are rejected")
    dedup_attempts: int = Field(8, ge=1, description="per dialogue: asks while its first question repeats an earlier one")
    json_mode: bool = Field(True, description="send response_format=json_object (turned off by itself if the endpoint refuses it)")
    distinct_questions: bool = Field(False, description="stylize: keep only the first row for each (normalized) first question")
    topics_file: str | None = Field(None, description="use these topics (one per line) instead of generating them")
    manifest_every_s: float = Field(5.0, gt=0, description="how often manifest.json is refreshed during a run")
    seed: int | None = Field(0, description="sampling seed sent to the teacher; null to omit")
    output_dir: str = "data/generated"
    output_format: str = "sharegpt"
    train_file: str = Field("train.jsonl", pattern=r"^[^/\\]+\.jsonl?$", description="the training file's name in output_dir; a .json name writes one JSON array (TslDial.json-style)")


class DataConfig(Section):
    train_file: str | None = Field(None, description="training data, any supported format")
    val_file: str | None = None
    pairs_file: str | None = Field(None, description="preference pairs for train --method dpo|orpo|kto|simpo (`data pairs`, datagen's pairs.jsonl)")
    format: str | None = Field(None, description="force a format instead of auto-detecting")
    dataset_name: str = "stylewrap_style"
    val_size: float = Field(0.0, ge=0, lt=1)
    max_tokens: int | None = Field(None, ge=8, description="longest row in tokens (the model's tokenizer); also the backend's cutoff")
    overlength: Literal["truncate", "drop"] = Field("truncate", description="a row over max_tokens: cut at max_tokens, or left out of training")
    mix: list[MixSource] = Field(default_factory=list, description="[{file or dataset, ratio}]: general rows mixed into training to keep general ability")
    prepared_dir: str = Field("data/prepared", description="where `stylewrap run` writes the validated, deduplicated, split and registered data")


PREFERENCE_METHODS = ("dpo", "orpo", "kto", "simpo")


class PreferenceConfig(Section):
    """Preference tuning on data.pairs_file (chosen = styled, rejected = plain) instead of SFT."""

    method: Literal["dpo", "orpo", "kto", "simpo"] | None = Field(None, description="null: supervised fine-tuning (`train --method`)")
    beta: float | None = Field(None, gt=0, description="how far the model may move from the reference; null: 2.0 for simpo, else 0.1 (on every backend)")
    loss_type: Literal["sigmoid", "hinge", "ipo"] = Field("sigmoid", description="dpo only: the DPO loss")
    sft_weight: float = Field(0.0, ge=0, description="dpo only: weight of an SFT loss on the chosen answers (RPO)")
    simpo_gamma: float = Field(0.5, ge=0, description="simpo only: the target reward margin")
    from_run: str | None = Field(None, description="start from this SFT run's weights (`train --from-run`); it is also the reference")


class TrainConfig(Section):
    backend: str = "llamafactory"
    model: str | None = Field(None, description="base model: local folder or hub id")
    template: str | None = Field(None, description="chat template; derived from the model when unset")
    method: Literal["lora", "qlora", "full"] = "lora"
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int | None = Field(None, ge=1, description="defaults to 2 x lora_rank")
    # 0 like LLaMA-Factory: a dropped copy of every adapted input costs ~40% more activation memory
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target: str = Field("all", description="'all' for every linear layer, or comma-separated names")
    quantization_bit: int | None = Field(None, description="4 or 8 for qlora")
    cutoff_len: int = Field(1024, ge=8)
    per_device_train_batch_size: int | None = Field(None, ge=1, description="None: as many rows as the GPU's free memory holds (4 without a GPU)")
    gradient_accumulation_steps: int | None = Field(None, ge=1, description="None: at least 16k tokens an optimizer step on GPUs (4 without a GPU)")
    learning_rate: float = Field(1e-4, gt=0)
    num_train_epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    warmup_steps: int | None = Field(None, ge=0)
    logging_steps: int = Field(10, ge=1)
    save_steps: int = Field(100, ge=1)
    eval_steps: int | None = Field(None, ge=1)
    save_total_limit: int | None = Field(2, ge=1)
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description="auto: bf16 on a GPU that has it, else fp16; the backend's default without a GPU")
    gradient_checkpointing: bool | None = Field(None, description="None: on a GPU, only when activations would not fit otherwise")
    packing: bool | None = Field(None, description="None: on a GPU, packed wherever the backend can with the attention used")
    group_by_length: bool | None = Field(None, description="None: on a GPU, batches of similar-length rows when not packing")
    attention: Literal["auto", "sdpa", "flash_attn", "varlen", "eager"] = Field("auto", description="auto: flash_attn when the backend env has flash-attn, else varlen (PyTorch's varlen FlashAttention kernel) where the backend offers it, else sdpa, on a GPU")
    liger_kernel: bool | None = Field(None, description="None: on a GPU, when liger-kernel is in the backend env and supports the model")
    deepspeed: str | None = Field(None, description="a DeepSpeed preset (`stylewrap train --help` lists them) or a JSON path")
    max_grad_norm: float = Field(1.0, gt=0)
    auto: bool = Field(True, description="choose the unset speed settings above from the GPU, the model and the data (false: the backend's defaults)")
    gpu_memory_gib: float | None = Field(None, ge=0, description="plan for GPUs with this much free memory instead of asking nvidia-smi (0: no GPU)")
    dataloader_num_workers: int | None = Field(None, ge=0, description="None: 4 on a GPU, else the backend's default")
    nproc_per_node: int = Field(1, ge=1, description="processes (GPUs) per node; >1 launches torchrun")
    nnodes: int = Field(1, ge=1)
    launcher: Literal["local", "slurm"] = Field("local", description="local: train here (torchrun for several processes); slurm: write an sbatch script in the run folder and submit it (the slurm section)")
    seed: int = 42
    loss_on: Literal["all_turns", "last_turn"] = Field("all_turns", description="multi-turn rows: learn every answer, or only the last (earlier turns are context)")
    report_to: Literal["none", "tensorboard", "swanlab", "wandb", "mlflow"] = Field("none", description="experiment tracker the backend logs to; swanlab runs in local (offline) mode, logs under the run folder")
    output_dir: str = "runs"
    extra_args: dict[str, Any] = Field(default_factory=dict, description="passed through to the backend")
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig)
    then: Literal["dpo", "orpo", "kto", "simpo"] | None = Field(None, description="`stylewrap run`: after SFT, this preference tuning on data.pairs_file, from the SFT run")


class SlurmConfig(Section):
    nodes: int = Field(1, ge=1, description="nodes of the job: one srun task each, starting torchrun for its processes")
    gpus_per_node: int = Field(0, ge=0, description="GPUs asked for on each node, one process each (0: CPU processes, train.nproc_per_node of them)")
    partition: str | None = Field(None, description="sbatch --partition; null: the cluster's default")
    time: str | None = Field(None, description="sbatch --time, e.g. 1-00:00:00; null: the partition's limit")
    account: str | None = Field(None, description="sbatch --account")
    cpus_per_task: int | None = Field(None, ge=1, description="sbatch --cpus-per-task (the one task on each node runs all its processes)")
    master_port: int = Field(29500, ge=1, le=65535, description="port of node rank 0's rendezvous")
    sbatch_args: list[str] = Field(default_factory=list, description="more #SBATCH lines, as options, e.g. [--qos=high, --exclusive]")


class ExportConfig(Section):
    output_dir: str | None = Field(None, description="where the merged model goes; default: merged/ in the run directory")
    quantization_bit: int | None = Field(None, description="quantize the merged model to this many bits (calibrates on a CUDA GPU)")
    max_shard_size_gb: int = Field(5, ge=1, description="largest safetensors shard written")
    allow_template_mismatch: bool = Field(False, description="`stylewrap run`'s export stage keeps going when the merged model's chat template differs from training (as `export --allow-template-mismatch`)")


class EvalConfig(Section):
    probes: str = Field("standard", description="`stylewrap run`'s eval stage: built-in probe set (standard, classical, chatglm, translational) or a .txt/.jsonl file")
    max_new_tokens: int = Field(128, ge=1, description="longest answer a variant gives to a probe")


class DeployConfig(Section):
    backend: str | None = Field(None, description="serving backend; default: the run's, else train.backend")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    served_model_name: str | None = Field(None, description="name of the tuned model; default 'default-lora' with an adapter, else the folder name")
    base_served_name: str | None = Field(None, description="name of the base model served beside an adapter; default its folder/hub id's last part, lowercased")
    api_key_env: str | None = Field(None, description="env var whose value the server requires as API key")
    template: str | None = Field(None, description="chat template; default: the run's, else the backend's guess")
    engine: Literal["transformers", "vllm", "sglang", "lmdeploy"] | None = Field(None, description="inference engine of the backend's server; default: transformers")
    batch_size: int | None = Field(None, ge=1, description="requests answered together in one batch where the server batches (ms-swift); default 16, 1 for an unmerged ms-swift adapter")
    batch_window_ms: float = Field(20.0, ge=0, description="ms-swift: a request waits this long for others arriving with it, to share their batch; 0: only what is already queued")
    startup_timeout: float = Field(300.0, gt=0)
    extra_args: dict[str, Any] = Field(default_factory=dict, description="passed to the backend's server as --key value")


class PublishConfig(Section):
    model_repo: str | None = None
    dataset_repo: str | None = None
    private: bool = True
    license: str = "apache-2.0"
    base_model_id: str | None = Field(None, description="hub id that replaces a local base path in adapter configs")
    language: list[str] = Field(default_factory=lambda: ["zh"], description="languages named in the cards' metadata")
    max_retries: int = Field(4, ge=1, description="attempts per hub call on 5xx, 429 and network errors")
    retry_backoff: float = Field(2.0, ge=0, description="seconds before the first retry; doubles each time")


class BackendEnvConfig(Section):
    executable: str | None = Field(None, description="use this program (a path, or a name on PATH) instead of the managed env's")
    venv: str | None = Field(None, description="use this existing virtual environment")


class _BackendsConfig(Section):
    envs_dir: str | None = Field(None, description="default ~/.cache/stylewrap/envs")

    def of(self, name: str) -> BackendEnvConfig:
        """`backends.<name>`; the defaults for a backend registered at run time (no section)."""
        own = self.__dict__.get(name) if name in type(self).model_fields else None
        return own if isinstance(own, BackendEnvConfig) else BackendEnvConfig()


def _backends_config() -> type[_BackendsConfig]:
    """`backends:` with one section per registered backend (`stylewrap.backends.registry`): a
    third-party backend gets its section like the built-ins, and a misspelt name is an unknown key."""
    from stylewrap.backends.registry import backend_names

    sections = {name: (BackendEnvConfig, Field(default_factory=BackendEnvConfig)) for name in backend_names()}
    return create_model("BackendsConfig", __base__=_BackendsConfig, __module__=__name__, **sections)


BackendsConfig = _backends_config()


class StylewrapConfig(Section):
    style: StyleConfig = Field(default_factory=StyleConfig)
    datagen: DatagenConfig = Field(default_factory=DatagenConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    backends: BackendsConfig = Field(default_factory=BackendsConfig)

    # where the config came from; relative paths inside it resolve against this folder
    _root: Path | None = None

    def key_envs(self) -> list[str]:
        """The environment variables this config names as holding a key (values never written anywhere)."""
        return [name for name in (self.datagen.api_key_env, self.deploy.api_key_env) if name]

    def resolve_path(self, value: str | None) -> Path | None:
        if value is None:
            return None
        path = Path(os.path.expanduser(value))
        if not path.is_absolute() and self._root is not None:
            path = self._root / path
        return path


# ---------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.learning_rate=1e-4` -> (['train', 'learning_rate'], 0.0001), values parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE", hint="e.g. --set train.learning_rate=1e-4")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    # YAML reads 1e-4 as a string (no dot); a number is what anyone means there, unless it is quoted
    if isinstance(value, str) and not raw.strip().startswith(("'", '"')):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            pass
    return path, value


def _env_overrides(environ: dict[str, str]) -> list[tuple[list[str], Any, str]]:
    out = []
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        _, value = parse_override(f"x={raw}")
        out.append((path, value, f"${name}"))
    return out


def _set_path(data: dict, path: list[str], value: Any, source: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {'.'.join(path)}: {part} is not a section")
        node = child
    node[path[-1]] = value


# ---------------------------------------------------------------- validation


def _did_you_mean(model: type[BaseModel], path: tuple) -> str | None:
    target: type[BaseModel] | None = model
    for part in path[:-1]:
        field = target.model_fields.get(part) if target else None
        annotation = field.annotation if field else None
        target = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if target is None:
        return None
    matches = difflib.get_close_matches(str(path[-1]), list(target.model_fields), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else f"known keys: {', '.join(target.model_fields)}"


def _location(path: tuple, source: str, lines: dict[tuple, int]) -> Location:
    """The line of the key, else of the nearest section above it that is written in the file."""
    line = None
    for depth in range(len(path), 0, -1):
        line = lines.get(path[:depth])
        if line:
            break
    return Location(source, line, ".".join(path))


def _one_identity_name(config: StylewrapConfig, source: str, lines: dict[tuple, int],
                       override_sources: dict[tuple, str]) -> None:
    """`style.identity.name` is the one name: the persona defaults to it, `{{name}}`/`{{author}}` in
    the system prompt are filled with it, and a place that names the model otherwise is an error."""
    style = config.style
    identity = style.identity
    for field, message in identitynames.contradictions(identity and identity.name, style.persona, style.system_prompt):
        path = ("style", field)
        origin = next((override_sources[path[:d]] for d in range(2, 0, -1) if path[:d] in override_sources), None)
        raise ConfigError(message, location=_location(path, origin, {}) if origin else _location(path, source, lines),
                          hint="name the model once, in style.identity.name; write {{name}} in the system prompt")
    if identity is not None:
        style.persona = identity.name
        if style.system_prompt:
            style.system_prompt = identitynames.fill(style.system_prompt, identity.name, identity.author)


def _raise_validation(
    exc: ValidationError, source: str, lines: dict[tuple, int], override_sources: dict[tuple, str]
) -> None:
    err = exc.errors()[0]
    path = tuple(str(p) for p in err["loc"])
    # an override of the value or of any section above it is what put the bad value there
    for depth in range(len(path), 0, -1):
        if path[:depth] in override_sources:
            source, lines = override_sources[path[:depth]], {}
            break
    where = _location(path, source, lines)
    if err["type"] == "extra_forbidden":
        raise ConfigError("unknown key", location=where, hint=_did_you_mean(StylewrapConfig, path)) from None
    raise ConfigError(err["msg"].lower(), location=where) from None


# A folder holding one of these is a project root: the search for stylewrap.yaml ends there.
PROJECT_MARKERS = (".git", ".hg", ".svn")


def search_folders(start: Path | None = None, home: Path | None = None) -> list[Path]:
    """The folders searched for stylewrap.yaml: `start` and its parents up to the first project root
    (a VCS checkout) or the user's home folder, whichever comes first; a file further up belongs to
    someone or something else and is never trusted by accident."""
    here = (start or Path.cwd()).resolve()
    home = (home or Path.home()).resolve()
    folders = []
    for folder in (here, *here.parents):
        folders.append(folder)
        if folder == home or any((folder / marker).exists() for marker in PROJECT_MARKERS):
            break
    return folders


def find_config(start: Path | None = None, home: Path | None = None) -> Path | None:
    """stylewrap.yaml in `start` or the nearest parent, within the project/home boundary."""
    for folder in search_folders(start, home):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def check_trusted(path: Path) -> None:
    """Refuse a config another user could have written: it names the programs `train` starts and
    the endpoint that receives the API key and the data."""
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(
            f"refusing a config owned by another user (uid {info.st_uid}, you are {os.getuid()})",
            location=Location(path), hint="it could name the programs stylewrap runs; copy it and pass --config",
        )
    if info.st_mode & 0o022:
        raise ConfigError(
            f"refusing a config writable by group or others (mode {stat.filemode(info.st_mode)})",
            location=Location(path), hint=f"chmod go-w {path}",
        )


def _announce(config_path: Path | None, searched: list[Path] | None) -> None:
    if config_path is not None:
        log.info("config: %s", config_path.resolve())
    elif searched:
        log.info("config: none, defaults used (no %s from %s up to %s)", CONFIG_FILENAME, searched[0], searched[-1])


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    environ: dict[str, str] | None = None,
    *,
    search: bool = True,
) -> StylewrapConfig:
    """Load, override and validate. `path=None` searches upward from cwd, else uses defaults."""
    environ = dict(os.environ if environ is None else environ)
    searched = search_folders() if not path and search else None
    config_path = Path(path) if path else (find_config() if search else None)
    data: dict = {}
    lines: dict[tuple, int] = {}
    source = str(config_path) if config_path else "<defaults>"
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigError("config file not found", location=Location(config_path), hint="run `stylewrap init`")
        check_trusted(config_path)
        try:
            text = config_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 ({exc.reason})", location=Location(config_path)) from None
        data, lines = load_yaml_with_lines(text, source)
    _announce(config_path, searched)
    override_sources: dict[tuple, str] = {}
    for path_parts, value, origin in _env_overrides(environ):
        _set_path(data, path_parts, value, origin)
        override_sources[tuple(path_parts)] = origin
    for item in overrides:
        path_parts, value = parse_override(item)
        _set_path(data, path_parts, value, f"--set {item}")
        override_sources[tuple(path_parts)] = f"--set {item}"
    try:
        config = StylewrapConfig.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, source, lines, override_sources)
    _one_identity_name(config, source, lines, override_sources)
    config._root = config_path.parent.resolve() if config_path else Path.cwd()
    return config


def config_as_yaml(config: StylewrapConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------- scaffold

SECTION_HELP = {
    "style": "the chat style to teach: a built-in style (`stylewrap styles list`) or your own YAML",
    "datagen": "dataset generation through any OpenAI-compatible API (key from $OPENAI_API_KEY)",
    "data": "the training data; any format `stylewrap data` reads",
    "train": "fine-tuning; backend is one of `stylewrap backend list` (llamafactory, swift)",
    "slurm": "the job `stylewrap train --launcher slurm` submits (train.launcher: slurm; docs/cluster.md)",
    "export": "merging a LoRA adapter into its base model",
    "eval": "measuring the style (`stylewrap run`'s eval stage; `stylewrap eval` takes flags)",
    "deploy": "the OpenAI-compatible server",
    "publish": "ModelScope upload (token from $MODELSCOPE_API_TOKEN)",
    "backends": "where each backend's environment lives",
}


# sections whose presence in stylewrap.yaml turns a `stylewrap run` stage on
OPTIONAL_STAGE_SECTIONS = ("datagen", "deploy", "publish")


# keys with no default a project can train with: `init` marks them, and says so
MUST_SET: dict[str, str] = {
    "data.train_file": "your training data (or uncomment datagen: below to generate it)",
    "train.model": "the base model to fine-tune: a local folder or a hub id, e.g. Qwen/Qwen2.5-0.5B-Instruct",
}


def commented_yaml(model: type[BaseModel] = StylewrapConfig) -> str:
    """Every section and key with its default and description, for `stylewrap init`."""
    out = [
        "# stylewrap.yaml — every key with its default. Delete what you do not change.",
        f"# REQUIRED: set {' and '.join(MUST_SET)} (marked below); then run `stylewrap run`.",
        "# Override any value per run: --set train.learning_rate=1e-4, or env STYLEWRAP_TRAIN__LEARNING_RATE.",
        "# Secrets never go here: stylewrap reads them from the environment.",
        "",
    ]

    def emit(cls: type[BaseModel], indent: int, section: str) -> None:
        pad = "  " * indent
        for name, field in cls.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out.append(f"{pad}{name}:")
                emit(annotation, indent + 1, f"{section}.{name}")
                continue
            default = field.get_default(call_default_factory=True)
            rendered = yaml.safe_dump({name: default}, allow_unicode=True, default_flow_style=True).strip()[1:-1]
            comment = f"  # {field.description}" if field.description else ""
            if f"{section}.{name}" in MUST_SET:
                comment = f"  # REQUIRED: {MUST_SET[f'{section}.{name}']}"
            out.append(f"{pad}{rendered}{comment}")

    for name, field in model.model_fields.items():
        out.append(f"# {SECTION_HELP.get(name, name)}")
        start = len(out)
        out.append(f"{name}:")
        emit(field.annotation, 1, name)
        if name in OPTIONAL_STAGE_SECTIONS:
            # `stylewrap run` runs these stages only when their section is written: uncomment to add one
            out[start:] = [f"# uncomment to add the {name} stage to `stylewrap run`"] + [f"# {line}" for line in out[start:]]
        out.append("")
    return "\n".join(out)
