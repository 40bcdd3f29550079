"""No input file may make the loader raise anything but InvalidInput.

Two generators: raw text (YAML syntax, tabs, odd bytes) and well-formed YAML
built from the words an inventory uses, so the deeper layers (inventory
shape, precedence, profiles, softphone rules) see every kind of wrong type.
"""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsipctl.errors import InvalidInput
from qsipctl.site.load import check_site
from qsipctl.site.yamlsrc import load_yaml_text

KEYS = [
    "all",
    "vars",
    "children",
    "hosts",
    "core1",
    "core-[1:3]",
    "grp",
    "softphones",
    "softphone_defaults",
    "profile",
    "generic",
    "freepbx",
    "username",
    "password",
    "registrar",
    "qsys_model",
    "ansible_host",
    "ansible_port",
    "dtmf",
    "mode",
    "codecs",
    "stun",
    "server",
    "sip_port",
    "transport",
    "name",
    "qsipctl_connector",
    "qsipctl_local_dir",
    "extends",
    "tls",
    "verify",
    "ansible_group_priority",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.sampled_from(
        [
            "Core 110f",
            "Core Nano",
            "192.0.2.1",
            "2001:db8::1",
            "pbx:5060",
            "env:NOPE_X",
            "file:missing.txt",
            "inband",
            "PCMU",
            "G.729",
            "local",
            "tls",
            "generic",
            "",
            "10.0.0.256",
            "~",
            "[1:2]",
            "sip:x",
            "file:",
            "env:",
        ]
    ),
    st.text(max_size=8),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_raw_text_only_raises_invalid_input(text):
    try:
        load_yaml_text(text, "x.yml")
    except InvalidInput as exc:
        assert exc.lines() and all(line.startswith("x.yml") for line in exc.lines())
        assert all("\n" not in d.format() for d in exc.diagnostics)


@given(st.dictionaries(st.sampled_from(KEYS), TREES, max_size=4))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_structured_documents_never_raise(tmp_path_factory, data):
    root: Path = tmp_path_factory.mktemp("site")
    path = root / "site.yml"
    path.write_text(yaml.safe_dump({"all": data}, allow_unicode=True))
    site, diags = check_site(path)
    assert (site is None) == any(d.severity == "error" for d in diags)
    for d in diags:
        assert d.format()


@given(st.lists(st.dictionaries(st.sampled_from(KEYS), TREES, max_size=6), max_size=3), TREES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_softphone_entries_never_raise(tmp_path_factory, phones, defaults):
    root: Path = tmp_path_factory.mktemp("site")
    doc = {
        "all": {
            "vars": {"qsys_model": "Core 110f", "softphone_defaults": defaults},
            "hosts": {"c1": {"softphones": phones}},
        }
    }
    path = root / "site.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    site, diags = check_site(path)
    assert (site is None) == any(d.severity == "error" for d in diags)
