"""Reading the staff-editable YAML files with YAML 1.2 booleans.

PyYAML follows YAML 1.1, where bare ``yes``, ``no``, ``on``, ``off``, ``y`` and ``n`` are booleans:
a word list such as ``[co, yes, no]`` or a key ``no:`` silently turns into True/False. Here only
``true`` and ``false`` are booleans; everything else stays the text the staff member wrote.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class _Yaml12Loader(yaml.SafeLoader):
    pass


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)


def read_yaml(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"))
