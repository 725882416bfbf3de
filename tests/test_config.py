from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from hivae.config import ConfigError, load_config, save_config


@dataclass
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    mode: Literal["a", "b"] = "a"
    precision: Literal["no", "bf16"] = "bf16"


@dataclass
class Outer:
    name: str = "x"
    steps: int = 10
    flag: bool = False
    root: Optional[str] = None
    inner: Inner = field(default_factory=Inner)


def test_yaml_to_dataclass_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run\nsteps: 5\ninner:\n  lr: 1\n  betas: [0.5, 0.6]\n")
    config = load_config(path, Outer, ["inner.mode=b", "steps=7", "root=/data"])
    assert config == Outer("run", 7, False, "/data", Inner(1.0, (0.5, 0.6), "b"))
    save_config(config, tmp_path / "back.yaml")
    assert load_config(tmp_path / "back.yaml", Outer) == config


@pytest.mark.parametrize(
    "text,overrides,message",
    [
        ("nmae: run\n", [], "unknown key 'nmae'"),
        ("inner:\n  lrr: 1\n", [], "unknown key 'inner.lrr'"),
        ("steps: ten\n", [], "steps: expected int, got str 'ten'"),
        ("flag: 1\n", [], "flag: expected bool"),
        ("inner:\n  mode: c\n", [], "inner.mode: expected one of"),
        ("inner:\n  betas: [1]\n", [], "inner.betas: expected 2 items"),
        ("", ["inner.lr=fast"], "inner.lr: expected float"),
        ("", ["steps"], "must look like key=value"),
        ("- a\n", [], "top level must be a mapping"),
        ("a: [\n", [], "not valid yaml"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path, Outer, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml", Outer)


def test_yaml_booleans_map_back_to_string_choices(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  precision: no\n")
    assert load_config(path, Outer).inner.precision == "no"
    assert load_config(path, Outer, ["inner.precision=bf16"]).inner.precision == "bf16"
    assert load_config(path, Outer, ["inner.precision=no"]).inner.precision == "no"


def test_float_overrides_in_yaml11_exponent_form(tmp_path):
    """yaml 1.1 reads 3e-4 (no dot) as a string; a float key takes it as the number, an int key does not."""
    path = tmp_path / "c.yaml"
    path.write_text("name: run\nsteps: 1\n")
    assert load_config(path, Outer, ["inner.lr=3e-4", "inner.betas=[9E-1, 1e0]"]).inner == Inner(3e-4, (0.9, 1.0))
    with pytest.raises(ConfigError, match="steps: expected int"):
        load_config(path, Outer, ["steps=1e3"])
