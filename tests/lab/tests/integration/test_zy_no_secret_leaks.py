"""No secret value reaches the output at -vvv: the credential targets run (only) here, at -vvv,
must pass, and their whole output is searched for the test secrets, plain and base64-encoded."""

import base64
import json
import os

import pytest
import yaml

from .test_collection_targets import TARGETS, TARGETS_DIR, VERBOSE_TARGETS, run_target


def _secrets():
    with open(os.path.join(TARGETS_DIR, "cloud_credentials", "vars", "main.yml"),
              encoding="utf-8") as fh:
        values = yaml.safe_load(fh)
    out = [values["cc_aws_secret"], values["cc_aws_secret_rotated"], values["cc_aws_key_id"],
           "cloudhopClusterCloudTestSecret0", "AKIACLOUDHOPTEST0002"]
    return out + [base64.b64encode(v.encode()).decode() for v in out]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("target", VERBOSE_TARGETS)
def test_no_secret_in_verbose_output(target, tmp_path):
    """The credential targets pass (they run only here) and hold no secret at -vvv."""
    assert target in TARGETS
    proc = run_target(target, tmp_path, ["-vvv"])
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert "failed=0" in proc.stdout
    output = proc.stdout + proc.stderr
    # the generated service-account key: its PEM body must not show either
    with open(tmp_path / "sa.key", encoding="utf-8") if (tmp_path / "sa.key").exists() \
            else open(os.devnull, encoding="utf-8") as fh:
        pem = [line for line in fh.read().splitlines() if line and "-----" not in line]
    if target == "gcp_dns_record":
        # the lab's service-account key, the other key the target signs with, the access tokens
        with open(os.path.join(os.environ["CLH_LAB_DIR"], "gcp-sa.json"), encoding="utf-8") as fh:
            pem = [line for line in json.load(fh)["private_key"].splitlines()
                   if line and "-----" not in line]
        with open(tmp_path / "other.pem", encoding="utf-8") as fh:
            pem += [line for line in fh.read().splitlines() if line and "-----" not in line]
        pem.append("ya29.")
    if target in ("cloud_credentials", "gcp_dns_record"):
        assert len(pem) > 5  # the generated service-account key was used, and is searched for
    leaks = [s for s in _secrets() + pem if s in output]
    assert output.count("ESTABLISH LOCAL CONNECTION") > 5  # really verbose
    assert not leaks, "secret values in -vvv output: %s" % [s[:6] + "..." for s in leaks]
