"""Send a planned publish to ModelScope with its SDK (`HubApi.create_repo`, `upload_folder`),
imported only when something is really uploaded.

Neither backend does this well: LLaMA-Factory cannot push to ModelScope, and `swift export
--push_to_hub` breaks on modelscope 1.40 and needs git-lfs. Steps: plan (`stylewrap.publish.plan`),
scan every byte that would leave the machine (`stylewrap.publish.scan`), then create the repo
PRIVATE unless asked otherwise and verify it, and upload the staged folder in one commit. The SDK's
`upload_folder` would create a missing repo as public, so the repo always exists before it runs.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from stylewrap.config import PublishConfig
from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_bytes
from stylewrap.publish.card import PUBLIC_SITE
from stylewrap.publish.plan import UploadPlan, check_repo_id, plan_dataset, plan_model
from stylewrap.publish.scan import scan_for_secrets
from stylewrap.rundir import RunInfo
from stylewrap.secrets import get_secret, redact

TOKEN_ENV = "MODELSCOPE_API_TOKEN"
ENDPOINT_ENV = "MODELSCOPE_ENDPOINT"

Report = Callable[[str], None]


@dataclass
class PublishResult:
    plan: UploadPlan
    dry_run: bool
    url: str | None = None
    created: bool = False
    visibility: str | None = None
    notes: list[str] = field(default_factory=list)


def _hub_errors():
    from modelscope_hub import errors

    return errors


def _retrying(action: str, call: Callable[[], Any], config: PublishConfig, report: Report,
              sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run a hub call, retrying 5xx, 429 and network failures with exponential backoff and jitter."""
    errors = _hub_errors()
    transient = (errors.ServerError, errors.RateLimitError, errors.NetworkError)
    attempt = 1
    while True:
        try:
            return call()
        except transient as exc:
            if attempt >= config.max_retries:
                raise RunFailed(f"{action} failed after {attempt} attempts: {_describe(exc)}",
                                hint="the hub may be down; run the same command again later") from None
            delay = config.retry_backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            report(f"{action}: {_describe(exc)}; retry {attempt}/{config.max_retries - 1} in {delay:.1f}s")
            sleep(delay)
            attempt += 1


def _describe(exc: BaseException) -> str:
    return redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _translate(exc: BaseException, plan: UploadPlan, details: Iterable[str] = ()) -> Exception:
    """A hub failure as a one-line stylewrap error that says what to do. `details` are the per-batch
    errors an upload reported: the SDK's final "N files failed" error does not carry its cause."""
    errors = _hub_errors()
    details = [redact(d) for d in details]
    said = " ".join([str(exc), *details])
    if isinstance(exc, errors.AuthenticationError) or "[E3001]" in said:
        return InputError(f"ModelScope rejected the token: {_describe(exc)}",
                          hint=f"set {TOKEN_ENV} to a valid token with write permission "
                               "(https://modelscope.cn/my/myaccesstoken)")
    if isinstance(exc, errors.PermissionDeniedError) or "[E3002]" in said:
        return InputError(f"no permission to write to {plan.repo_type} {plan.repo_id}",
                          hint="the owner must be you or an organization you may publish to, "
                               "with a token that has write permission")
    if isinstance(exc, errors.QuotaExceededError):
        return RunFailed(f"ModelScope quota exceeded: {_describe(exc)}")
    cause = f" (first error: {details[0]})" if details else ""
    return RunFailed(f"ModelScope: {_describe(exc)}{cause}")


def _api(token: str | None, endpoint: str | None):
    from modelscope.hub.api import HubApi

    return HubApi(endpoint=endpoint, token=token)


def _login_token() -> str | None:
    """The token `modelscope login` stored, for when none is in the environment."""
    from modelscope_hub.config import HubConfig

    return HubConfig().token or None


