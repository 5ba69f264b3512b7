"""Command-line options made from a settings dataclass's fields (``TrainConfig``).

A field's annotation gives the option's type, its metadata the help text, the check
(run while parsing, so a bad value is argparse's one-line error before any work),
the choices, and how it is spelled; a field without a default is a required option.
The settings class stays the one place that knows its options: a new field is a new
option of every command that adds the class's options, with no edit here.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, fields
from typing import Any, TypeVar

from ..core.errors import UsageError
from ..core.names import check_model
from ..training.config import OneOf, field_type

T = TypeVar("T")
FIELDS_KEY = "_options_of_{}"  # where the parsed arguments remember which fields a parser added


def flag(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
                          defaults: dict[str, Any] | None = None) -> None:
    """Add an option for each field of ``cls`` but those in ``skip``; ``defaults`` replace the class's own."""
    defaults = defaults or {}
    names = []
    for f in fields(cls):
        if f.name in skip:
            continue
        names.append(f.name)
        kind, _ = field_type(cls, f.name)
        test = f.metadata.get("check")
        kw: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help"), "metavar": f.metadata.get("metavar")}
        if f.name in defaults:
            kw["default"] = defaults[f.name]
        elif f.default is not MISSING:
            kw["default"] = f.default
        else:
            kw["required"] = f.default_factory is MISSING
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif kind is dict:
            kw.update(action="append", type=key_value, default=[])
        elif isinstance(test, OneOf):
            kw["choices"] = test.names
        elif f.metadata.get("choices"):  # a settings class below training's (ServeOptions) names its choices
            kw["choices"] = f.metadata["choices"]
        else:
            kw["type"] = parse_as(kind, f.name, test)
        if "const" in f.metadata:
            kw.update(nargs="?", const=f.metadata["const"])
        parser.add_argument(flag(f), **{k: v for k, v in kw.items() if v is not None})
    parser.set_defaults(**{FIELDS_KEY.format(cls.__name__): tuple(names)})


def dataclass_from_options(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """``cls`` from the options ``add_dataclass_options`` added, with ``values`` for the skipped fields."""
    for name in getattr(args, FIELDS_KEY.format(cls.__name__)):
        value = getattr(args, name)
        values[name] = dict(value) if field_type(cls, name)[0] is dict else value
    return cls(**values)


def parse_as(kind: type, name: str, test: Callable[[str, Any], None] | None) -> Callable[[str], Any]:
    """An argparse type: ``text`` read as ``kind``, then put through the field's check."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") \
                from None
        try:
            if test is not None:
                test(name, value)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    return parse


def key_value(text: str) -> tuple[str, Any]:
    """argparse type of a mapping's entries: ``KEY=VALUE``, the value read as YAML (``0.3`` a number)."""
    import yaml  # here: parsing every command line should not pay for yaml

    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: write KEY=VALUE")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML") from None


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (batch sizes, epochs, sizes)."""
    return _whole_number(text, 1)


def at_least_two(text: str) -> int:
    """argparse type: a whole number of at least 2 (a stimulus set's size: one picture has no SD to test)."""
    return _whole_number(text, 2)


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above 0 (time limits; 'nan' and -1 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"give a positive, finite number of seconds, not {text}")
    return value


def model_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated model names, each a registered architecture or ``hub:ORG/NAME``."""
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models:
        raise argparse.ArgumentTypeError("give at least one model")
    try:
        return tuple(check_model(m) for m in models)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
