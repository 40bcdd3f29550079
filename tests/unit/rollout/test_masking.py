from __future__ import annotations

import json

from hypothesis import assume, given
from hypothesis import strategies as st

from qsipctl.rollout.masking import (
    document_diff,
    mask_document,
    mask_remote,
    mask_shapes,
    one_line,
)
from qsipctl.site.secrets import MASK


def test_credential_shaped_values_masked_without_knowing_them() -> None:
    old = '{\n  "password": "old-pass\\"word",\n  "username": "2001"\n}\n'
    masked = mask_shapes(old)
    assert "old-pass" not in masked and '"password": "********"' in masked
    assert '"username": "2001"' in masked
    assert mask_shapes("auth_password = hunter2\n") == "auth_password = ********\n"
    assert mask_shapes("secret: s3cr3t") == "secret: ********"


def test_remote_text_masked_anywhere_in_the_line() -> None:
    """The agent's words are prefixed: the mask must not be anchored at line start."""
    said = "apply_command exited 4: old password=hunter2 rejected by agent"
    assert mask_remote(said) == "apply_command exited 4: old password=********"
    assert "hunter2" not in mask_remote("ERR [agent] sip_pwd: hunter2\nnext line")
    assert mask_remote("x <password>hunter2</password> y") == f"x <password>{MASK}</password> y"


def test_known_secrets_only_as_tokens_of_their_own() -> None:
    """Replacing a short password's text inside words garbles host names."""
    assert mask_remote("cannot reach core-1234.example:22", ["1234"]) == (
        "cannot reach core-1234.example:22"
    )
    assert mask_remote("echoed 1234 back", ["1234"]) == f"echoed {MASK} back"
    assert mask_remote('auth "1234" refused', ["1234"]) == f'auth "{MASK}" refused'


@given(st.text(alphabet="abcdefghXYZ0123456789-_.", min_size=1, max_size=30))
def test_a_known_secret_standing_alone_never_survives(secret: str) -> None:
    assume(secret not in ("prefix", "middle", "end"))
    text = f"prefix {secret} middle ({secret}) end"
    assert mask_remote(text, [secret]) == f"prefix {MASK} middle ({MASK}) end"


def test_one_line() -> None:
    assert one_line("a\n\n  last line  \n\n") == "last line"
    assert one_line("") == ""
    assert one_line("x" * 300, limit=10) == "xxxxxxx..."


def test_more_credential_shapes_of_old_files() -> None:
    """An old file on a core may hold credentials we never knew, in other syntaxes."""
    cases = {
        'password = "hunter2"': 'password = "********"',
        '"proxy_pass": "Zz9-old"': '"proxy_pass": "********"',
        "ssh_pass: abc-old": "ssh_pass: ********",
        "sip_pwd=abc-old": "sip_pwd=********",
        "<password>abc-old</password>": "<password>********</password>",
        "auth_secret='x y-old'": "auth_secret='********'",
    }
    for old, want in cases.items():
        assert mask_shapes(old) == want, old
    assert mask_shapes('"username": "2001"') == '"username": "2001"'


def _doc(username: str, password: str, host: str = "pbx.example") -> bytes:
    phone = {"username": username, "password": password, "domain": host}
    return (json.dumps({"softphones": [phone]}, indent=2, sort_keys=True) + "\n").encode()


def test_documents_masked_by_field_not_by_text() -> None:
    doc = mask_document(_doc("2001", "2001", host="pbx-2001.example"))
    assert doc.secrets == {"softphones[0].password": "2001"}
    assert '"username": "2001"' in doc.text and "pbx-2001.example" in doc.text
    assert f'"password": "{MASK}"' in doc.text


def test_password_equal_to_the_extension_shows_no_fake_username_change() -> None:
    old, new = _doc("2001", "old-pw"), _doc("2001", "2001")
    diff = document_diff("/c.json", old, new, mask_document(new).text)
    assert "username" not in diff
    assert diff == f"softphones[0].password: {MASK} (changed)\n"


def test_password_only_change_is_named_and_other_changes_diffed() -> None:
    old, new = _doc("2001", "a"), _doc("2002", "b")
    diff = document_diff("/c.json", old, new, mask_document(new).text)
    assert '-      "username": "2001"' in diff and '+      "username": "2002"' in diff
    assert f"softphones[0].password: {MASK} (changed)" in diff
    assert document_diff("/c.json", new, new, mask_document(new).text) == ""


def test_a_foreign_old_file_is_masked_by_shape() -> None:
    new = _doc("2001", "pw")
    diff = document_diff("/c.json", b"sip_password=old-one\n", new, mask_document(new).text)
    assert "old-one" not in diff and "-sip_password=********" in diff
