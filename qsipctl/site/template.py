"""Ansible-style variable templating of the settings qsipctl reads, with Jinja2.

Real inventories write ``password: "{{ vault_sip_password }}"`` (the vault
variable in ``group_vars/``), ``ansible_host: "{{ inventory_hostname }}.example.net"``
or ``"{{ sip_domain | default('pbx.example.net') }}"``.  Pushing that text
literally would be wrong, so qsipctl renders it as Ansible would: Jinja2
(Ansible's own engine), sandboxed, an undefined name is an error, a template
that is one expression keeps its type (``"{{ 5060 }}"`` is the number 5060),
and names resolve lazily against the host's own variables (templated in turn)
plus ``inventory_hostname``, ``inventory_hostname_short``, ``group_names``,
``groups``, ``inventory_dir`` and ``inventory_file``.  Only qsipctl's settings
are rendered; other variables are kept as written, as ``ansible-inventory``
shows them.  ``!unsafe`` text is never rendered.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from qsipctl.site.profiles import Sourced
from qsipctl.site.vault import UnsafeStr, VaultLocked, VaultStr

if TYPE_CHECKING:
    from jinja2 import Environment

    from qsipctl.site.inventory import HostVars, _Parser

_MARKERS = ("{{", "{%", "{#")
MAX_DEPTH = 32
MAX_TEXT = 65536


class TemplateFailed(str):
    """A setting whose template could not be rendered (already reported): not checked again."""

    __slots__ = ()


class TemplateProblem(ValueError):
    """A template that cannot be rendered; ``str()`` is the reason, ``path`` where inside."""

    path: tuple[str | int, ...] = ()


def has_template(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        # every marker starts with "{": most values are ruled out by one scan
        return (
            "{" in value and not isinstance(value, UnsafeStr) and any(m in value for m in _MARKERS)
        )
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return any(has_template(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(has_template(v, depth + 1) for v in value)
    return False


class InventoryTemplater:
    """Renders a host's qsipctl settings in place (see :func:`render_host`)."""

    def __init__(
        self, inventory_file: str, settings: Iterable[str], locked: Callable[[], bool] = bool
    ) -> None:
        self.inventory_file = os.path.abspath(inventory_file)
        self.settings = frozenset(settings)
        self.locked = locked  # whether a vault file stayed encrypted (validate --no-secrets)

    def __call__(self, host: HostVars, parser: _Parser) -> None:
        targets = [k for k in host.vars if k in self.settings]
        if not any(has_template(host.vars[k].value) for k in targets) and not any(
            has_template(s.value) for s in host.defaults.values()
        ):
            return
        renderer = _Renderer(host, parser, self.inventory_file, self.locked())
        for key in targets:
            self._one(renderer, host, parser, host.vars, key, key)
        for leaf in list(host.defaults):
            self._one(renderer, host, parser, host.defaults, leaf, f"softphone_defaults.{leaf}")

    @staticmethod
    def _one(
        renderer: _Renderer,
        host: HostVars,
        parser: _Parser,
        table: dict[str, Sourced],
        key: str,
        kp_key: str,
    ) -> None:
        src = table[key]
        if not has_template(src.value):
            return
        try:
            value = renderer.top(src.value)
        except TemplateProblem as exc:
            kp = host.var_keypaths.get(kp_key, host.keypath)
            parser.error((*kp, *exc.path), f"host {host.name}: {exc}")
            table[key] = Sourced(TemplateFailed(str(src.value)), src.location, src.origin)
            return
        table[key] = Sourced(value, src.location, src.origin)


