"""The Connect Card's style sheet is package data: a file beside its module, shipped in the layer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.template import ROOT, load_template
from sluice.connect_card import page


def test_the_style_sheet_is_a_file_inside_the_layer_folder() -> None:
    css = Path(page.__file__).parent / "page.css"
    layer = ROOT / load_template()["Resources"]["SluiceLayer"]["Properties"]["ContentUri"]
    assert css.is_file()
    assert css.resolve().is_relative_to(layer.resolve())
    assert page.error_page(404, "t", "m").style.startswith(css.read_text(encoding="utf-8"))


def test_the_style_sheet_is_read_relative_to_the_module_not_the_working_folder(tmp_path: Path) -> None:
    shared = Path(page.__file__).resolve().parents[2]
    found = subprocess.run(
        [sys.executable, "-c", "from sluice.connect_card import page; print(len(page._CSS))"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(shared), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(found.stdout) == len((shared / "sluice/connect_card/page.css").read_text(encoding="utf-8"))
