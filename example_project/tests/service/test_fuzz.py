"""Schemathesis, with every check on, against the service running on a local port: requests
generated from the OpenAPI document, valid and invalid, must get the answers the document
promises (status codes, content types, bodies), never a server error, and invalid ones must
be refused."""

import re
import subprocess
import sys
from pathlib import Path

# An invalid request may also be refused for its size (413): schemathesis' own list of the
# statuses that refuse a request, with 413 added.
CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""


def test_the_running_service_keeps_every_promise_of_its_openapi_document(live, tmp_path):
    base, key = live
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        Path(sys.executable).with_name("st"), "--config-file", config, "run",
        f"{base}/openapi.json", "--checks", "all", "--max-examples", "40", "--seed", "7",
        "--header", f"X-API-Key: {key}", "--no-color", "--report-dir", tmp_path / "report",
    ]  # fmt: skip
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-3000:]
    assert int(tested.group(1)) == int(selected.group(2)) >= 5, "every operation is tested"
    print(output[output.find("SUMMARY") :])
