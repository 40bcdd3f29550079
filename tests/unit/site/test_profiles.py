"""Profiles: extends, cycles, user directories, and the shipped library."""

import re

from qsipctl.site.profiles import SHIPPED_DIR, ProfileLibrary


def test_extends_merges_leaf_by_leaf_with_sources(files):
    files.profile("base", "registrar: 192.0.2.1\ndtmf:\n  mode: sip-info\n  payload_type: 100\n")
    files.profile("child", "extends: base\ndtmf:\n  payload_type: 120\n")
    lib = ProfileLibrary([files.root / "profiles"], shipped=False)
    r = lib.resolve("child")
    assert r.chain == ("child", "base")
    assert r.values["dtmf.mode"].value == "sip-info"
    assert r.values["dtmf.mode"].location.file.endswith("base.yml")
    assert r.values["dtmf.payload_type"].value == 120
    assert r.values["dtmf.payload_type"].location.line == 3
    assert lib.diagnostics == []


def test_extends_cycle_is_reported(files):
    files.profile("a", "extends: b\n")
    files.profile("b", "extends: c\n")
    files.profile("c", "extends: a\n")
    lib = ProfileLibrary([files.root / "profiles"], shipped=False)
    lib.resolve("a")
    [d] = lib.diagnostics
    assert "extends cycle: a -> b -> c -> a" in d.format()
    assert d.location.file.endswith("c.yml") and d.location.line == 1


def test_unknown_parent_and_bad_values(files):
    files.profile("p", "extends: generik\ntransport: sctp\ncodec: [PCMU]\n")
    lib = ProfileLibrary([files.root / "profiles"])
    lib.resolve("p")
    text = "\n".join(d.format() for d in lib.diagnostics)
    assert "unknown profile 'generik' (did you mean 'generic'?)" in text
    assert "unknown transport 'sctp'" in text
    assert "unknown key 'codec' (did you mean 'codecs'?)" in text


def test_user_directory_shadows_shipped(files):
    files.profile("freepbx", "extends: generic\ntransport: tcp\n")
    lib = ProfileLibrary([files.root / "profiles"])
    assert lib.resolve("freepbx").values["transport"].value == "tcp"
    assert lib.files["freepbx"].shadowed


def test_shipped_library_is_valid_and_documented():
    lib = ProfileLibrary()
    assert lib.check_all() == []
    names = lib.names()
    assert len(names) >= 6
    for wanted in ("freepbx", "cisco-cucm", "3cx", "hosted-trunk-tls", "teams-sbc", "generic"):
        assert wanted in names
    for path in SHIPPED_DIR.glob("*.yml"):
        head = path.read_text().split("\n\n")[0]
        assert re.search(r"Sources?:", head), f"{path.name} must name its public sources"


def test_missing_profiles_dir_is_an_error(tmp_path):
    lib = ProfileLibrary([tmp_path / "nope"])
    assert "does not exist" in lib.diagnostics[0].format()


def test_validate_checks_unused_user_profiles(files):
    from tests.unit.site.conftest import ONE_CORE

    files.profile("unused", "extends: generic\ntransport: carrier-pigeon\n")
    errors = files.errors(ONE_CORE)
    assert len(errors) == 1 and "unused.yml:2:1: transport: unknown transport" in errors[0]


def test_description_must_be_text_and_one_name_one_file_per_directory(files):
    from qsipctl.site.profiles import ProfileLibrary

    files.profile("desc", "extends: generic\ndescription: [not, text]\n")
    files.profile("twice", "extends: generic\n")
    (files.root / "profiles" / "twice.yaml").write_text("extends: freepbx\n")
    problems = [d.format() for d in ProfileLibrary([files.root / "profiles"]).check_all()]
    assert len(problems) == 2, problems
    assert any("desc.yml:2:" in p and "description" in p for p in problems), problems
    assert any("twice.yaml" in p and "twice.yml" in p for p in problems), problems
