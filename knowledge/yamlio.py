"""Reading the staff-editable YAML files with YAML 1.2 booleans, fast.

PyYAML follows YAML 1.1, where bare ``yes``, ``no``, ``on``, ``off``, ``y`` and ``n`` are booleans:
a word list such as ``[co, yes, no]`` or a key ``no:`` silently turns into True/False. Here only
``true`` and ``false`` are booleans; everything else stays the text the staff member wrote.

Files are parsed by libyaml (PyYAML's C parser, about 40 times faster than the pure-Python one: a
knowledge base of 10,000 entries is 10,000 files) with the same resolvers; a file libyaml rejects is
parsed again by the pure-Python parser, so the error staff read names the line as it always did.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


def _yaml12(loader: type[Any]) -> None:
    """Give ``loader`` the YAML 1.2 booleans (its own resolver lists, the others untouched)."""
    loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )


class _Yaml12Loader(yaml.SafeLoader):
    pass


_yaml12(_Yaml12Loader)
_FastLoader: type[Any] = _Yaml12Loader
if yaml.__with_libyaml__:

    class _CYaml12Loader(yaml.CSafeLoader):
        """libyaml's parser, and a direct construction of plain documents (mappings, lists and
        scalars, no tags of their own, merge keys or recursive aliases): the general constructor,
        built for every case, costs more than parsing. Anything else goes the general way."""

        def construct_document(self, node: yaml.Node) -> Any:
            try:
                return _plain(self, node)
            except (_NotPlain, RecursionError):
                self.constructed_objects = {}
                return super().construct_document(node)

    _yaml12(_CYaml12Loader)
    _FastLoader = _CYaml12Loader


class _NotPlain(Exception):
    pass


_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_SCALARS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "timestamp")}


def _plain(loader: Any, node: yaml.Node) -> Any:
    """What the safe constructor makes of a plain ``node``, built directly; ``_NotPlain`` otherwise."""
    tag = node.tag
    if tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    if tag in _SCALARS and isinstance(node, yaml.ScalarNode):
        return loader.yaml_constructors[tag](loader, node)
    if tag == _SEQ and isinstance(node, yaml.SequenceNode):
        return [_plain(loader, item) for item in node.value]
    if tag == _MAP and isinstance(node, yaml.MappingNode):
        mapping = {}
        for key_node, value_node in node.value:
            if key_node.tag != _STR and key_node.tag not in _SCALARS:
                raise _NotPlain  # a merge key ("<<"), a "=" key, a mapping or list as a key...
            mapping[_plain(loader, key_node)] = _plain(loader, value_node)
        return mapping
    raise _NotPlain


def load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError:
        return yaml.load(text, Loader=_Yaml12Loader)  # raises, with the pure-Python parser's message


def read_yaml(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"))
