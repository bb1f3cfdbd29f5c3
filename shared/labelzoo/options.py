"""Declared options: every environment variable a backend reads, with its type, default, bounds and doc.

A backend declares its options once, on its class::

    class Yolo(Backend):
        options = Options(
            Option("YOLO_BATCH", int, 8, low=1, doc="images per forward pass"),
            Option("YOLO_IMGSZ", int, None, low=1, doc="inference size", default_doc="the model's"),
        )

The core reads and checks them from the settings' environment snapshot when the backend is constructed,
which the server does at start-up: a bad value stops the server with a message naming the variable, the
value and what is allowed (an :class:`OptionError`). In the backend's methods ``self.options`` holds the
values, read-only, one attribute per option named like the variable in lower case
(``self.options.yolo_batch``); on the class, ``Yolo.options`` stays the declarations, from which the
settings tables of the docs are generated.

An option declared with ``project="beam_size"`` may be overridden per project through Label Studio's
*extra params*: :meth:`Options.project_overrides` reads and checks those values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from labelzoo.errors import LabelzooError, RequestError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TYPES = (str, int, float, bool, Path)
_VALUES_KEY = "_option_values"  # where a backend instance keeps its values (see Options.__get__)


class OptionError(LabelzooError, ValueError):
    """A setting has a value that cannot work; the message names the setting, the value and what is allowed."""

    code = "invalid_option"


class _Invalid(Exception):
    """Raised while converting a value: ``reason`` completes ``NAME='value' ...``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Option:
    """One environment variable: how to read it, its default, and one line for the docs.

    ``type`` is ``str``, ``int``, ``float``, ``bool`` or ``Path``; with ``many=True`` the value is a tuple of
    such items (comma-separated in the environment, a list in extra params). ``low``/``high`` bound numbers
    inclusively and ``above`` exclusively; ``choices`` restricts text (compared case-insensitively, the declared
    spelling is the value). ``check`` takes the converted value and returns it, possibly normalised, or raises
    ``ValueError`` whose text completes ``NAME='value' ...`` (e.g. ``"is not a language Whisper knows"``).
    ``allowed`` replaces the generated "what is allowed" in messages; ``default_doc`` describes a default that
    the backend computes (``default=None``), e.g. ``"$MODEL_DIR/weights"``. ``project`` names the key of a
    project's extra params that overrides the variable for that project.
    """

    name: str
    type: type = str
    default: Any = None
    doc: str = ""
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: Sequence[str] = ()
    many: bool = False
    check: Callable[[Any], Any] | None = None
    allowed: str | None = None
    default_doc: str | None = None
    project: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isupper() or not self.name.replace("_", "").isalnum():
            raise ValueError(f"option name {self.name!r} must be an environment variable name such as YOLO_BATCH")
        if self.type not in _TYPES:
            raise TypeError(f"{self.name}: type must be one of str, int, float, bool or Path, not {self.type!r}")
        if self.choices and self.type is not str:
            raise TypeError(f"{self.name}: choices need type=str")
        if (self.low, self.high, self.above) != (None, None, None) and self.type not in (int, float):
            raise TypeError(f"{self.name}: bounds need type=int or type=float")

    @property
    def attr(self) -> str:
        """The attribute of the values object: ``YOLO_BATCH`` → ``yolo_batch``."""
        return self.name.lower()

    def read(self, env: Mapping[str, str]) -> Any:
        """The value from an environment snapshot (empty counts as unset), else the default."""
        raw = env.get(self.name)
        if raw is None or not raw.strip():
            if self.many and isinstance(self.default, str):  # "a,b" as a default means what it means in the env
                return self.convert(self.default, self.name)
            return self.default
        return self.convert(raw, self.name)

    def convert(self, raw: Any, where: str) -> Any:
        """``raw`` (text from the environment, or a JSON value) as this option's value; ``where`` names it
        in the :class:`OptionError`."""
        try:
            if self.many:
                items = raw if isinstance(raw, list | tuple) else [p.strip() for p in str(raw).split(",") if p.strip()]
                if not items:
                    raise _Invalid(f"must be {self.describe()}")
                value: Any = tuple(self._one(item) for item in items)
            else:
                value = self._one(raw)
            if self.check is not None:
                try:
                    value = self.check(value)
                except ValueError as exc:
                    raise _Invalid(str(exc)) from None
        except _Invalid as exc:
            raise OptionError(f"{where}={raw!r} {exc.reason}") from None
        return value

    def describe(self) -> str:
        """What is allowed, in words: ``"an integer >= 1"``, ``"'transcribe' or 'translate'"``…"""
        if self.allowed:
            return self.allowed
        if self.choices:
            quoted = [repr(c) for c in self.choices]
            what = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        else:
            what = {int: "an integer", float: "a number", bool: "true or false", Path: "a path"}.get(self.type, "text")
        if self.low is not None and self.high is not None:
            what += f" between {_num(self.low)} and {_num(self.high)}"
        elif self.low is not None:
            what += f" >= {_num(self.low)}"
        elif self.high is not None:
            what += f" <= {_num(self.high)}"
        if self.above is not None:
            what += f" > {_num(self.above)}"
        return f"a comma-separated list of {what}" if self.many else what

    def _one(self, raw: Any) -> Any:
        text = raw.strip() if isinstance(raw, str) else None
        if self.type is bool:
            return self._boolean(raw, text)
        if self.type in (int, float):
            return self._bounded(self._number(raw, text))
        if text is None:
            raise _Invalid(f"must be {self.describe()}")
        if self.type is Path:
            return Path(text).expanduser()
        if self.choices:
            for choice in self.choices:
                if choice.lower() == text.lower():
                    return choice
            raise _Invalid(f"must be {self.describe()}")
        return raw  # as given: a password may end in a space

    def _boolean(self, raw: Any, text: str | None) -> bool:
        if isinstance(raw, bool):
            return raw
        if text is not None and text.lower() in _TRUE:
            return True
        if text is not None and text.lower() in _FALSE:
            return False
        raise _Invalid(f"must be {self.allowed}" if self.allowed else "is not a boolean: use true or false")

    def _number(self, raw: Any, text: str | None) -> float:
        kind = "an integer" if self.type is int else "a number"
        not_one = f"must be {self.allowed}" if self.allowed else f"is not {kind}"
        if isinstance(raw, bool) or (text is None and not isinstance(raw, int | float)):
            raise _Invalid(not_one)
        try:
            number = self.type(text) if text is not None else raw
        except ValueError:
            raise _Invalid(not_one) from None
        if self.type is int and not isinstance(number, int):
            raise _Invalid(not_one)  # a JSON 3.5 where a whole number is wanted
        return float(number) if self.type is float else number

    def _bounded(self, number: float) -> float:
        # written as "not (inside)" so that NaN, which compares false with everything, is out of bounds
        inside = (
            (self.low is None or number >= self.low)
            and (self.high is None or number <= self.high)
            and (self.above is None or number > self.above)
        )
        if not inside:
            raise _Invalid(f"must be {self.describe()}")
        return number


