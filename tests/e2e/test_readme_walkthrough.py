"""Issue 17: the README's walkthrough works pasted as it is, against a running local stack. The blocks
are read from README.md itself; only what a second stack on this machine must change is changed (its
ports, its data folder)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.local_stack import ROOT, LocalStackProcess


def walkthrough_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_walkthrough_runs_as_written(stack: LocalStackProcess, tmp_path: Path) -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) == 2, "the walkthrough and the s3 example"
    (paste,) = [line.strip() for line in stack.output if line.strip().startswith("export SLUICE=")]
    sample_port = str(free_port())
    script = "\n".join([paste, *blocks]).replace("8081", sample_port)
    script = script.replace("http://127.0.0.1:3001", stack.aws_endpoint)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # the blocks run from a checkout's root
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}",
        "SLUICE_DATA_DIR": str(stack.data_dir),
        # The stack under test takes its key from these, so the line it prints names them.
        "SLUICE_API_KEY": stack.api_key,
        "SLUICE_API_SECRET": stack.api_secret,
    }
    log = tmp_path / "walkthrough.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            ["timeout", "120", "bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the sample API it starts in the background goes with it
        )
        try:
            run.wait(timeout=150)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGTERM)
    output = log.read_text()
    assert run.returncode == 0, output + "\n--- the stack's console ---\n" + "".join(stack.output[-40:])
    counts = re.findall(r"count_star\(\)\s*\n-+\n(\d+)", output)
    assert counts == ["1000"], output
    assert re.search(r"^1\s+Oslo\s", output, flags=re.M) and re.search(r"^2\s+Lima\s", output, flags=re.M), (
        output
    )
