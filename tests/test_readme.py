"""The README against the project: its table of config groups lists exactly the options under conf/ (a new config
file without its line, or a line naming a removed one, fails here), and every ``mmbench`` command it shows composes
and validates."""

import functools
import re
from pathlib import Path

import pytest

from mmbench.config import compose, validate

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_OPTIONS = {"hydra/launcher": {"basic", "joblib"}}  # Hydra's own and hydra-joblib-launcher's, not files here


@functools.cache
def readme() -> str:
    return (ROOT / "README.md").read_text()


def group_table() -> dict[str, str]:
    """``group -> options cell`` of the README's "Choosing what runs" table."""
    section = readme().split("## Choosing what runs", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w/]+)` \| (.+?) \| .+ \|$", section, flags=re.M)
    assert len(rows) > 10, "the README's config-group table was not found"
    return dict(rows)


def options_on_disk(group: str) -> set[str]:
    return {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}


@pytest.mark.parametrize("group", [g for g in group_table() if g != "hparams_search"])
def test_readme_lists_every_option_of_each_config_group(group):
    listed = set(re.findall(r"`([\w<>]+)`", group_table()[group]))
    assert listed == options_on_disk(group) | PLUGIN_OPTIONS.get(group, set()), group


def test_readme_lists_every_config_group():
    groups = {p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name not in {"hydra", "paths"}}
    assert groups | {"hydra/launcher"} == set(group_table())


def test_readme_names_every_hyperparameter_search():
    cell = group_table()["hparams_search"]
    assert cell.endswith(" and the four k-NN models")
    named = set(cell.split(" for ", 1)[1].removesuffix(" and the four k-NN models").split(", "))
    searches = {p.removesuffix("_optuna") for p in options_on_disk("hparams_search")}
    knn = {s for s in searches if s.startswith("knn_")}
    assert len(knn) == 4 and named == searches - knn


def readme_commands() -> list[str]:
    """The arguments of every ``mmbench`` / ``python -m mmbench`` command in the README's bash blocks."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", readme(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            m = re.search(r"(?:^|\s)(?:python -m )?mmbench ([^#]*)", line)
            if m and not line.lstrip().startswith("#"):
                out.append(m.group(1).strip())
    return out


def as_single_run(args: str) -> list[str]:
    """A multirun's overrides with each swept list (``a,b,c``) cut to its first value; quotes removed."""
    over = [a.strip("'") for a in args.split() if a != "-m"]
    if "-m" in args.split():
        over = [o if "[" in o else re.sub(r"=([^,]+),.*", r"=\1", o) for o in over]
    return over


def test_the_readme_has_its_commands():
    assert len(readme_commands()) >= 30 and "experiment=quick" in readme_commands()


@pytest.mark.parametrize("args", readme_commands())
def test_every_readme_command_composes_and_validates(args, tmp_path, monkeypatch):
    """A typo in a documented command (an option, a key, a value's type) fails here, as it would for the user."""
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    validate(compose(as_single_run(args)))
