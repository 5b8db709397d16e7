"""Every option of every config group composes, and every node it builds names an importable target whose
signature takes its options; choices outside their Enum are refused while composing, listing the valid values."""

import subprocess
import sys

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from descbench.shell.checks import check_options
from descbench.shell.config import CONFIG_DIR, compose_config, register_configs
from tests.conftest import ROOT

GROUPS = ("dataset", "backbone", "task", "describe", "describe/backend", "visual_prompt", "trainer", "logger",
          "cache", "paths", "experiment")  # fmt: skip


def group_options() -> list[tuple[str, str]]:
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        found = [(group, name) for group in GROUPS for name in loader.get_group_options(group)]
    GlobalHydra.instance().clear()
    return [(g, n) for g, n in found if not n.startswith("schema_")]


OPTIONS = group_options()


def test_the_groups_hold_every_registered_entry():
    """Visual prompts, sources and backends are selectable by their registered names alone (no YAML file)."""
    from descbench.core.marking.visual_prompts import VISUAL_PROMPTS
    from descbench.descriptions.llm.backends import BACKENDS
    from descbench.descriptions.registry import load_sources
    from descbench.tasks.definition import load_tasks

    names = {g: {n for gg, n in OPTIONS if gg == g} for g in GROUPS}
    registered = {
        "visual_prompt": set(VISUAL_PROMPTS),
        "describe": set(load_sources()),
        "describe/backend": set(BACKENDS),
        "task": set(load_tasks()),
    }
    for group, entries in registered.items():
        assert entries <= names[group], group
        # anything else in the group is a preset file (circle_green: the circle in another colour)
        assert all((CONFIG_DIR / group / f"{n}.yaml").is_file() for n in names[group] - entries), group


@pytest.mark.parametrize("group,name", OPTIONS, ids=[f"{g}={n}" for g, n in OPTIONS])
def test_every_option_composes_and_builds_importable_targets(group, name):
    override = f"{group}={name}" if group != "describe/backend" else f"describe/backend={name}"
    extra = ["describe=llm"] if group == "describe/backend" else []
    cfg = compose_config([*extra, override])
    check_options(cfg)  # every _target_ imports and its signature takes the node's options
    tree = OmegaConf.to_container(cfg, resolve=False)
    targets = [n["_target_"] for n in _built(tree)]
    assert targets, f"{override}: nothing to build"
    for target in targets:
        assert callable(get_object(target)), target
    if group == "task":  # a task spec is cheap to build: its constructor checks its options
        spec = instantiate(cfg.task, _recursive_=False)
        assert callable(spec.prepare)
    if group == "describe/backend":
        backend = instantiate(cfg.describe.backend)
        assert backend.backend_name == name


def _built(node):
    if isinstance(node, dict):
        if "_target_" in node:
            yield node
        for value in node.values():
            yield from _built(value)
    elif isinstance(node, list):
        for value in node:
            yield from _built(value)


@pytest.mark.parametrize(
    "overrides,valid",
    [
        (["task.aggregation=nope"], "score_mean, embed_mean, max"),
        (["task=rec", "task.image_processing=wide"], "squash, pad, crop"),
        (["task=rec", "task.relations=maybe"], "none, rules"),
        (["visual_prompt=blur_outside", "visual_prompt.blur_outside.region=disk"], "box, ellipse"),
        (["describe=waffle", "describe.kind=letters"], "words, chars, both"),
        (["cache.verify=mtime"], "stat, content"),
    ],
)
def test_a_choice_typo_fails_while_composing_and_lists_the_choices(overrides, valid):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(overrides)
    assert f"expected one of [{valid}]" in str(err.value.__cause__ or err.value)


def test_a_choice_typo_on_the_command_line_is_one_error_line():
    out = subprocess.run(
        [sys.executable, "-m", "descbench.eval", "task.aggregation=nope", "--cfg", "job"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and "expected one of [score_mean, embed_mean, max]" in line
