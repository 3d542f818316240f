"""A site's own rules on top of the built-in ones: payers, severities, disabled rules, tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, scrub_bytes

from scrubber.cli import cli
from scrubber.errors import RuleDataError
from scrubber.output.ruledocs import config_text
from scrubber.rules.ruleset import load_rules

DEFECTS = (SAMPLES / "defects_837p.837").read_bytes()
DEFECTS_I = (SAMPLES / "defects_837i.837").read_bytes()


def site(tmp_path: Path, **files: str) -> Path:
    directory = tmp_path / "site"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("_toml", ".toml").replace("_csv", ".csv")).write_text(text)
    return directory


def test_settings_turn_rules_off_and_change_severities(tmp_path):
    layer = site(tmp_path, settings_toml='disabled = ["U005"]\n[severity]\nM002 = "warning"\n')
    result = scrub_bytes(DEFECTS, load_rules([layer]))
    assert result.claim("P-U005-JW-WHOLE-VIAL")["findings"] == []
    m002 = result.claim("P-M002-JW-AND-JZ")
    assert m002["disposition"] == "accepted" and m002["findings"][0]["severity"] == "warning"


def test_a_site_layer_changes_one_key_of_a_builtin_payer(tmp_path):
    layer = site(tmp_path, payers_toml='[[payer]]\nname = "Medicare"\njw_jz_required_from = 2027-01-01\n')
    rules = load_rules([layer])
    assert scrub_bytes(DEFECTS, rules).claim("P-M001-NO-JW-JZ")["findings"] == []
    medicare = next(p for p in rules.payers.policies if p.name == "Medicare")
    assert medicare.classes == ("MA", "MB", "16")  # the rest of the built-in policy stands


def test_a_payer_id_policy_wins_over_the_payer_class(tmp_path):
    layer = site(tmp_path, payers_toml=(
        '[[payer]]\nname = "Acme Health"\npayer_ids = ["EHP01"]\nndc_required = true\ndisabled = ["A001"]\n'
        'source = "Acme provider manual 2026, s. 4.2"\n'))
    result = scrub_bytes(DEFECTS, load_rules([layer]))
    claim = result.claim("P-A001-NO-AUTH")  # SBR09 CI (commercial: prior auth), payer id EHP01 (Acme)
    assert {f["rule"] for f in claim["findings"]} == {"N004"}
    assert "Acme Health requires an NDC" in claim["findings"][0]["message"]


def test_a_payer_policy_changes_a_severity_for_its_claims():
    """The example Blue plan makes C008 (drug revenue code) an error for its own claims."""
    data = DEFECTS_I.replace(b"NM1*PR*2*MEDICARE PART B*****PI*00952~\nCLM*I-C008",
                             b"NM1*PR*2*EXAMPLE BLUE PLAN*****PI*EXBLUE01~\nCLM*I-C008")
    claim = scrub_bytes(data, load_rules()).claim("I-C008-REVENUE-0250")
    assert [(f["rule"], f["severity"]) for f in claim["findings"] if f["rule"] == "C008"] == [("C008", "error")]
    assert claim["disposition"] == "rejected"


def test_covered_diagnoses_of_a_payer_widen_the_indication():
    """Belinostat for mycosis fungoides (C84.0-): not the label's PTCL, but covered by the Blue plan."""
    base = DEFECTS.replace(b"HI*ABK:C8330~", b"HI*ABK:C8400~")
    assert "D002" in scrub_bytes(base, load_rules()).rules_of("P-D002-NO-INDICATION")
    blue = base.replace(b"SBR*P*18*GRP0001******MB~\nNM1*IL*1*DOE*JANE****MI*MBR000015",
                        b"SBR*P*18*GRP0001******BL~\nNM1*IL*1*DOE*JANE****MI*MBR000015")
    blue = blue.replace(b"PI*00952~\nCLM*P-D002-NO-INDICATION*10494.8***11:B:1*Y*A*Y*Y~\n",
                        b"PI*EXBLUE01~\nCLM*P-D002-NO-INDICATION*10494.8***11:B:1*Y*A*Y*Y~\nREF*G1*PA1~\n")
    blue = blue.replace(b"SV1*HC:J9032:JZ*10494.80*UN*200***1~\nDTP*472*D8*20261102~\nHL*16",
                        b"SV1*HC:J9032:JZ:KX*10494.80*UN*200***1~\nDTP*472*D8*20261102~\nHL*16")
    assert blue.count(b"EXBLUE01") == base.count(b"EXBLUE01") + 1 and b"J9032:JZ:KX*10494.80" in blue
    assert scrub_bytes(blue, load_rules()).claim("P-D002-NO-INDICATION")["findings"] == []


