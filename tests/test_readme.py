"""The README's table of config groups lists exactly the options under conf/: a new config file without its
line in the README (or a README line naming a removed one) fails here."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_OPTIONS = {"hydra/launcher": {"basic", "joblib"}}  # Hydra's own and hydra-joblib-launcher's, not files here


def group_table() -> dict[str, str]:
    """``group -> options cell`` of the README's "Choosing what runs" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Choosing what runs", 1)[1].split("\n## ", 1)[0]
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
