"""What a task is, declared once: its name, the spec its config builds, its measures, its primary measure,
how the report groups its runs and the report section that shows them.

Each task is a package ``descbench/tasks/<name>/`` whose ``__init__`` registers its :class:`TaskDefinition`
(light: no Lightning import, so the report can read definitions quickly); its spec (``conf/task/<name>.yaml``
builds it), LightningModule, outputs and report section live beside it. No shared module names a task: the
runner, the entry points and the report look a task up here by the name its results carry.

A task defined outside the package (a plugin, the toy task of the tests) registers its definition the same
way in the module its config's ``_target_`` names; its results record that module (``task_module``), so the
report can import it again.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descbench.core.errors import ConfigError
from descbench.core.measures import Measure, register_measures, resolve


@dataclass(frozen=True)
class TaskDefinition:
    """One task.

    ``spec``: ``"module.Class"`` of what ``conf/task/<name>.yaml`` builds (imported when a job runs);
    ``measures``: the keys its ``results.json`` holds besides options (see :mod:`descbench.core.measures`);
    ``primary``: the measure its comparisons, tables and dashboards lead with; ``grouping``: the option
    that leads the report's group labels and the options that never split a group; ``section``:
    ``"module.function"`` that writes its report section (the report's generic table when None);
    ``dashboard``: ``"module.function"`` that returns its W&B workspace section (none when None);
    ``title``: how the report and the printed table name it.
    """

    name: str
    spec: str
    measures: tuple[Measure, ...]
    primary: str
    title: str = ""
    grouping: tuple[str, frozenset[str]] = ("visual_prompt", frozenset())
    section: str | None = None
    dashboard: str | None = None

    def spec_class(self) -> type:
        """The class the task's config builds."""
        return _resolve(self.spec)

    def report_section(self) -> Callable[..., Any] | None:
        """The function that writes the task's report section, or None for the generic one."""
        return _resolve(self.section) if self.section else None

    def dashboard_section(self) -> Callable[..., Any]:
        """The function that returns the task's ``(title, panels)`` in the W&B workspace."""
        return _resolve(str(self.dashboard))

    @property
    def label(self) -> str:
        return self.title or self.name


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


#: name -> definition, filled by :func:`register_task`
TASKS: dict[str, TaskDefinition] = {}


def register_task(definition: TaskDefinition) -> TaskDefinition:
    """Make ``definition`` known (its measures too); returns it, so a task package writes
    ``DEFINITION = register_task(TaskDefinition(...))``."""
    TASKS[definition.name] = definition
    register_measures(definition.name, definition.measures)
    found = resolve(definition.primary)
    if found is None or found.suffix is not None or found.measure.key not in {m.key for m in definition.measures}:
        raise ValueError(f"task {definition.name!r}: its primary {definition.primary!r} is not one of its measures")
    return definition


def load_tasks() -> dict[str, TaskDefinition]:
    """Every task of the package (each sub-package of ``descbench.tasks`` registers one), and any plugin
    registered already."""
    import descbench.tasks as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.ispkg:
            importlib.import_module(f"{package.__name__}.{module.name}")
    return TASKS


def task_definition(name: str, module: str | None = None) -> TaskDefinition | None:
    """The definition of the task ``name``: a built-in one, or one registered by importing ``module``
    (what a run's ``task_module`` records); None when neither knows it."""
    tasks = load_tasks()
    if name not in tasks and module:
        try:
            importlib.import_module(module)
        except ImportError:
            return None
    return tasks.get(name)


def definitions_of(results: Sequence[Mapping[str, Any]]) -> dict[str, TaskDefinition]:
    """The definitions of the tasks some of ``results`` ran: built-ins in package order, then plugins."""
    found: dict[str, TaskDefinition] = {}
    for result in results:
        name = result.get("task")
        if isinstance(name, str) and name not in found:
            definition = task_definition(name, result.get("task_module"))
            if definition is not None:
                found[name] = definition
    return dict(sorted(found.items(), key=lambda kv: _position(kv[1])))


def _position(definition: TaskDefinition) -> tuple[int, str | int]:
    """Built-in tasks in the order of their packages' names, then plugins in registration order: the same
    order whichever module happened to import a task first."""
    package = f"{__package__}."
    if definition.spec.startswith(package):
        return (0, definition.spec[len(package) :])
    return (1, list(TASKS).index(definition.name))


def definition_of(target: str) -> TaskDefinition:
    """The definition whose spec a task config builds (its ``_target_``), importing the target's module when
    it is not a built-in task (a plugin's module registers its definition)."""
    tasks = load_tasks()
    found = [d for d in tasks.values() if d.spec == target]
    if not found:
        module = target.rpartition(".")[0]
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"task._target_={target!r} cannot be imported ({err})") from None
        found = [d for d in TASKS.values() if d.spec == target]
    if not found:
        raise ConfigError(
            f"task._target_={target!r} is no task: its module registers no TaskDefinition with that spec "
            "(descbench.tasks.definition.register_task)"
        )
    return found[0]