class _UploadWatch:
    """The SDK's upload progress callback: reports progress, keeps each failed batch's error."""

    def __init__(self, report: Report):
        self.report = report
        self.errors: list[str] = []

    def __call__(self, event: dict) -> None:
        if event.get("error"):
            self.errors.append(str(event["error"]))
        self.report(f"sent {event['uploaded_bytes']}/{event['total_bytes']} bytes, "
                    f"committed {event['committed_files']}/{event['total_files']} files")


def _is_private(info: Any) -> bool:
    from modelscope_hub.constants import Visibility

    return info.visibility == Visibility.PRIVATE or info.private is True


def _ensure_repo(api: Any, plan: UploadPlan, config: PublishConfig, report: Report) -> tuple[bool, bool]:
    """Create the repo (private unless asked) or reuse an existing one; returns (created, is_private)."""
    errors = _hub_errors()

    def exists() -> bool:
        return api.repo_exists(plan.repo_id, repo_type=plan.repo_type, re_raise=True)

    created = False
    if not _retrying("looking up the repo", exists, config, report):
        report(f"creating {'private' if plan.private else 'public'} {plan.repo_type} repo {plan.repo_id}")

        def create() -> None:
            api.create_repo(plan.repo_id, repo_type=plan.repo_type,
                            visibility="private" if plan.private else "public", license=plan.license)

        try:
            _retrying("creating the repo", create, config, report)
            created = True
        except errors.AlreadyExistsError:
            # a retried create whose first attempt went through answers "exists": then it is ours
            if not _retrying("looking up the repo", exists, config, report):
                raise InputError(
                    f"the name {plan.repo_id} is taken by a {plan.repo_type} you cannot see",
                    location=Location(field="--repo"), hint="choose another name or owner",
                ) from None
            created = True
    info = _retrying("reading the repo", lambda: api.get_repo(plan.repo_id, plan.repo_type), config, report)
    private = _is_private(info)
    if created and plan.private and not private:
        raise RunFailed(f"{plan.repo_id} was created public although private was asked; nothing was uploaded",
                        hint="make it private on the website, then run again")
    return created, private


def _stage(plan: UploadPlan, folder: Path) -> None:
    """The upload tree: generated files written, local files linked (no copy of big weights)."""
    for planned in plan.files:
        target = folder / planned.path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        if planned.content is not None:
            atomic_write_bytes(target, planned.content)
        else:
            os.symlink(planned.source.resolve(), target)


