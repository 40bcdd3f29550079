"""QRC error codes and the sentences a user can act on.

The numbers and their names are QSC's (JSON-RPC 2.0's own codes plus QRC's
2-10); the advice is ours: each says what to change in Designer or
Administrator, because "Unknown component name" alone sends people hunting.
"""

from __future__ import annotations

from qsipctl.errors import EXIT_FAILED, QsipctlError

# code -> QSC's name for it
QRC_ERRORS: dict[int, str] = {
    -32700: "Parse error",
    -32600: "Invalid request",
    -32601: "Method not found",
    -32602: "Invalid params",
    -32603: "Server error",
    2: "Invalid Page Request ID",
    3: "Bad Page Request",
    4: "Missing file",
    5: "Change Groups exhausted",
    6: "Unknown change group",
    7: "Unknown component name",
    8: "Unknown control",
    9: "Illegal mixer channel index",
    10: "Logon required",
}

UNKNOWN_CHANGE_GROUP = 6
UNKNOWN_COMPONENT = 7
UNKNOWN_CONTROL = 8
LOGON_REQUIRED = 10


class QrcError(QsipctlError):
    """Something a core said or did over QRC that ends the conversation."""

    exit_code = EXIT_FAILED


class QrcProtocolError(QrcError):
    """The peer broke the framing or JSON-RPC rules (not a QRC error response)."""


class QrcClosed(QrcError):
    """The core closed the connection (or never accepted it)."""


class QrcRequestError(QrcError):
    """An error response to one of our requests, with a sentence that says what to do."""

    def __init__(self, code: int, message: str, method: str, params: object = None) -> None:
        self.code = code
        self.core_message = message
        self.method = method
        self.params = params
        super().__init__(explain(code, message, method, params))


def _param(params: object, key: str) -> str | None:
    if isinstance(params, dict):
        value = params.get(key)
        if isinstance(value, str):
            return value
    return None


def explain(code: int, message: str, method: str, params: object = None) -> str:
    """One line for a QRC error response: QSC's name, the core's text, the fix."""
    name = QRC_ERRORS.get(code, "error")
    said = f" ({message})" if message and message != name else ""
    component = _param(params, "Name") or _param(_sub(params, "Component"), "Name")
    if code == UNKNOWN_COMPONENT:
        what = f" with Code Name {component!r}" if component else " with that Code Name"
        return (
            f"the design has no component{what} — set Code Name and Script Access "
            f"(External or All) on the Softphone in Designer [QRC {code} {name}{said}]"
        )
    if code == UNKNOWN_CONTROL:
        where = f" of component {component!r}" if component else ""
        return (
            f"the core does not know a control{where} that qsipctl asked for: the design's "
            f"Softphone may be another kind or version [QRC {code} {name}{said}]"
        )
    if code == UNKNOWN_CHANGE_GROUP:
        return (
            f"the core forgot our change group (it drops them when a connection drops) "
            f"[QRC {code} {name}{said}]"
        )
    if code == LOGON_REQUIRED:
        return (
            "the core wants a QRC logon: set qsys_qrc_user/qsys_qrc_password for this core "
            f"(accounts are created in Q-SYS Administrator) [QRC {code} {name}{said}]"
        )
    return f"{method} failed: QRC {code} {name}{said}"


def _sub(params: object, key: str) -> object:
    return params.get(key) if isinstance(params, dict) else None