class _Renderer:
    def __init__(
        self, host: HostVars, parser: _Parser, inventory_file: str, locked: bool = False
    ) -> None:
        self.host = host
        self.locked = locked
        self.parser = parser
        self.cache: dict[str, Any] = {}
        self.active: list[str] = []
        self.secret_kind: type[str] | None = None
        self.magic = {
            "inventory_hostname": host.name,
            "inventory_hostname_short": host.name.split(".")[0],
            "inventory_file": inventory_file,
            "inventory_dir": os.path.dirname(inventory_file),
        }

    def top(self, value: Any) -> Any:
        self.secret_kind = None
        result = self.value(value, 0)
        if isinstance(result, str) and self.secret_kind is not None:
            return self.secret_kind(result)
        return result

    def value(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise TemplateProblem("variables nest too deeply")
        if isinstance(value, VaultLocked):
            self.secret_kind = VaultLocked
            return value
        if isinstance(value, VaultStr) and self.secret_kind is None:
            self.secret_kind = VaultStr
        if isinstance(value, str):
            return self.render(value) if has_template(value) else value
        if isinstance(value, dict):
            return {k: self._child(k, v, depth) for k, v in value.items()}
        if isinstance(value, list):
            return [self._child(i, v, depth) for i, v in enumerate(value)]
        return value

    def _child(self, key: str | int, value: Any, depth: int) -> Any:
        try:
            return self.value(value, depth + 1)
        except TemplateProblem as exc:
            if not self.active:  # a path inside the setting itself, not inside a variable it uses
                exc.path = (key, *exc.path)
            raise

    def render(self, text: str) -> Any:
        from jinja2 import TemplateError
        from jinja2.exceptions import SecurityError, UndefinedError

        try:
            template, names = _compile(text)
            context = {n: self.lookup(n) for n in names if self.defined(n)}
            return template.render(context)
        except TemplateProblem:
            raise
        except UndefinedError as exc:
            if self.locked:  # most likely a variable of the file that stayed encrypted
                self.secret_kind = VaultLocked
                return VaultLocked(text)
            raise TemplateProblem(f"undefined variable in {_short(text)}: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateProblem(f"template {_short(text)} is not allowed: {exc}") from None
        except TemplateError as exc:
            raise TemplateProblem(f"bad template {_short(text)}: {exc.message}") from None
        except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
            raise TemplateProblem(f"template {_short(text)} fails: {exc}") from None

    def defined(self, name: str) -> bool:
        return name in self.host.raw or name in self.magic or name in ("group_names", "groups")

    def lookup(self, name: str) -> Any:
        if name in self.cache:
            return self.cache[name]
        if name in self.active:
            loop = " -> ".join([*self.active[self.active.index(name) :], name])
            raise TemplateProblem(f"variables refer to each other in a loop: {loop}")
        if name in self.magic:
            result: Any = self.magic[name]
        elif name == "group_names":
            result = sorted(g for g in self.host.groups if g != "all")
        elif name == "groups":
            result = {g: list(hs) for g, hs in self.parser.members().items()}
        else:
            self.active.append(name)
            try:
                result = self.value(self.host.raw[name], 0)
            finally:
                self.active.pop()
        self.cache[name] = result
        return result


def _short(text: str) -> str:
    one = " ".join(text.split())
    return repr(one if len(one) <= 60 else one[:57] + "...")


@functools.lru_cache(maxsize=512)
def _compile(text: str) -> tuple[Any, frozenset[str]]:
    from jinja2 import meta

    env = _environment()
    parsed = env.parse(text)
    names = frozenset(meta.find_undeclared_variables(parsed))
    return env.from_string(parsed), names


def _concat(values: Iterable[Any]) -> Any:
    """One expression keeps its type (as Ansible 2.19), several make a string."""
    it = iter(values)
    head = list(itertools.islice(it, 2))
    if not head:
        return ""
    if len(head) == 1:
        from jinja2 import Undefined

        if isinstance(head[0], Undefined):
            str(head[0])  # StrictUndefined: raises UndefinedError naming the variable
        return head[0]
    return "".join(str(v) for v in itertools.chain(head, it))


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import StrictUndefined
    from jinja2.nativetypes import NativeEnvironment, NativeTemplate
    from jinja2.sandbox import SandboxedEnvironment

    class _Env(NativeEnvironment, SandboxedEnvironment):
        concat = staticmethod(_concat)
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            """``'x' * 10**9`` in an inventory must fail, not eat the machine."""
            from jinja2.exceptions import SecurityError

            sizes = [len(v) for v in (left, right) if isinstance(v, str | list)]
            counts = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
            if operator == "*" and sizes and counts and sizes[0] * max(counts) > MAX_TEXT:
                raise SecurityError(f"the result would be longer than {MAX_TEXT} characters")
            if operator == "**" and counts and abs(right if isinstance(right, int) else 0) > 64:
                raise SecurityError("exponent too large")
            return super().call_binop(context, operator, left, right)

    class _Template(NativeTemplate):
        environment_class = _Env  # NativeTemplate.render takes concat from here

    _Env.template_class = _Template

    env = _Env(undefined=StrictUndefined, autoescape=False)
    env.filters.update(
        {
            "bool": _bool,
            "ternary": lambda v, a, b=None: a if v else b,
            "mandatory": _mandatory,
            "regex_replace": lambda v, p, r="", ignorecase=False: re.sub(
                p, r, str(v), flags=re.I if ignorecase else 0
            ),
            "to_json": _to_json,
        }
    )
    env.globals["lookup"] = _lookup
    return env


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


def _mandatory(value: Any, msg: str | None = None) -> Any:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        raise TemplateProblem(msg or "mandatory variable is not defined")
    return value


def _to_json(value: Any) -> str:
    import json

    return json.dumps(value)


def _lookup(kind: str, *terms: str, **kwargs: Any) -> str:
    """``lookup('env', 'NAME')`` as Ansible (an unset variable is empty); nothing else."""
    if kind != "env":
        raise TemplateProblem(f"lookup({kind!r}) is not supported by qsipctl (only 'env')")
    return ",".join(os.environ.get(t, "") for t in terms)