def test_a_newer_code_table_in_a_site_layer(tmp_path):
    table = (Path(load_rules().directory) / "code_tables" / "hcpcs_2025_oct.csv").read_text()
    layer = site(tmp_path,
                 code_tables_toml='[hcpcs]\nfile = "hcpcs_2026_jan.csv"\n'
                                  'version = "HCPCS Level II, January 2026 (site)"\n'
                                  'valid_through = 2026-12-31\nsource = "the site\'s copy of the CMS file"\n',
                 hcpcs_2026_jan_csv=table + "J9018,2026-01-01,,,Made-up new code for the test\n")
    rules = load_rules([layer])
    assert rules.table_versions()["hcpcs"] == "HCPCS Level II, January 2026 (site)"
    result = scrub_bytes(DEFECTS, rules)
    # J9018 on a 2025-11-03 service: unknown before (C002), now known but added only 2026-01-01.
    assert result.rules_of("P-C002-UNKNOWN-HCPCS") == {"C001"}


@pytest.mark.parametrize(
    ("files", "key"),
    [
        ({"settings_toml": 'disabled = ["S001"]\n'}, "S001"),
        ({"settings_toml": 'disabled = ["X999"]\n'}, "disabled"),
        ({"settings_toml": '[severity]\nU003 = "fatal"\n'}, "severity.U003"),
        ({"payers_toml": '[[payer]]\nname = "New"\nsource = "x"\n'}, "classes"),
        ({"payers_toml": '[[payer]]\nname = "New"\nclasses = ["MB"]\nsource = "x"\n'}, "classes"),
        ({"payers_toml": '[[payer]]\nname = "Medicare"\njw_jz_required_from = "soon"\n'}, "jw_jz_required_from"),
        ({"drugs_toml": '[[drug]]\nname = "x"\n[[drug.code]]\nhcpcs = "J9032"\ndescriptor = "d"\n'
                        'billing_unit_mg = "1"\nvalid_from = 2020-01-01\nsource = "s"\n'}, "code"),
        ({"catalog_toml": ""}, "(file)"),
    ],
)
def test_a_bad_site_layer_gets_one_message_with_file_and_key(tmp_path, files, key):
    layer = site(tmp_path, **files)
    with pytest.raises(RuleDataError) as caught:
        load_rules([layer])
    assert str(layer) in caught.value.path and key in caught.value.key


def test_show_config_says_where_each_value_came_from(tmp_path):
    layer = site(tmp_path, payers_toml='[[payer]]\nname = "Medicare"\njw_jz_required_from = 2024-01-01\n',
                 settings_toml='[severity]\nU007 = "warning"\n')
    text = config_text(load_rules([layer]))
    lines = {line.split(" #")[0].strip(): line.split(" # ")[-1] for line in text.splitlines() if " # " in line}
    assert lines["jw_jz_required_from = 2024-01-01"] == str(layer / "payers.toml")
    assert lines['classes = ["MA", "MB", "16"]'] == "built-in payers.toml"
    assert lines['severity.U007 = "warning"'] == str(layer / "settings.toml")


def test_rules_check_command(tmp_path):
    good = site(tmp_path, settings_toml='disabled = ["C003"]\n')
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "check", str(good)])
    assert ok.exit_code == 0 and "ok: 55 rules" in ok.output
    (good / "payers.toml").write_text('[[payer]]\nname = "Medicare"\ncolour = "blue"\n')
    bad = runner.invoke(cli, ["rules", "check", str(good)])
    assert bad.exit_code == 2
    assert "payers.toml" in bad.output and "colour" in bad.output


def test_the_environment_variable_adds_a_layer(tmp_path):
    layer = site(tmp_path, settings_toml='disabled = ["U005"]\n')
    out = tmp_path / "out"
    env = {**__import__("os").environ, "SCRUBBER_RULES": str(layer)}
    subprocess.run([sys.executable, "-m", "scrubber", "scrub", str(SAMPLES / "defects_837p.837"), "--out", str(out),
                    "--today", "2026-11-27"], env=env, capture_output=True, check=False)
    report = json.loads((out / "defects_837p.report.json").read_text())
    claim = next(c for c in report["claims"] if c["claim_id"] == "P-U005-JW-WHOLE-VIAL")
    assert claim["findings"] == [] and report["scrubber"]["rules"]["site_layers"] == [str(layer)]
