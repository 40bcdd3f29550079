from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from qsipctl.rollout.masking import mask_text, one_line
from qsipctl.site.secrets import MASK


def test_known_values_masked_longest_first() -> None:
    text = "user pw=abc123 and abc"
    assert mask_text(text, ["abc", "abc123"]) == "user pw=******** and ********"


def test_credential_shaped_values_masked_without_knowing_them() -> None:
    old = '{\n  "password": "old-pass\\"word",\n  "username": "2001"\n}\n'
    masked = mask_text(old)
    assert "old-pass" not in masked and '"password": "********"' in masked
    assert '"username": "2001"' in masked
    assert mask_text("auth_password = hunter2\n") == "auth_password = ********\n"
    assert mask_text("secret: s3cr3t") == "secret: ********"


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=4, max_size=30))
def test_a_known_secret_never_survives(secret: str) -> None:
    assume(secret not in MASK)  # a piece of the mask itself is not a leak
    text = f"prefix {secret} middle {secret}{secret} end"
    assert secret not in mask_text(text, [secret])


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
        assert mask_text(old) == want, old
    assert mask_text('"username": "2001"') == '"username": "2001"'
