"""Where the lab's accounts come from: ``--account`` options or a small YAML file.

Passwords may be ``env:NAME``/``file:PATH`` references, as in inventories, so
that a lab script need not write a password on a command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qsipctl.errors import Diagnostic, InvalidInput, UsageError
from qsipctl.lab.registrar import LabAccount
from qsipctl.site.secrets import Secret
from qsipctl.site.yamlsrc import YamlDoc, load_yaml_file


def accounts_from_specs(specs: Iterable[str]) -> list[LabAccount]:
    """``USER:PASSWORD`` strings from the command line."""
    accounts = []
    for spec in specs:
        user, sep, password = spec.partition(":")
        if not sep or not user or not password:
            raise UsageError(f"--account: expected USER:PASSWORD, got {_masked(spec)!r}")
        value = Secret.parse(password, keypath=f"--account {user}").reveal()
        accounts.append(LabAccount(user, value))
    return accounts


def _masked(spec: str) -> str:
    user, sep, _ = spec.partition(":")
    return f"{user}:********" if sep else spec


def accounts_from_file(path: Path) -> list[LabAccount]:
    """``accounts: {USER: PASSWORD, ...}``; every problem reported with file:line."""
    doc = load_yaml_file(path)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), dict):
        raise InvalidInput(
            [doc.diag(("accounts",), "expected a mapping 'accounts: {USER: PASSWORD}'")]
        )
    problems: list[Diagnostic] = []
    accounts = []
    for user, value in data["accounts"].items():
        account = _account(doc, str(user), value, path.parent, problems)
        if account is not None:
            accounts.append(account)
    if problems:
        raise InvalidInput(problems)
    return accounts


def _account(
    doc: YamlDoc, user: str, value: Any, base: Path, problems: list[Diagnostic]
) -> LabAccount | None:
    keypath = ("accounts", user)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        problems.append(doc.diag(keypath, "password must be a non-empty string"))
        return None
    secret = Secret.parse(str(value), doc.where(keypath), f"accounts.{user}", base)
    why = secret.check()
    if why is not None:
        problems.append(doc.diag(keypath, why))
        return None
    return LabAccount(user, secret.reveal())