def _num(value: float) -> str:
    return f"{value:g}"


class OptionValues:
    """The values of declared options, read-only: ``values.yolo_batch`` for ``YOLO_BATCH``."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, attr: str) -> Any:
        try:
            return self._values[attr]
        except KeyError:
            known = ", ".join(sorted(self._values)) or "none"
            raise AttributeError(f"no option {attr!r} is declared (declared: {known})") from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"options are read-only: cannot set {attr!r}")

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return (OptionValues, (self._values,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OptionValues) and other._values == self._values

    def __repr__(self) -> str:
        return "OptionValues(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


class Options:
    """A set of declared options.

    On a :class:`~labelzoo.backend.Backend` subclass it is the ``options`` class attribute: read on the class
    it gives these declarations; read on an instance, the instance's :class:`OptionValues`, which
    ``Backend.__init__`` sets from the settings.
    """

    def __init__(self, *declared: Option) -> None:
        for key in ("name", "project"):
            seen = [getattr(option, key) for option in declared if getattr(option, key) is not None]
            duplicates = sorted({k for k in seen if seen.count(k) > 1})
            if duplicates:
                raise ValueError(f"options declared twice ({key}): {', '.join(duplicates)}")
        self.declared: tuple[Option, ...] = declared

    def __iter__(self) -> Iterator[Option]:
        return iter(self.declared)

    def __len__(self) -> int:
        return len(self.declared)

    def __repr__(self) -> str:
        return f"Options({', '.join(o.name for o in self.declared)})"

    def read(self, env: Mapping[str, str]) -> OptionValues:
        """Every declared option from an environment snapshot; the first bad one raises :class:`OptionError`."""
        return OptionValues({option.attr: option.read(env) for option in self.declared})

    def project_overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The values a project's extra params set, by project key (``{"beam_size": 3}``); keys that override
        no option are ignored, as is a ``null``. A bad value raises :class:`~labelzoo.errors.RequestError`, so the
        project's tasks fail with a message naming ``extra_params.<key>``."""
        found: dict[str, Any] = {}
        for option in self.declared:
            if option.project is None or params.get(option.project) is None:
                continue
            try:
                found[option.project] = option.convert(params[option.project], f"extra_params.{option.project}")
            except OptionError as exc:
                raise RequestError(exc.message) from None
        return found

    @overload
    def __get__(self, instance: None, owner: type) -> Options: ...
    @overload
    def __get__(self, instance: object, owner: type) -> OptionValues: ...
    def __get__(self, instance: object | None, owner: type) -> Options | OptionValues:
        if instance is None:
            return self
        try:
            return instance.__dict__[_VALUES_KEY]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(
                f"{type(instance).__name__}.options are read in Backend.__init__: call super().__init__() first"
            ) from None

    def __set__(self, instance: object, values: OptionValues) -> None:
        instance.__dict__[_VALUES_KEY] = values
