"""Styles: data in `templates/styles/*.yaml`, or a user's own YAML of the same shape. (Training
recipes, `--preset`, are another thing: `templates/presets/`, read by `backends/train.py`.)

A style says what the style is (guide, marker phrases, few-shot examples) and what a rewrite
must keep (rules). The stage prompts live in `templates/datagen/prompts.yaml`; a style may
override any of them under `prompts:`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from pathlib import Path

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stylewrap.yamlfile import load_yaml_with_lines
from stylewrap.errors import ConfigError, InputError, Location

PROMPT_NAMES = ("topics", "dialogues", "stylize_system")


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1)
    plain: str = Field(min_length=1, description="the answer without the style")
    styled: str = Field(min_length=1, description="the same answer in the style")


class Style(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = Field(min_length=1)
    description: str = ""
    domain: str = Field("日常聊天", description="what the conversations are about")
    system_prompt: str | None = None
    style_guide: str = Field(min_length=1)
    markers: list[str] = Field(min_length=1)
    rules: list[str] = Field(min_length=1)
    examples: list[Example] = Field(min_length=1)
    prompts: dict[str, str] = Field(default_factory=dict)
    # what `eval`/`compare` ask by default: a built-in probe set (templates/probes) or a file
    probes: str = "standard"

    @field_validator("prompts")
    @classmethod
    def _known_prompts(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PROMPT_NAMES))
        if unknown:
            raise ValueError(f"unknown prompt {unknown[0]!r}; known: {', '.join(PROMPT_NAMES)}")
        return value

    def prompt_sources(self) -> dict[str, str]:
        return {**_default_prompts(), **self.prompts}

    def prompts_hash(self) -> str:
        """Changes whenever anything that shapes a request changes."""
        # the key stays "preset": renaming it would change every hash and stop resumes of earlier runs
        # (`probes` shapes no datagen request: left out, so adding it kept every earlier hash)
        payload = {"preset": self.model_dump(mode="json", exclude={"probes"}), "prompts": self.prompt_sources()}
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]

    def render(self, prompt: str, **values) -> str:
        template = _compiled(self.prompt_sources()[prompt])
        return template.render(
            title=self.title, domain=self.domain, style_guide=self.style_guide,
            markers=self.markers, rules=self.rules, **values,
        ).strip()


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def _templates() -> resources.abc.Traversable:
    return resources.files("stylewrap.templates")


@functools.lru_cache(maxsize=None)
def _compiled(source: str) -> jinja2.Template:
    # the dialogues prompt is rendered once per request: compile each template once per process
    return _ENV.from_string(source)


@functools.lru_cache(maxsize=1)
def _prompt_file() -> dict[str, str]:
    return yaml.safe_load(_templates().joinpath("datagen", "prompts.yaml").read_text(encoding="utf-8"))


def _default_prompts() -> dict[str, str]:
    return dict(_prompt_file())


def builtin_styles() -> dict[str, str]:
    """name -> YAML text of every style shipped with stylewrap."""
    folder = _templates().joinpath("styles")
    return {
        entry.name.rsplit(".", 1)[0]: entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith((".yaml", ".yml"))
    }


def parse_style(text: str, source: str) -> Style:
    data, lines = load_yaml_with_lines(text, source)
    try:
        style = Style.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = tuple(str(p) for p in err["loc"])
        line = next((lines[path[:depth]] for depth in range(len(path), 0, -1) if path[:depth] in lines), None)
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].lower()
        raise ConfigError(message, location=Location(source, line, ".".join(path))) from None
    for prompt in style.prompts:
        try:
            _ENV.parse(style.prompts[prompt])
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template error: {exc.message}", location=Location(source, lines.get(("prompts", prompt)), f"prompts.{prompt}")) from None
    return style


def load_style(name_or_path: str) -> Style:
    """A built-in style by name, or a style YAML by path."""
    builtins = builtin_styles()
    if name_or_path in builtins:
        return parse_style(builtins[name_or_path], f"<style {name_or_path}>")
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError("style file not found", location=Location(path))
        return parse_style(path.read_text(encoding="utf-8"), str(path))
    raise InputError(
        f"unknown style {name_or_path!r}",
        hint=f"built-in: {', '.join(builtins)}; or pass a path to a style YAML",
    )


def style_summaries() -> list[tuple[str, str, str]]:
    """(name, title, description) of every built-in style."""
    out = []
    for name in builtin_styles():
        style = load_style(name)
        out.append((style.name, style.title, style.description))
    return out


def describe_style(name_or_path: str, *, with_prompts: bool = False) -> str:
    """The style as YAML (validated), optionally followed by the stylize prompt it renders."""
    style = load_style(name_or_path)
    text = yaml.safe_dump(style.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True, width=1000)
    text += f"# prompts sha256: {style.prompts_hash()}\n"
    if with_prompts:
        text += "\n# stylize system prompt\n" + style.render("stylize_system") + "\n"
    return text