def _record_in_run(plan: UploadPlan, url: str) -> None:
    if plan.run_dir is None:
        return
    run = RunInfo.load(plan.run_dir)
    run.extra.setdefault("published", []).append({
        "repo": plan.repo_id, "url": url, "private": plan.private,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    run.save(plan.run_dir)


def upload(plan: UploadPlan, config: PublishConfig, *, report: Report = lambda _msg: None) -> PublishResult:
    """Create or reuse the repo, then push the plan's files in one commit."""
    token = get_secret(TOKEN_ENV) or _login_token()
    endpoint = os.environ.get(ENDPOINT_ENV) or None
    scan_for_secrets(plan, extra_secrets=_known_secrets(plan, token))
    errors = _hub_errors()
    api = _api(token, endpoint)
    watch = _UploadWatch(report)
    try:
        try:
            user = _retrying("checking the token", api.whoami, config, report)
        except errors.AuthenticationError as exc:
            raise InputError(
                f"no valid ModelScope token ({_describe(exc)})",
                hint=f"export {TOKEN_ENV}=... (https://modelscope.cn/my/myaccesstoken) or run `modelscope login`",
            ) from None
        report(f"signed in as {user.username}")
        created, private = _ensure_repo(api, plan, config, report)
        with tempfile.TemporaryDirectory(prefix="stylewrap-publish-") as staging:
            _stage(plan, Path(staging))
            report(f"uploading {len(plan.files)} files ({plan.total_size} bytes) to {plan.repo_id}")
            _retrying("uploading", lambda: api.upload_folder(
                repo_id=plan.repo_id, folder_path=staging, repo_type=plan.repo_type,
                commit_message=plan.commit_message, use_cache=False, disable_tqdm=True,
                progress_callback=watch,
            ), config, report)
    except errors.HubError as exc:
        raise _translate(exc, plan, watch.errors) from None
    url = f"{(endpoint or PUBLIC_SITE).rstrip('/')}/{plan.repo_type}s/{plan.repo_id}"
    _record_in_run(plan, url)
    if plan.repo_type == "dataset":
        from stylewrap.publish.ledger import record_published

        record_published(plan.repo_id, [f.source for f in plan.files if f.source is not None])
    notes = []
    if not created and private != plan.private:
        notes.append(f"the repo already existed and stays {'private' if private else 'public'}; "
                     "change its visibility on the website")
    return PublishResult(plan=plan, dry_run=False, url=url, created=created,
                         visibility="private" if private else "public", notes=notes)


# ---------------------------------------------------------------- entry points (one per CLI command)


def publish_model(source: Path, config: PublishConfig, *, repo_id: str | None = None, dry_run: bool = False,
                  report: Report = lambda _msg: None, key_envs: Iterable[str] = (), **options: Any) -> PublishResult:
    """`key_envs`: variables configured to hold a key (datagen.api_key_env, ...): never uploaded."""
    allow_mismatch = options.pop("allow_template_mismatch", False)
    if not dry_run and (Path(source) / "run.json").is_file():
        report("checking the chat template on every path")
        for line in check_run_template(Path(source), allow=allow_mismatch):
            report(line)
    plan = plan_model(source, check_repo_id(repo_id or config.model_repo, "model"), config,
                      endpoint=os.environ.get(ENDPOINT_ENV), **options)
    plan.key_envs += list(key_envs)
    return _finish(plan, config, dry_run, report)


def check_run_template(run_dir: Path, *, allow: bool) -> list[str]:
    """A run is published only when its training, merged and Ollama templates agree (`templatecheck`)."""
    from stylewrap.backends import ollama, templatecheck
    from stylewrap.backends.base import get_backend
    from stylewrap.backends.modelinfo import model_family
    from stylewrap.rundir import RunInfo, resolve

    info = RunInfo.load(run_dir)
    modelfile = run_dir / ollama.OLLAMA_DIR / ollama.MODELFILE
    result = templatecheck.check_run(
        run_dir, get_backend(info.backend), base_model=info.base_model, template=info.template,
        model_type=model_family(info.base_model).get("model_type"), system=info.hyperparameters.get("system"),
        merged_dir=resolve(run_dir, info.merged_dir), modelfile=modelfile if modelfile.is_file() else None)
    templatecheck.require_consistent(result, allow=allow, action="publish")
    return result.lines()


def publish_dataset(source: Path, config: PublishConfig, *, repo_id: str | None = None, dry_run: bool = False,
                    report: Report = lambda _msg: None, key_envs: Iterable[str] = (), **options: Any) -> PublishResult:
    plan = plan_dataset(source, check_repo_id(repo_id or config.dataset_repo, "dataset"), config,
                        endpoint=os.environ.get(ENDPOINT_ENV), **options)
    plan.key_envs += list(key_envs)
    return _finish(plan, config, dry_run, report)


def _known_secrets(plan: UploadPlan, token: str | None) -> list[str]:
    """The hub token and the value of every variable configured to hold a key."""
    return [value for value in [token, *(get_secret(name) for name in plan.key_envs)] if value]


def _finish(plan: UploadPlan, config: PublishConfig, dry_run: bool, report: Report) -> PublishResult:
    if dry_run:
        scan_for_secrets(plan, extra_secrets=_known_secrets(plan, get_secret(TOKEN_ENV)))
        return PublishResult(plan=plan, dry_run=True, visibility="private" if plan.private else "public")
    return upload(plan, config, report=report)
